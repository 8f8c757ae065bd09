-- Headless test of :KtlShell and command blocks against the real server (tests/editors/
-- test_neovim_blocks.py runs it): KTL_LSP, KTL_STORE, KTL_RESULTS as for run.lua.
local results = { checks = {}, nvim = tostring(vim.version().major) .. '.' .. tostring(vim.version().minor) }

local function check(name, ok, detail)
  results.checks[name] = { ok = ok and true or false, detail = detail and tostring(detail) or '' }
end

local function buf_text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
end

local ok, failure = pcall(function()
  vim.notify = function() end
  local ktl = require('ktl')
  ktl.setup({ cmd = { os.getenv('KTL_LSP') }, store = os.getenv('KTL_STORE'), autostart = false })
  local blocks = require('ktl.blocks')
  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('KTL_MANIFEST')))
  ktl.start(0)
  vim.wait(15000, function()
    return ktl.client_id ~= nil
  end, 20)
  vim.cmd('KtlShell bash')
  local buf = vim.api.nvim_get_current_buf()
  local got = vim.wait(10000, function()
    return vim.b[buf].ktl_session_id ~= nil
  end, 20)
  check('shell_terminal', got and vim.bo[buf].buftype == 'terminal' and vim.b[buf].ktl_shell == true, vim.bo[buf].buftype)
  local sid = vim.b[buf].ktl_session_id
  vim.wait(1000)
  local function marks()
    return vim.api.nvim_buf_get_extmarks(buf, blocks.ns, 0, -1, { details = true })
  end
  local function mark_text(m)
    local chunks = m[4].virt_text or {}
    return chunks[1] and chunks[1][1] or ''
  end
  ktl.exec('ktl.session.input', { sessionId = sid, data = 'echo one-$((1+1))\r' }, function() end)
  got = vim.wait(10000, function()
    return #marks() == 1
  end, 20)
  ktl.exec('ktl.session.input', { sessionId = sid, data = 'sh -c "exit 3"\r' }, function() end)
  got = got and vim.wait(10000, function()
    return #marks() == 2
  end, 20)
  local ms = marks()
  local rows = {}
  for _, m in ipairs(ms) do
    table.insert(rows, { row = m[2], text = mark_text(m), sign = m[4].sign_text, line = vim.api.nvim_buf_get_lines(buf, m[2], m[2] + 1, false)[1] })
  end
  check(
    'block_marks',
    got
      and #rows == 2
      and rows[1].text:find('exit 0', 1, true) ~= nil
      and rows[2].text:find('exit 3', 1, true) ~= nil
      and rows[1].line:find('echo one-', 1, true) ~= nil
      and rows[2].line:find('sh -c "exit 3"', 1, true) ~= nil
      and rows[1].row < rows[2].row,
    vim.inspect({ rows = rows, text = buf_text(buf) })
  )
  -- :KtlBlocks lists them; <CR> on the first jumps to its line in the terminal buffer
  vim.cmd('KtlBlocks')
  got = vim.wait(10000, function()
    return ktl.last_blocks_list ~= nil and vim.api.nvim_get_current_buf() == ktl.last_blocks_list
  end, 20)
  local list = ktl.last_blocks_list
  local listed = list and vim.api.nvim_buf_get_lines(list, 0, -1, false) or {}
  check(
    'blocks_list',
    got and #listed == 2 and listed[1]:find('exit 0', 1, true) ~= nil and listed[2]:find('exit 3', 1, true) ~= nil and listed[2]:find('sh -c', 1, true) ~= nil,
    vim.inspect(listed)
  )
  if list and rows[1] then
    vim.api.nvim_win_set_cursor(0, { 1, 0 })
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<CR>', true, false, true), 'x', false)
    local win = vim.api.nvim_get_current_win()
    check(
      'blocks_jump',
      vim.api.nvim_get_current_buf() == buf and vim.api.nvim_win_get_cursor(win)[1] == rows[1].row + 1,
      vim.inspect({ cur = vim.api.nvim_get_current_buf(), buf = buf, cursor = vim.api.nvim_win_get_cursor(win), want = rows[1].row + 1 })
    )
  end
  -- :KtlBlockCopy N: the block's output, plain, in the unnamed register
  vim.fn.setreg('"', '')
  vim.cmd('KtlBlockCopy 0')
  got = vim.wait(10000, function()
    return vim.fn.getreg('"') ~= ''
  end, 20)
  check('block_copy', got and vim.fn.getreg('"') == 'one-2', vim.fn.getreg('"'))
  -- :KtlBlockRerun in the terminal buffer, cursor on the first block's line: typed again
  vim.api.nvim_set_current_buf(buf)
  vim.api.nvim_win_set_cursor(0, { rows[1] and rows[1].row + 1 or 1, 0 })
  vim.cmd('KtlBlockRerun')
  got = vim.wait(10000, function()
    return #marks() == 3
  end, 20)
  local third = blocks.blocks[sid] and blocks.blocks[sid][2]
  check('block_rerun', got and third ~= nil and third.command == 'echo one-$((1+1))' and third.exitCode == 0, vim.inspect(third))
  -- a block running when the shell dies ends with it: exit code unknown
  ktl.exec('ktl.session.input', { sessionId = sid, data = 'echo bye; sleep 0.5; kill -9 $$\r' }, function() end)
  got = vim.wait(10000, function()
    return vim.b[buf].ktl_session_state ~= nil and vim.b[buf].ktl_session_state ~= 'running' and #marks() == 4
  end, 20)
  ms = marks()
  local last = ms[#ms]
  check('block_closed_with_shell', got and mark_text(last):find('exit ?', 1, true) ~= nil, vim.inspect({ state = vim.b[buf].ktl_session_state, last = last and mark_text(last), n = #ms }))
end)

if not ok then
  check('lua_error', false, failure)
end
vim.fn.writefile({ vim.fn.json_encode(results) }, os.getenv('KTL_RESULTS'))
vim.cmd('qall!')
