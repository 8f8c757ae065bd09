-- Headless test of sessions that outlive Neovim (sessions.persist), in two runs:
--   KTL_PHASE=start: :KtlRun a ticking command, write its id and last tick, then wait to be
--     killed (the test kills Neovim's process group, its language server with it);
--   KTL_PHASE=reopen: a new Neovim lists the session running, opens it (attach), sees its
--     screen and new ticks, cancels it, and quits.
-- KTL_LSP=<server> KTL_STORE=<db> KTL_RESULTS=<json> KTL_MANIFEST=<yaml> as for run.lua.
local harness = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'results.lua')
local results, check, save, buf_text = harness.results, harness.check, harness.save, harness.buf_text
local phase = os.getenv('KTL_PHASE')

local function last_tick(buf)
  local n = -1
  for _, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    local t = line:match('^tick (%d+)')
    if t then
      n = math.max(n, tonumber(t))
    end
  end
  return n
end

local ok, failure = pcall(function()
  vim.notify = function() end
  vim.cmd('filetype on')
  local ktl = require('ktl')
  ktl.setup({
    cmd = { os.getenv('KTL_LSP') },
    store = os.getenv('KTL_STORE'),
    init_options = { sessions = { persist = true, hostIdleTimeout = 60 } },
  })
  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('KTL_MANIFEST')))
  vim.wait(10000, function()
    return ktl.client_id ~= nil
  end, 20)
  local client = require('ktl.client')

  if phase == 'start' then
    -- More lines than the window has, then a clear: the screen that comes back starts there.
    vim.cmd([[KtlRun seq -f old-%g 80; sleep 0.3; printf '\033[H\033[2J'; i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.1; done]])
    local buf = vim.api.nvim_get_current_buf()
    local got = vim.wait(15000, function()
      return last_tick(buf) >= 3
    end, 50)
    local seen = buf_text(buf)
    check('ticking', got and seen:find('old-1\n', 1, true), seen)
    results.sessionId = vim.b[buf].ktl_session_id
    results.lastTick = last_tick(buf)
    save()
    vim.wait(60000, function()
      return false
    end, 100)
    return
  end

  local sid = os.getenv('KTL_SESSION')
  local listed
  client.exec('ktl.sessions.list', { state = 'running' }, function(err, r)
    listed = err and {} or r.sessions
  end)
  vim.wait(10000, function()
    return listed ~= nil
  end, 20)
  local session
  for _, s in ipairs(listed or {}) do
    if s.sessionId == sid then
      session = s
    end
  end
  check('listed_running', session ~= nil and session.state == 'running', vim.inspect(listed))
  if not session then
    return
  end
  local buf = require('ktl.sessions').open_session(session)
  local before = tonumber(os.getenv('KTL_LAST_TICK'))
  local got = vim.wait(15000, function()
    return last_tick(buf) >= before + 10
  end, 50)
  check('screen_back_and_live', got, 'last tick ' .. last_tick(buf) .. ', before ' .. before)
  -- The screen is replayed from where it was last cleared, not the whole history.
  local text = buf_text(buf)
  check('from_the_screen', text:find('tick 0', 1, true) and not text:find('old-', 1, true), text)
  require('ktl.sessions').cancel(buf)
  got = vim.wait(15000, function()
    return vim.b[buf].ktl_session_state == 'cancelled'
  end, 50)
  check('cancelled', got, vim.b[buf].ktl_session_state)
end)
if not ok then
  check('lua_error', false, failure)
end
save()
vim.cmd('qa!')
