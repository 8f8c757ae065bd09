-- Shells and their command blocks: :KtlShell, a mark with the exit code at the start of each
-- block in the shell's terminal buffer, :KtlBlocks (a list; <CR> jumps), :KtlBlockRerun,
-- :KtlBlockCopy. Blocks come from ktl.session.blocks and ktl/block (sent when a block ends).
local client = require('ktl.client')
local config = require('ktl.config')
local notify = require('ktl.ui').notify
local sessions = require('ktl.sessions')
local terminal = require('ktl.terminal')

local M = {}

M.ns = vim.api.nvim_create_namespace('ktl_blocks')
-- sessionId -> { [index] = block }
M.blocks = {}
-- sessionId -> { [index] = extmark id } in the session's terminal buffer
M.marks = {}
-- The buffer of the last :KtlBlocks list (tests read it).
M.last_list = nil

local present = sessions.present

--- Runs a server command; on success on_result(result) on the main loop, else says why.
local function call(command, args, on_result)
  client.exec(command, args, function(err, result)
    if err then
      notify('ktl: ' .. (err.message or (command .. ' failed')), vim.log.levels.ERROR)
      return
    end
    vim.schedule(function()
      on_result(result or {})
    end)
  end)
end

--- `exit 0` / `exit 2` / `exit ?` (ended with its shell) / `running`, and the highlight.
function M.status(b)
  if not present(b.endedAt) then
    return 'running', 'Comment'
  end
  if not present(b.exitCode) then
    return 'exit ?', 'WarningMsg'
  end
  return 'exit ' .. tostring(b.exitCode), b.exitCode == 0 and 'Comment' or 'ErrorMsg'
end

local function duration(ms)
  ms = tonumber(ms) or 0
  if ms < 1000 then
    return string.format('%dms', ms)
  elseif ms < 60000 then
    return string.format('%.1fs', ms / 1000)
  end
  return string.format('%dm%02ds', math.floor(ms / 60000), math.floor(ms / 1000) % 60)
end

--- One line of :KtlBlocks.
function M.format_block(b)
  local status = M.status(b)
  local command = tostring(b.command or ''):gsub('%s+', ' ')
  return string.format('%3d  %-8s %7s  %s', b.index, status, duration(b.durationMs), command)
end

--- The line of the terminal buffer where block `b` starts: the last line after the previous
--- block's mark that shows its command line (the prompt's line).
local function start_line(buf, sid, b)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local from = 0
  local prev = M.marks[sid] and M.marks[sid][b.index - 1]
  if prev then
    local pos = vim.api.nvim_buf_get_extmark_by_id(buf, M.ns, prev, {})
    from = (pos[1] or -1) + 1
  end
  local command = tostring(b.command or '')
  if command == '' then
    return nil
  end
  -- A long prompt and command wrap onto the next lines: look in each line and the two after it,
  -- for a command line that starts on this one. A line that wrapped at a space lost it (the
  -- terminal buffer keeps no trailing blanks): joined with one as well.
  for i = #lines, from + 1, -1 do
    for _, sep in ipairs({ '', ' ' }) do
      local at = table.concat({ lines[i], lines[i + 1] or '', lines[i + 2] or '' }, sep):find(command, 1, true)
      if at and at <= #lines[i] then
        return i - 1
      end
    end
  end
  return nil
end

--- Puts (or updates) block `b`'s mark in its session's terminal buffer: a sign and the exit
--- code as virtual text at the block's first line. The terminal shows output a moment after it
--- is sent (later on a busy machine), so a line not there yet is looked for again (`tries`
--- more times: 50 ms apart for a second, then every 250 ms, about 16 s in all).
function M.decorate(sid, b, tries)
  local term = terminal.terms[sid]
  if not term or not vim.api.nvim_buf_is_valid(term.buf) then
    return
  end
  local buf = term.buf
  M.marks[sid] = M.marks[sid] or {}
  local id = M.marks[sid][b.index]
  local row
  if id then
    row = vim.api.nvim_buf_get_extmark_by_id(buf, M.ns, id, {})[1]
  end
  row = row or start_line(buf, sid, b)
  if not row then
    tries = tries or 80
    if tries > 0 then
      vim.defer_fn(function()
        M.decorate(sid, M.blocks[sid] and M.blocks[sid][b.index] or b, tries - 1)
      end, tries > 60 and 50 or 250)
    end
    return
  end
  local status, hl = M.status(b)
  local ok = present(b.exitCode) and b.exitCode == 0
  M.marks[sid][b.index] = vim.api.nvim_buf_set_extmark(buf, M.ns, row, 0, {
    id = id,
    sign_text = not present(b.endedAt) and '…' or (ok and '✓' or '✗'),
    sign_hl_group = hl,
    virt_text = { { ' ' .. status .. ' · ' .. duration(b.durationMs), hl } },
    virt_text_pos = 'eol',
  })
end

local function remember(sid, list)
  M.blocks[sid] = M.blocks[sid] or {}
  for _, b in ipairs(list) do
    M.blocks[sid][b.index] = b
  end
end

--- `ktl/block` {sessionId, ...Block}: a block ended.
function M.on_block(params)
  remember(params.sessionId, { params })
  vim.schedule(function()
    M.decorate(params.sessionId, params)
  end)
end

