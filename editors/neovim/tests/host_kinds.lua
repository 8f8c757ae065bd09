-- Headless test of a shell with command blocks and a port-forward outliving Neovim
-- (sessions.persist; tests/editors/test_neovim_host.py runs it), in two runs each:
--   KTL_PHASE=shell-start: :KtlShell bash, two commands (the second fails), then wait to be killed;
--   KTL_PHASE=shell-back: a new Neovim reopens the shell by itself: its screen, its block marks,
--     :KtlBlocks, and a command typed in the buffer that makes a new block; then cancels it;
--   KTL_PHASE=forward-start: :KtlPortForward pod/web-1 :80, then wait to be killed;
--   KTL_PHASE=forward-back: :KtlForwards lists it with its URL, and stops it.
-- KTL_LSP, KTL_STORE, KTL_RESULTS, KTL_MANIFEST as for run.lua; KTL_SESSION: the session of the
-- start phase (in the later one).
local harness = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'results.lua')
local results, check, buf_text = harness.results, harness.check, harness.buf_text
local phase = os.getenv('KTL_PHASE')

local ok, failure = pcall(function()
  local ktl = harness.persisting(true)
  local blocks = require('ktl.blocks')
  local terminal = require('ktl.terminal')
  local call = harness.call

  --- The exit codes the block marks of `buf` show, in the buffer's order.
  local function marks(buf)
    local shown = {}
    for _, m in ipairs(vim.api.nvim_buf_get_extmarks(buf, blocks.ns, 0, -1, { details = true })) do
      local chunk = (m[4].virt_text or {})[1]
      table.insert(shown, chunk and chunk[1]:match('exit %S+') or '')
    end
    return shown
  end

  if phase == 'shell-start' then
    vim.cmd('KtlShell bash')
    local buf = vim.api.nvim_get_current_buf()
    local prompt = vim.wait(15000, function()
      return vim.b[buf].ktl_session_id ~= nil and buf_text(buf):find('[%$#]%s*$') ~= nil
    end, 20)
    local sid = vim.b[buf].ktl_session_id
    terminal.input(buf, 'echo one-$((1+1))\r')
    local first = vim.wait(10000, function()
      return #marks(buf) == 1
    end, 20)
    terminal.input(buf, 'sh -c "exit 3"\r')
    local second = vim.wait(10000, function()
      return #marks(buf) == 2
    end, 20)
    check('two_blocks', prompt and first and second, vim.inspect({ marks = marks(buf), text = buf_text(buf) }))
    results.sessionId = sid
    return harness.wait_killed()
  end

  local sid = os.getenv('KTL_SESSION')

  if phase == 'shell-back' then
    local got = vim.wait(20000, function()
      local t = terminal.terms[sid]
      return t ~= nil and buf_text(t.buf):find('one-2', 1, true) ~= nil
    end, 50)
    local t = terminal.terms[sid]
    check('reopened', got, t and buf_text(t.buf) or 'no buffer')
    if not t then
      return
    end
    local buf = t.buf
    check('still_running', call('ktl.session.get', { sessionId = sid }).state == 'running', '')
    got = vim.wait(10000, function()
      return vim.deep_equal(marks(buf), { 'exit 0', 'exit 3' })
    end, 50)
    check('block_marks', got and vim.b[buf].ktl_shell == true, vim.inspect({ marks = marks(buf), text = buf_text(buf) }))
    vim.api.nvim_set_current_buf(buf)
    vim.cmd('KtlBlocks')
    got = vim.wait(10000, function()
      return ktl.last_blocks_list ~= nil and vim.api.nvim_get_current_buf() == ktl.last_blocks_list
    end, 20)
    local listed = got and vim.api.nvim_buf_get_lines(ktl.last_blocks_list, 0, -1, false) or {}
    check(
      'blocks_listed',
      #listed == 2 and listed[1]:find('exit 0', 1, true) and listed[1]:find('echo one-', 1, true) and listed[2]:find('exit 3', 1, true),
      vim.inspect(listed)
    )
    -- What the terminal buffer's on_input sends when the user types in it.
    terminal.input(buf, 'echo three-$((1+2))\r')
    got = vim.wait(10000, function()
      local b = (blocks.blocks[sid] or {})[2]
      -- The block's end and its output come on separate channels: wait for both.
      return b ~= nil and b.exitCode == 0 and #marks(buf) == 3 and buf_text(buf):find('three-3', 1, true) ~= nil
    end, 20)
    local third = (blocks.blocks[sid] or {})[2]
    check(
      'new_block',
      got and third.command == 'echo three-$((1+2))' and buf_text(buf):find('three-3', 1, true) ~= nil,
      vim.inspect({ third = third, marks = marks(buf), text = buf_text(buf) })
    )
    call('ktl.session.cancel', { sessionId = sid })
    return
  end

  if phase == 'forward-start' then
    vim.cmd('KtlPortForward pod/web-1 :80 -n default')
    local got = vim.wait(20000, function()
      return ktl.last_forward ~= nil
    end, 20)
    local pf = ktl.last_forward or {}
    local url = ((pf.forwards or {})[1] or {}).url
    check('forwarding', got and pf.state == 'running' and type(url) == 'string', vim.inspect(pf))
    results.sessionId, results.url = pf.sessionId, url
    return harness.wait_killed()
  end

  if phase == 'forward-back' then
    -- :KtlForwards: the running forwards, then what to do with the one picked: stop it
    local shown = harness.select_forward(sid, 'stop ')
    vim.cmd('KtlForwards')
    local url = os.getenv('KTL_URL')
    local got = vim.wait(10000, function()
      return shown.sessions ~= nil
    end, 20)
    local offered = shown.sessions or {}
    check('listed', got and #offered == 1 and offered[1]:find(url .. ' -> 80', 1, true) ~= nil, vim.inspect(offered))
    local state
    for _ = 1, 150 do -- the cancel was sent: its end, within 15 s
      state = call('ktl.session.get', { sessionId = sid }).state
      if state == 'cancelled' then
        break
      end
      vim.wait(100)
    end
    check('stopped', state == 'cancelled', vim.inspect({ state = state, actions = shown.actions }))
  end
end)
harness.finish(ok, failure)
