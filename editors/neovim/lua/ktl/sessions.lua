-- Sessions: their terminals (:KtlRun, a session picked or given by id), and what acts on one
-- (:KtlCancel, :KtlReplay, :KtlExport, :KtlPin).
local client = require('ktl.client')
local compat = require('ktl.compat')
local config = require('ktl.config')
local notify = require('ktl.ui').notify
local statusline = require('ktl.statusline')
local terminal = require('ktl.terminal')

local M = {}

--- A new terminal buffer on a session that `command` (`ktl.run` or `ktl.exec`) starts detached
--- with the window's size. Returns the buffer.
function M.start_terminal(command, args, title)
  local buf, win = terminal.new_window(title)
  local chan = terminal.open_term(buf)
  local cols, rows = terminal.size(win)
  args = vim.tbl_extend('force', args, { detach = true, cols = cols, rows = rows })
  vim.b[buf].ktl_pending = true
  client.exec(command, args, function(err, result)
    if err then
      pcall(vim.api.nvim_chan_send, chan, '[ktl] ' .. (err.message or (command .. ' failed')) .. '\r\n')
      notify('ktl: ' .. (err.message or (command .. ' failed')), vim.log.levels.ERROR)
      return
    end
    local term = terminal.bind(result.sessionId, buf, chan, result.state, nil)
    term.cols, term.rows = cols, rows
    statusline.track(result)
    if terminal.FINAL[result.state] then
      terminal.on_state(result)
    end
  end)
  return buf
end

--- Runs `command` (a shell command line) as a session in a new terminal buffer.
--- opts: argv (instead of command), title, cwd, env. Returns the buffer.
function M.run(command, opts)
  opts = opts or {}
  local args = {
    title = opts.title,
    cwd = opts.cwd,
    env = opts.env,
    argv = opts.argv,
  }
  if not opts.argv then
    args.command = command
  end
  return M.start_terminal('ktl.run', args, opts.title or 'run')
end

--- Shows a session (live if it is still running) in a new terminal buffer.
function M.open_session(session)
  if session.remote == true then
    -- A remote gateway's session (agent.url): the server mirrors it into a local session.
    client.exec('ktl.session.attach', { sessionId = session.sessionId, detach = true }, function(err, result)
      if err then
        notify('ktl: attach: ' .. (err.message or ''), vim.log.levels.ERROR)
        return
      end
      vim.schedule(function()
        M.open_session({ sessionId = result.sessionId, state = result.state, exitCode = result.exitCode })
      end)
    end)
    return nil
  end
  local sid = session.sessionId
  if terminal.terms[sid] and vim.api.nvim_buf_is_valid(terminal.terms[sid].buf) then
    vim.cmd(config.options.split)
    vim.api.nvim_win_set_buf(0, terminal.terms[sid].buf)
    return terminal.terms[sid].buf
  end
  local buf = terminal.new_window(sid:sub(1, 8))
  local chan = terminal.open_term(buf)
  local function show(from_seq)
    client.exec('ktl.session.output', { sessionId = sid, fromSeq = from_seq }, function(err, result)
      if err then
        notify('ktl: ' .. (err.message or 'ktl.session.output failed'), vim.log.levels.ERROR)
        return
      end
      for _, frame in ipairs(result.frames or {}) do
        if frame.type == 'output' then
          pcall(vim.api.nvim_chan_send, chan, frame.data)
        end
      end
      local term = terminal.bind(sid, buf, chan, session.state, result.lastSeq)
      if session.kind == 'shell' then
        -- a shell opened again (reopened after Neovim, or picked) gets its block marks back
        vim.b[buf].ktl_shell = true
        require('ktl.blocks').load(sid, function() end) -- ktl.blocks requires this module
      end
      if terminal.FINAL[session.state] then
        term.state = nil
        terminal.on_state(session)
      end
    end)
  end
  if session.state ~= 'running' then
    show(1)
    return buf
  end
  -- A running session may have outlived an earlier editor (sessions.persist): attaching shows
  -- it here again, live, from the frame that draws its screen as it is now.
  client.exec('ktl.session.attach', { sessionId = sid, detach = true }, function(err, result)
    show((not err and result and result.screenFromSeq) or 1)
  end)
  return buf