--- A session's blocks in order (from the server), to `on_blocks(list)`.
function M.load(sid, on_blocks)
  call('ktl.session.blocks', { sessionId = sid }, function(result)
    local list = result.blocks or {}
    remember(sid, list)
    for _, b in ipairs(list) do
      M.decorate(sid, b)
    end
    on_blocks(list)
  end)
end

--- :KtlShell [program]: the user's shell ($SHELL) as a session with command blocks.
function M.shell(program)
  local args = { cwd = vim.fn.getcwd() }
  if program and program ~= '' then
    args.shell = program
  end
  local buf = sessions.start_terminal('ktl.shell', args, 'shell')
  vim.b[buf].ktl_shell = true
  return buf
end

--- The block the cursor is on: in a :KtlBlocks list its line, in a terminal buffer the last
--- block mark at or above the cursor. Returns sessionId, index.
local function block_here()
  local buf = vim.api.nvim_get_current_buf()
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  local listed = vim.b[buf].ktl_blocks_session
  if listed then
    local index = tonumber(vim.api.nvim_get_current_line():match('^%s*(%d+)'))
    return listed, index
  end
  local sid = terminal.session_of(buf)
  if not sid then
    return nil, nil
  end
  local best, best_row = nil, -1
  for index, id in pairs(M.marks[sid] or {}) do
    local r = vim.api.nvim_buf_get_extmark_by_id(buf, M.ns, id, {})[1]
    if r and r <= row and r > best_row then
      best, best_row = index, r
    end
  end
  return sid, best
end

--- Calls on_block(sid, index) for `arg` (a block number) or the block under the cursor.
local function with_block(arg, on_block)
  local sid, index = block_here()
  if arg and arg ~= '' then
    index = tonumber(arg)
  end
  if not sid or not index then
    notify('ktl: no command block here (a shell terminal or :KtlBlocks list; or give its number)', vim.log.levels.WARN)
    return
  end
  on_block(sid, index)
end

--- Jumps to block `index` of `sid` in the terminal buffer (opened in a window if needed);
--- without a mark there, shows the block's output.
function M.jump(sid, index)
  local term = terminal.terms[sid]
  local id = M.marks[sid] and M.marks[sid][index]
  if term and id and vim.api.nvim_buf_is_valid(term.buf) then
    local row = vim.api.nvim_buf_get_extmark_by_id(term.buf, M.ns, id, {})[1]
    local win = vim.fn.bufwinid(term.buf)
    if win == -1 then
      vim.cmd(config.options.split)
      vim.api.nvim_win_set_buf(0, term.buf)
      win = vim.api.nvim_get_current_win()
    end
    vim.api.nvim_set_current_win(win)
    vim.api.nvim_win_set_cursor(win, { row + 1, 0 })
    return
  end
  call('ktl.block.output', { sessionId = sid, block = index }, function(result)
    local b = (M.blocks[sid] or {})[index] or { command = '' }
    local text = '$ ' .. tostring(b.command) .. '\n' .. (result.text or '')
    sessions.scratch('ktl://block/' .. sid:sub(1, 8) .. '/' .. index, vim.split(text, '\n', { plain = true }), '')
  end)
end

--- :KtlBlocks: the blocks of the shell in this buffer (or of the session picked) in a list;
--- <CR> jumps to a block, r reruns it, y copies its output.
function M.list(id)
  sessions.with_session(id, function(s)
    M.load(s.sessionId, function(list)
      if #list == 0 then
        notify('ktl: session ' .. s.sessionId:sub(1, 8) .. ' has no command blocks', vim.log.levels.INFO)
        return
      end
      local lines = {}
      for _, b in ipairs(list) do
        table.insert(lines, M.format_block(b))
      end
      local buf = sessions.scratch('ktl://blocks/' .. s.sessionId:sub(1, 8), lines, 'ktlblocks')
      vim.b[buf].ktl_blocks_session = s.sessionId
      M.last_list = buf
      local function map(key, fn)
        vim.keymap.set('n', key, fn, { buffer = buf, nowait = true })
      end
      map('<CR>', function()
        with_block(nil, M.jump)
      end)
      map('r', function()
        with_block(nil, M.rerun)
      end)
      map('y', function()
        with_block(nil, M.copy)
      end)
    end)
  end, 'Command blocks of which session')
end

--- Runs block `index` again: typed into its shell while it runs, else as its own session.
function M.rerun(sid, index)
  local term = terminal.terms[sid]
  local running = term and not terminal.FINAL[term.state or '']
  if running then
    call('ktl.block.rerun', { sessionId = sid, block = index, target = 'shell' }, function() end)
    return
  end
  -- The shell has ended: the command runs as its own session, shown in a terminal.
  call('ktl.block.rerun', { sessionId = sid, block = index, target = 'run', detach = true }, sessions.open_session)
end

--- Copies block `index`'s output (plain text) to the unnamed register and, when there is a
--- clipboard, to '+'.
function M.copy(sid, index)
  call('ktl.block.output', { sessionId = sid, block = index }, function(result)
    vim.fn.setreg('"', result.text or '')
    if vim.fn.has('clipboard') == 1 then
      pcall(vim.fn.setreg, '+', result.text or '')
    end
    notify('ktl: copied the output of block ' .. index)
  end)
end

function M.rerun_command(arg)
  with_block(arg, M.rerun)
end

function M.copy_command(arg)
  with_block(arg, M.copy)
end

return M
