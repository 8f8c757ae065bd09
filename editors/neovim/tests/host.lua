-- Headless test of sessions that outlive Neovim (sessions.persist), in two runs:
--   KTL_PHASE=start: :KtlRun a ticking command, write its id and last tick, then wait to be
--     killed (the test kills Neovim's process group, its language server with it);
--   KTL_PHASE=reopen: a new Neovim lists the session running, opens it (attach), sees its
--     screen and new ticks, cancels it, and quits.
--   KTL_PHASE=auto: a new Neovim opens it again by itself (remembered for the workspace), sees
--     its screen and new ticks; the user deleting the buffer forgets it.
-- With KTL_GATE=<file>, the start phase runs a second session too, that ends once the file is
-- there (while no Neovim shows it): it is forgotten, not reopened.
-- KTL_LSP=<server> KTL_STORE=<db> KTL_RESULTS=<json> KTL_MANIFEST=<yaml> as for run.lua.
local harness = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'results.lua')
local results, check, buf_text = harness.results, harness.check, harness.buf_text
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
  harness.persisting(phase ~= 'reopen') -- that phase opens the session by hand
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
    local gate = os.getenv('KTL_GATE')
    if gate then
      vim.cmd('KtlRun while [ ! -e ' .. gate .. ' ]; do sleep 0.05; done')
      local gated = vim.api.nvim_get_current_buf()
      vim.wait(10000, function()
        return vim.b[gated].ktl_session_id ~= nil
      end, 20)
      results.gatedId = vim.b[gated].ktl_session_id
    end
    local reopen = require('ktl.reopen')
    results.remembered = reopen.ids()
    results.stateFile = reopen.file()
    return harness.wait_killed()
  end

  local call = harness.call

  local sid = os.getenv('KTL_SESSION')
  local before = tonumber(os.getenv('KTL_LAST_TICK'))

  if phase == 'auto' then
    local terminal = require('ktl.terminal')
    local home = vim.api.nvim_get_current_win()
    local got = vim.wait(20000, function()
      local t = terminal.terms[sid]
      return t ~= nil and last_tick(t.buf) >= before + 10
    end, 50)
    local t = terminal.terms[sid]
    check('reopened_live', got, t and ('last tick ' .. last_tick(t.buf) .. ', before ' .. before) or 'no buffer')
    if not t then
      return
    end
    local text = buf_text(t.buf)
    check('from_the_screen', text:find('tick 0', 1, true) and not text:find('old-', 1, true), text)
    check('focus_kept', vim.api.nvim_get_current_win() == home and vim.api.nvim_win_get_buf(home) ~= t.buf, '')
    local reopen = require('ktl.reopen')
    check('only_running_remembered', vim.deep_equal(reopen.ids(), { sid }), vim.inspect(reopen.ids()))
    results.stateFile = reopen.file()
    vim.cmd('bwipeout! ' .. t.buf)
    check('forgotten_when_closed', #reopen.ids() == 0, vim.inspect(reopen.ids()))
    local got_state = call('ktl.session.get', { sessionId = sid }).state
    check('still_running', got_state == 'running', got_state)
    call('ktl.session.cancel', { sessionId = sid })
    return
  end

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
harness.finish(ok, failure)