end

--- Whether a JSON value is there (neither absent nor null).
local function present(v)
  return v ~= nil and v ~= vim.NIL
end
M.present = present

local function format_session(s)
  local exit = present(s.exitCode) and (' exit ' .. s.exitCode) or ''
  local imported = type(s.meta) == 'table' and present(s.meta.imported)
  local flags = (s.pinned == true and ' [pinned]' or '')
    .. (s.remote == true and ' [remote]' or '')
    .. (imported and ' [imported]' or '')
  local node = type(s.meta) == 'table' and present(s.meta.node) and tostring(s.meta.node) or nil
  local title = s.title or ''
  if s._depth then
    title = '  └ ' .. (node or '') .. (node and title ~= '' and title ~= node and (': ' .. title) or (node and '' or title))
  elseif s.kind == 'plan' then
    title = '▸ ' .. title
  end
  return string.format('%s  %-11s%s  %s%s  %s', s.sessionId:sub(1, 8), s.state, exit, title, flags, s.createdAt or '')
end
M.format_session = format_session

--- Orders a session list for display: each plan followed by its node sessions (oldest first,
--- marked with `_depth = 1`); nodes whose plan is not in the list stay where they are.
function M.group_sessions(sessions)
  local by_id, children = {}, {}
  for _, s in ipairs(sessions) do
    by_id[s.sessionId] = s
  end
  for _, s in ipairs(sessions) do
    local parent = present(s.parentId) and s.parentId or nil
    if parent and by_id[parent] then
      children[parent] = children[parent] or {}
      table.insert(children[parent], s)
    end
  end
  local out = {}
  for _, s in ipairs(sessions) do
    local parent = present(s.parentId) and s.parentId or nil
    if not (parent and by_id[parent]) then
      table.insert(out, s)
      local kids = children[s.sessionId] or {}
      table.sort(kids, function(a, b)
        return (a.createdAt or '') < (b.createdAt or '')
      end)
      for _, k in ipairs(kids) do
        k._depth = 1
        table.insert(out, k)
      end
    end
  end
  return out
end

--- Picks a session (vim.ui.select over ktl.sessions.list); on_choice(session).
--- Plans are followed by their node sessions.
function M.pick_session(opts, on_choice, prompt)
  opts = vim.tbl_extend('keep', opts or {}, { limit = config.options.sessions_limit })
  client.exec('ktl.sessions.list', opts, function(err, result)
    if err then
      notify('ktl: ' .. (err.message or 'ktl.sessions.list failed'), vim.log.levels.ERROR)
      return
    end
    local sessions = M.group_sessions(result.sessions or {})
    if #sessions == 0 then
      notify('ktl: no sessions')
      return
    end
    vim.schedule(function()
      vim.ui.select(sessions, { prompt = prompt or 'ktl sessions', format_item = format_session }, function(choice)
        if choice then
          on_choice(choice)
        end
      end)
    end)
  end)
end

