-- Session terminals: a terminal buffer (nvim_open_term) per session, fed by ktl/sessionData;
-- what the user types goes back with ktl.session.input.
local notify = require('ktl.ui').notify

local M = {}

local FINAL = { done = true, error = true, cancelled = true, interrupted = true }
M.FINAL = FINAL

local PENDING_MAX_BYTES = 1024 * 1024
local PENDING_MAX_SESSIONS = 32

-- sessionId -> { buf, chan, last_seq, state, exit_code }
M.terms = {}
-- sessionId -> { chunks = {{seq, data}}, bytes, state }; data that arrived before we knew
-- which buffer it belongs to (a detached ktl.run answers after output may have started).
M.pending = {}
M.pending_order = {}
-- The function that sends a command to the server: set by client.lua (which requires this module).
M.exec = nil
-- What a module above this one does when a buffer starts showing a running session, and when
-- it lets go of it (the session ended, or the user deleted the buffer): set by ktl/init.lua.
M.on_shown = function(_) end
M.on_let_go = function(_) end

local function remember(sid, seq, data, state)
  local p = M.pending[sid]
  if not p then
    p = { chunks = {}, bytes = 0 }
    M.pending[sid] = p
    table.insert(M.pending_order, sid)
    while #M.pending_order > PENDING_MAX_SESSIONS do
      M.pending[table.remove(M.pending_order, 1)] = nil
    end
  end
  if data then
    if p.bytes + #data <= PENDING_MAX_BYTES then
      table.insert(p.chunks, { seq, data })
      p.bytes = p.bytes + #data
    end
  end
  if state then
    p.state = state
  end
end

local function describe(state)
  local text = state.state
  if state.exitCode ~= nil and state.exitCode ~= vim.NIL then
    text = text .. ' (exit ' .. tostring(state.exitCode) .. ')'
  end
  if state.error and state.error ~= vim.NIL and state.error ~= '' then
    text = text .. ': ' .. tostring(state.error)
  end
  return text
end

local function send(term, data)
  if term.chan and vim.api.nvim_buf_is_valid(term.buf) then
    pcall(vim.api.nvim_chan_send, term.chan, data)
  end
end

local function finish(sid, term, state)
  term.state = state.state
  term.exit_code = state.exitCode
  local text = describe(state)
  send(term, '\r\n\27[2m[ktl] session ' .. text .. '\27[0m\r\n')
  if vim.api.nvim_buf_is_valid(term.buf) then
    vim.b[term.buf].ktl_session_state = state.state
  end
  local level = state.state == 'done' and vim.log.levels.INFO or vim.log.levels.WARN
  notify('ktl: session ' .. sid:sub(1, 8) .. ' ' .. text, level)
  M.on_let_go(sid)
end

--- `ktl/sessionData` {sessionId, seq, data}
function M.on_data(params)
  local sid = params.sessionId
  local term = M.terms[sid]
  if not term then
    remember(sid, params.seq, params.data)
    return
  end
  if term.last_seq and params.seq <= term.last_seq then
    return -- already shown (from ktl.session.output)
  end
  term.last_seq = params.seq
  send(term, params.data)
end

--- `ktl/sessionState` {sessionId, state, exitCode?, error?}
function M.on_state(params)
  local term = M.terms[params.sessionId]
  if not term then
    remember(params.sessionId, nil, nil, params)
    return
  end
  if FINAL[params.state] and not FINAL[term.state or ''] then
    finish(params.sessionId, term, params)
  else
    term.state = params.state
  end
end

--- A new scratch buffer in a split, ready for nvim_open_term.
function M.new_window(title)
  vim.cmd('botright split')
  local win = vim.api.nvim_get_current_win()
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_win_set_buf(win, buf)
  pcall(vim.api.nvim_buf_set_name, buf, 'ktl://' .. title .. '/' .. buf)
  return buf, win
end

function M.size(win)
  win = win or vim.api.nvim_get_current_win()
  local cols = math.max(20, vim.api.nvim_win_get_width(win) - 1)
  local rows = math.max(5, vim.api.nvim_win_get_height(win))
  return cols, rows
end

--- What the user types in a session's terminal buffer goes to the session.
function M.input(buf, data)
  local sid = vim.b[buf].ktl_session_id
  if not sid then
    return
  end
  local term = M.terms[sid]
  if term and FINAL[term.state or ''] then
    return
  end
  M.exec('ktl.session.input', { sessionId = sid, data = data }, function(err)
    if err then
      notify('ktl: input: ' .. (err.message or vim.inspect(err)), vim.log.levels.WARN)
    end
  end)
end

function M.open_term(buf)
  return vim.api.nvim_open_term(buf, {
    on_input = function(_, _, b, data)
      M.input(b, data)
    end,
  })
end

--- Binds a session to a terminal buffer; replays what arrived before, and what is newer
--- than `last_seq` (the frames already written from ktl.session.output).
function M.bind(sid, buf, chan, state, last_seq)
  local term = { buf = buf, chan = chan, state = state, last_seq = last_seq }
  M.terms[sid] = term
  vim.b[buf].ktl_session_id = sid
  vim.b[buf].ktl_session_state = state
  local p = M.pending[sid]
  M.pending[sid] = nil
  if p then
    for _, chunk in ipairs(p.chunks) do
      M.on_data({ sessionId = sid, seq = chunk[1], data = chunk[2] })
    end
    if p.state then
      M.on_state(p.state)
    end
  end
  vim.api.nvim_create_autocmd({ 'BufWipeout' }, {
    buffer = buf,
    once = true,
    callback = function()
      if M.terms[sid] and M.terms[sid].buf == buf then
        M.terms[sid] = nil
      end
    end,
  })
  vim.api.nvim_create_autocmd({ 'BufUnload' }, {
    buffer = buf,
    once = true,
    callback = function()
      -- the user closed it (:bd, :bw), not Neovim quitting: that keeps it, to show next time
      if vim.v.exiting == vim.NIL or vim.v.exiting == nil then
        M.on_let_go(sid)
      end
    end,
  })
  if not FINAL[state or ''] then
    M.on_shown(sid)
  end
  return term
end

--- The session shown in `buf` (the current buffer by default).
function M.session_of(buf)
  return vim.b[buf or vim.api.nvim_get_current_buf()].ktl_session_id
end

--- Sends a resize when the window showing a session changed size.
function M.check_size(win)
  win = win or vim.api.nvim_get_current_win()
  local buf = vim.api.nvim_win_get_buf(win)
  local sid = vim.b[buf].ktl_session_id
  local term = sid and M.terms[sid]
  if not term or FINAL[term.state or ''] then
    return
  end
  local cols, rows = M.size(win)
  if term.cols == cols and term.rows == rows then
    return
  end
  term.cols, term.rows = cols, rows
  M.exec('ktl.session.resize', { sessionId = sid, cols = cols, rows = rows }, function() end)
end

return M