--- The session an action applies to: `id` (a full id or a unique prefix), else the one shown
--- in the current buffer (a terminal or a plan summary), else a pick. on_session(session).
function M.with_session(id, on_session, prompt)
  local function by_id(sid)
    client.exec('ktl.session.get', { sessionId = sid }, function(err, s)
      if err then
        notify('ktl: ' .. (err.message or 'no such session'), vim.log.levels.ERROR)
      else
        on_session(s)
      end
    end)
  end
  if id and id ~= '' then
    if #id >= 16 then
      return by_id(id)
    end
    client.exec('ktl.sessions.list', { limit = 10000, remote = false }, function(err, result)
      local found = {}
      for _, s in ipairs((result and result.sessions) or {}) do
        if s.sessionId:sub(1, #id) == id then
          table.insert(found, s)
        end
      end
      if err or #found ~= 1 then
        notify('ktl: ' .. (#found > 1 and 'ambiguous session id ' or 'no session ') .. id, vim.log.levels.ERROR)
        return
      end
      on_session(found[1])
    end)
    return
  end
  local sid = terminal.session_of() or vim.b.ktl_plan_session
  if sid then
    return by_id(sid)
  end
  M.pick_session({}, on_session, prompt)
end

--- Cancels the session shown in `buf` (the current buffer by default), else a running one picked.
function M.cancel(buf)
  local sid = terminal.session_of(buf)
  local function cancel(id)
    client.exec('ktl.session.cancel', { sessionId = id }, function(err)
      if err then
        notify('ktl: cancel: ' .. (err.message or ''), vim.log.levels.ERROR)
      end
    end)
  end
  if sid then
    cancel(sid)
  else
    M.pick_session({ state = 'running' }, function(s)
      cancel(s.sessionId)
    end)
  end
end

--- Opens a link with config.open_url, else the system's opener.
function M.open_url(url)
  if config.options.open_url then
    return config.options.open_url(url)
  end
  return compat.open_url(url)
end

--- Opens the browser replay of a session (`ktl.session.replay`'s one-time link).
function M.replay(id)
  M.with_session(id, function(s)
    client.exec_if_supported('ktl.session.replay', { sessionId = s.sessionId }, function(err, result)
      if err then
        notify('ktl: replay: ' .. (err.message or ''), vim.log.levels.ERROR)
      elseif result and result.url then
        M.last_replay_url = result.url
        vim.schedule(function()
          M.open_url(result.url)
        end)
      end
    end)
  end, 'ktl: replay which session?')
end

M.last_replay_url = nil -- the latest link M.replay opened

M.EXPORT_FORMATS = { 'asciicast', 'html', 'ndjson' }

--- Exports a session (`ktl.session.export`) as asciicast, html or ndjson to `path` (a file or
--- a directory; default: the server's exports/ directory). callback(err, path) optional.
function M.export(format, path, id, callback)
  format = (format and format ~= '') and format or 'asciicast'
  if not vim.tbl_contains(M.EXPORT_FORMATS, format) then
    notify('ktl: export format is one of ' .. table.concat(M.EXPORT_FORMATS, ', '), vim.log.levels.ERROR)
    return
  end
  local args = { format = format }
  if path and path ~= '' then
    args.path = vim.fn.fnamemodify(vim.fn.expand(path), ':p')
  end
  M.with_session(id, function(s)
    args.sessionId = s.sessionId
    client.exec_if_supported('ktl.session.export', args, function(err, result)
      if callback then
        callback(err, result and result.path)
      end
      if err then
        notify('ktl: export: ' .. (err.message or ''), vim.log.levels.ERROR)
      else
        notify('ktl: exported ' .. s.sessionId:sub(1, 8) .. ' to ' .. result.path)
      end
    end)
  end, 'ktl: export which session?')
end

--- Pins (or with pinned = false unpins) a session: retention keeps pinned sessions.
function M.pin(pinned, id)
  M.with_session(id, function(s)
    client.exec_if_supported('ktl.session.pin', { sessionId = s.sessionId, pinned = pinned ~= false }, function(err, r)
      if err then
        notify('ktl: pin: ' .. (err.message or ''), vim.log.levels.ERROR)
      else
        notify('ktl: ' .. (r.pinned and 'pinned ' or 'unpinned ') .. s.sessionId:sub(1, 8))
      end
    end)
  end, 'ktl: pin which session?')
end

--- A read-only scratch buffer named `name` in a new split.
function M.scratch(name, lines, filetype)
  vim.cmd(config.options.split)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_win_set_buf(0, buf)
  pcall(vim.api.nvim_buf_set_name, buf, name)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].filetype = filetype
  vim.bo[buf].modifiable = false
  return buf
end

return M
