-- ktl: Neovim client for ktl-lsp. See :help ktl.
local compat = require('ktl.compat')
local k8s = require('ktl.k8s')
local terminal = require('ktl.terminal')

local M = {}

M.config = {
  cmd = nil, -- default: { 'ktl-lsp' } (+ '--store', store)
  store = nil, -- session store path (ktl-lsp --store)
  filetypes = { 'yaml', 'json' },
  root_markers = { '.git', '.ktl.yaml', 'stack.yaml' },
  autostart = true,
  progress = true, -- vim.notify progress, at most one report per token every progress_interval_ms
  progress_interval_ms = 2000,
  codelens = true, -- refresh CodeLens on BufEnter/InsertLeave when the server offers it
  split = 'botright split',
  init_options = {},
  open_url = nil, -- function(url): how :KtlReplay opens a link (default: vim.ui.open, xdg-open/open, or print)
  sessions_limit = 200, -- how many sessions :KtlSessions lists
  status_icon = '⎈ ', -- before the context in M.status() / M.statusline()
}

M.client_id = nil
local ready = {}
local queue = {}
local progress_state = {}
M.progress_message = nil -- the latest progress line (see M.statusline())
M.k8s = {} -- the active context/namespace: {context, namespace, cluster} (ktl.k8s.contexts)
M.k8s_selection = nil -- what :KtlContext / :KtlNamespace picked (told again to a new server)
M.contexts_answer = nil -- the last ktl.k8s.contexts answer (completion)
M.running = {} -- sessionId -> true while it runs (the statusline's count)

local function notify(msg, level)
  vim.schedule(function()
    vim.notify(msg, level or vim.log.levels.INFO)
  end)
end

--- M.pick_target, falling back to an input box with `prompt` when the user asks to type a
--- name or there is nothing to pick (the reason is shown first). on_pick(choice), on_typed(text).
local function pick_or_type(purpose, opts, prompt, on_typed, on_pick)
  M.pick_target(purpose, opts, function(choice)
    if not choice.typed then
      return on_pick(choice)
    end
    if choice.why then
      notify('ktl ' .. (purpose:gsub('_', '-')) .. ': ' .. choice.why, vim.log.levels.WARN)
    end
    vim.ui.input({ prompt = prompt }, on_typed)
  end)
end

local function get_client()
  local id = M.client_id
  if not id then
    -- A client started elsewhere (lspconfig's ktl_lsp) with our handlers.
    local all = vim.lsp.get_clients and vim.lsp.get_clients() or vim.lsp.get_active_clients()
    for _, c in ipairs(all) do
      if (c.name == 'ktl' or c.name == 'ktl_lsp') and not compat.is_stopped(c) then
        M.client_id = c.id
        return c
      end
    end
    return nil
  end
  local client = vim.lsp.get_client_by_id(id)
  if not client or compat.is_stopped(client) then
    M.client_id = nil
    return nil
  end
  return client
end

local function progress_handler(default)
  return function(err, result, ctx, config)
    if default then
      pcall(default, err, result, ctx, config)
    end
    if not M.config.progress or not result or type(result.value) ~= 'table' then
      return
    end
    local value, token = result.value, tostring(result.token)
    local now = vim.loop.now()
    local st = progress_state[token] or { title = value.title or 'ktl', last = 0 }
    progress_state[token] = st
    if value.kind == 'begin' then
      st.title = value.title or st.title
      M.progress_message = st.title
      notify(st.title)
      st.last = now
    elseif value.kind == 'report' then
      M.progress_message = st.title .. ': ' .. (value.message or '')
      -- Neovim 0.7 keeps only the latest $/progress per token anyway; we notify sparingly.
      if now - st.last >= M.config.progress_interval_ms then
        st.last = now
        notify(M.progress_message)
      end
    elseif value.kind == 'end' then
      progress_state[token] = nil
      M.progress_message = nil
      notify(st.title .. ': ' .. (value.message or 'done'))
    end
  end
end

local function codelens_refresh()
  local client = get_client()
  if not client or not M.config.codelens then
    return
  end
  local caps = client.server_capabilities or {}
  if not caps.codeLensProvider then
    return
  end
  if compat.has_010 then
    pcall(vim.lsp.codelens.refresh, { bufnr = 0 })
  else
    pcall(vim.lsp.codelens.refresh)
  end
end

--- The client configuration (usable with vim.lsp.start or as an lspconfig default_config).
function M.lsp_config(bufnr)
  local cfg = M.config
  local cmd = cfg.cmd and vim.deepcopy(cfg.cmd) or { 'ktl-lsp' }
  if type(cmd) == 'string' then
    cmd = { cmd }
  end
  if cfg.store then
    table.insert(cmd, 2, '--store')
    table.insert(cmd, 3, cfg.store)
  end
  local handlers = {
    ['ktl/sessionData'] = function(_, result)
      terminal.on_data(result)
    end,
    ['ktl/sessionState'] = function(_, result)
      terminal.on_state(result)
      M._track(result)
      M._on_any_state()
    end,
    ['$/progress'] = progress_handler(vim.lsp.handlers['$/progress']),
  }
  return {
    name = 'ktl',
    cmd = cmd,
    root_dir = compat.root_dir(bufnr or 0, cfg.root_markers),
    init_options = vim.tbl_extend('force', cfg.init_options or {}, { sessionData = true }),
    handlers = handlers,
    on_init = function(client)
      ready[client.id] = true
      if M.client_id == nil then
        M.client_id = client.id
      end
      local waiting = queue[client.id] or {}
      queue[client.id] = nil
      for _, fn in ipairs(waiting) do
        fn(client)
      end
      vim.schedule(M._on_ready)
    end,
    on_exit = function(_, _, client_id)
      ready[client_id] = nil
      queue[client_id] = nil
      if M.client_id == client_id then
        M.client_id = nil
      end
    end,
    on_attach = function(_, buf)
      if M.config.codelens then
        vim.api.nvim_create_autocmd({ 'BufEnter', 'InsertLeave' }, {
          buffer = buf,
          group = vim.api.nvim_create_augroup('ktl_codelens_' .. buf, { clear = true }),
          callback = codelens_refresh,
        })
        vim.schedule(codelens_refresh)
      end
    end,
  }
end

--- The ktl client id, starting the server when needed (attached to `bufnr` when given).
function M.start(bufnr)
  local client = get_client()
  if client then
    if bufnr then
      compat.attach(bufnr, client.id)
    end
    return client.id
  end
  M.client_id = compat.start(M.lsp_config(bufnr), bufnr)
  return M.client_id
end

--- workspace/executeCommand `command` with one argument object; callback(err, result).
function M.exec(command, args, callback)
  callback = callback or function(err)
    if err then
      notify('ktl: ' .. command .. ': ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    end
  end
  local id = M.start(nil)
  if not id then
    callback({ message = 'could not start ktl-lsp' })
    return
  end
  local function go(client)
    compat.request(client, 'workspace/executeCommand', {
      command = command,
      arguments = { (args and next(args) ~= nil) and args or vim.empty_dict() },
    }, function(err, result)
      callback(err, result)
    end, 0)
  end
  if ready[id] then
    go(vim.lsp.get_client_by_id(id))
  else
    queue[id] = queue[id] or {}
    table.insert(queue[id], go)
  end
end
terminal.exec = M.exec

--- Commands the server advertises (executeCommandProvider.commands).
function M.server_commands()
  local client = get_client()
  local caps = client and client.server_capabilities or {}
  local provider = caps.executeCommandProvider or {}
  return provider.commands or {}
end

local function supported(command)
  for _, c in ipairs(M.server_commands()) do
    if c == command then
      return true
    end
  end
  return false
end

--- Runs fn() once the client is ready (at once when it is; scheduled otherwise).
local function when_ready(fn)
  local id = M.start(nil)
  if id and ready[id] then
    fn()
  elseif id then
    queue[id] = queue[id] or {}
    table.insert(queue[id], function()
      vim.schedule(fn)
    end)
  end
end

--- Like M.exec, but says so plainly when the server does not offer `command` (yet).
local function exec_if_supported(command, args, callback)
  when_ready(function()
    if not supported(command) then
      notify('ktl: this ktl-lsp does not implement ' .. command .. ' yet', vim.log.levels.WARN)
      return
    end
    M.exec(command, args, callback)
  end)
end

--- A new terminal buffer on a session that `command` (`ktl.run` or `ktl.exec`) starts detached
--- with the window's size. Returns the buffer.
local function start_terminal(command, args, title)
  local buf, win = terminal.new_window(title)
  local chan = terminal.open_term(buf)
  local cols, rows = terminal.size(win)
  args = vim.tbl_extend('force', args, { detach = true, cols = cols, rows = rows })
  vim.b[buf].ktl_pending = true
  M.exec(command, args, function(err, result)
    if err then
      pcall(vim.api.nvim_chan_send, chan, '[ktl] ' .. (err.message or (command .. ' failed')) .. '\r\n')
      notify('ktl: ' .. (err.message or (command .. ' failed')), vim.log.levels.ERROR)
      return
    end
    local term = terminal.bind(result.sessionId, buf, chan, result.state, nil)
    term.cols, term.rows = cols, rows
    M._track(result)
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
  return start_terminal('ktl.run', args, opts.title or 'run')
end

--- Shows a session (live if it is still running) in a new terminal buffer.
function M.open_session(session)
  if session.remote == true then
    -- A remote gateway's session (agent.url): the server mirrors it into a local session.
    M.exec('ktl.session.attach', { sessionId = session.sessionId, detach = true }, function(err, result)
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
    vim.cmd(M.config.split)
    vim.api.nvim_win_set_buf(0, terminal.terms[sid].buf)
    return terminal.terms[sid].buf
  end
  local buf = terminal.new_window(sid:sub(1, 8))
  local chan = terminal.open_term(buf)
  M.exec('ktl.session.output', { sessionId = sid }, function(err, result)
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
    if terminal.FINAL[session.state] then
      term.state = nil
      terminal.on_state(session)
    end
  end)
  return buf
end

local function present(v)
  return v ~= nil and v ~= vim.NIL
end

local function format_session(s)
  local exit = present(s.exitCode) and (' exit ' .. s.exitCode) or ''
  local flags = (s.pinned == true and ' [pinned]' or '') .. (s.remote == true and ' [remote]' or '')
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
  opts = vim.tbl_extend('keep', opts or {}, { limit = M.config.sessions_limit })
  M.exec('ktl.sessions.list', opts, function(err, result)
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

function M.sessions()
  M.pick_session({}, function(s)
    if s.kind == 'plan' then
      M.plan_summary(s.sessionId)
    else
      M.open_session(s)
    end
  end)
end

--- The session an action applies to: `id` (a full id or a unique prefix), else the one shown
--- in the current buffer (a terminal or a plan summary), else a pick. on_session(session).
function M.with_session(id, on_session, prompt)
  local function by_id(sid)
    M.exec('ktl.session.get', { sessionId = sid }, function(err, s)
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
    M.exec('ktl.sessions.list', { limit = 10000, remote = false }, function(err, result)
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

function M.cancel(buf)
  local sid = terminal.session_of(buf)
  local function cancel(id)
    M.exec('ktl.session.cancel', { sessionId = id }, function(err)
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

local function buffer_uri()
  return vim.uri_from_bufnr(vim.api.nvim_get_current_buf())
end

local function show_result(title)
  return function(err, result)
    if err then
      notify('ktl: ' .. title .. ': ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    if result and result.diff and result.diff ~= '' then
      vim.schedule(function()
        vim.cmd(M.config.split)
        local buf = vim.api.nvim_create_buf(false, true)
        vim.api.nvim_win_set_buf(0, buf)
        vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(result.diff, '\n'))
        vim.bo[buf].filetype = 'diff'
      end)
    else
      local state = result and result.state or '?'
      notify('ktl: ' .. title .. ' ' .. state .. ((result and result.exitCode) and (' (exit ' .. tostring(result.exitCode) .. ')') or ''))
    end
  end
end

function M.apply(opts)
  exec_if_supported('ktl.apply', vim.tbl_extend('force', { uri = buffer_uri() }, opts or {}), show_result('apply'))
end

function M.diff(opts)
  exec_if_supported('ktl.diff', vim.tbl_extend('force', { uri = buffer_uri() }, opts or {}), show_result('diff'))
end

--- :KtlLogs's line: `[TARGET] [-n NS] [-c CONTAINER] [--context C]`; TARGET a pod, `kind/name`
--- or a label selector (`app=web`). Without one, picks from the cluster (|M.pick_target|).
function M.logs(line)
  local p, perr = k8s.parse_target_line(line or '')
  if not p then
    notify('ktl logs: ' .. perr, vim.log.levels.ERROR)
    return
  end
  local function start(args)
    args.detach = true
    for _, key in ipairs({ 'namespace', 'container', 'context' }) do
      if p[key] then
        args[key] = p[key]
      end
    end
    exec_if_supported('ktl.logs', args, function(err, result)
      if err then
        notify('ktl: logs: ' .. (err.message or ''), vim.log.levels.ERROR)
        return
      end
      vim.schedule(function()
        M.open_session(result)
      end)
    end)
  end
  local function typed(t)
    t = t and vim.trim(t) or ''
    if t == '' then
      return
    elseif t:find('=') then
      return start({ selector = t })
    end
    local target = k8s.parse_target(t)
    if not target then
      notify('ktl logs: not a target: ' .. t, vim.log.levels.ERROR)
      return
    end
    start(target.pod and { pod = target.pod } or { workload = target.workload or ('service/' .. target.service) })
  end
  if p.target then
    return typed(p.target)
  end
  pick_or_type('logs', p, 'ktl logs (pod, kind/name or selector): ', typed, function(choice)
    local t = k8s.item_target(choice.item, choice.answer)
    if t and not t.service then
      p.namespace = p.namespace or t.namespace
      start(t.pod and { pod = t.pod } or { workload = t.workload })
    end
  end)
end

function M.open_url(url)
  if M.config.open_url then
    return M.config.open_url(url)
  end
  return compat.open_url(url)
end

--- Opens the browser replay of a session (`ktl.session.replay`'s one-time link).
function M.replay(id)
  M.with_session(id, function(s)
    exec_if_supported('ktl.session.replay', { sessionId = s.sessionId }, function(err, result)
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
    exec_if_supported('ktl.session.export', args, function(err, result)
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
    exec_if_supported('ktl.session.pin', { sessionId = s.sessionId, pinned = pinned ~= false }, function(err, r)
      if err then
        notify('ktl: pin: ' .. (err.message or ''), vim.log.levels.ERROR)
      else
        notify('ktl: ' .. (r.pinned and 'pinned ' or 'unpinned ') .. s.sessionId:sub(1, 8))
      end
    end)
  end, 'ktl: pin which session?')
end

local function scratch(name, lines, filetype)
  vim.cmd(M.config.split)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_win_set_buf(0, buf)
  pcall(vim.api.nvim_buf_set_name, buf, name)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].filetype = filetype
  vim.bo[buf].modifiable = false
  return buf
end

local function describe_session(s)
  local text = (s.title or s.sessionId) .. ' (' .. s.sessionId .. ', ' .. s.state
  if present(s.exitCode) then
    text = text .. ' exit ' .. tostring(s.exitCode)
  end
  return text .. ', ' .. (s.createdAt or '') .. ')'
end

local function ms_text(ms)
  local sign = ms < 0 and '-' or '+'
  ms = math.abs(ms)
  if ms < 1000 then
    return sign .. ms .. 'ms'
  end
  return sign .. string.format('%.1fs', ms / 1000)
end

--- The lines of a comparison (`ktl.sessions.diff`): a header, then the unified diff.
function M.compare_lines(r)
  local codes = r.exitCodes or {}
  local a_code = present(codes[1]) and tostring(codes[1]) or 'none'
  local b_code = present(codes[2]) and tostring(codes[2]) or 'none'
  local lines = {
    '# ktl: compare two sessions',
    '# a: ' .. describe_session(r.a),
    '# b: ' .. describe_session(r.b),
    '# exit codes: ' .. a_code .. ' -> ' .. b_code .. (a_code == b_code and ' (same)' or ''),
    '# duration: ' .. ms_text(r.durationDeltaMs or 0) .. ' (b - a)',
  }
  if r.truncated == true then
    table.insert(lines, '# output truncated: only the first lines were compared')
  end
  table.insert(lines, '')
  local diff = r.outputDiff or ''
  if diff == '' then
    table.insert(lines, '(the output is the same, volatile tokens aside)')
  else
    for _, l in ipairs(vim.split((diff:gsub('\n$', '')), '\n')) do
      table.insert(lines, l)
    end
  end
  return lines
end

--- Compares two sessions (`ktl.sessions.diff`) in a scratch buffer ('filetype' diff).
--- a, b: ids or unique prefixes; picked when omitted.
function M.compare(a, b)
  local function go(sa, sb)
    exec_if_supported('ktl.sessions.diff', { a = sa.sessionId, b = sb.sessionId }, function(err, r)
      if err then
        notify('ktl: compare: ' .. (err.message or ''), vim.log.levels.ERROR)
        return
      end
      vim.schedule(function()
        local name = 'ktl://compare/' .. sa.sessionId:sub(1, 8) .. '..' .. sb.sessionId:sub(1, 8)
        M.last_compare_buf = scratch(name, M.compare_lines(r), 'diff')
      end)
    end)
  end
  local function second(sa)
    if b and b ~= '' then
      M.with_session(b, function(sb)
        go(sa, sb)
      end)
    else
      M.pick_session({}, function(sb)
        go(sa, sb)
      end, 'ktl: compare ' .. sa.sessionId:sub(1, 8) .. ' with…')
    end
  end
  if a and a ~= '' then
    M.with_session(a, second)
  else
    M.pick_session({}, second, 'ktl: compare: the first (earlier) session')
  end
end

-- Plan summary buffers: plan session id -> buffer; buffer -> {line -> node session id}.
M.plan_bufs = {}
M.plan_node_sessions = {}

local NODE_MARK = { done = '✓', failed = '✗', error = '✗', cancelled = '⊘', skipped = '-', running = '…', pending = ' ' }

--- The lines of a plan summary from the plan session and its node sessions.
function M.plan_lines(plan, children)
  local record = type(plan.meta) == 'table' and type(plan.meta.plan) == 'table' and plan.meta.plan or {}
  local exit = present(plan.exitCode) and (' (exit ' .. tostring(plan.exitCode) .. ')') or ''
  local err = present(plan.error) and plan.error ~= '' and (': ' .. plan.error) or ''
  local lines = {
    (plan.title or 'plan') .. '  ' .. plan.state .. exit .. err,
    'session ' .. plan.sessionId .. '   <CR> on a node: its terminal   r: refresh   :KtlReplay',
    '',
  }
  local by_node = {}
  for _, c in ipairs(children or {}) do
    local node = type(c.meta) == 'table' and present(c.meta.node) and tostring(c.meta.node) or nil
    if node then
      by_node[node] = c -- the newest attempt wins (children come oldest first)
    end
  end
  local rows, seen = {}, {}
  for _, n in ipairs(record.nodes or {}) do
    if type(n) == 'table' and present(n.id) then
      table.insert(rows, n)
      seen[tostring(n.id)] = true
    end
  end
  for node, c in pairs(by_node) do
    if not seen[node] then
      table.insert(rows, { id = node, state = c.state, sessionId = c.sessionId, exitCode = c.exitCode })
    end
  end
  local node_sessions = {}
  for _, n in ipairs(rows) do
    local id = tostring(n.id)
    local child = by_node[id]
    local state = present(n.state) and n.state or (child and child.state) or 'pending'
    if child and child.state == 'running' then
      state = 'running'
    end
    local sid = present(n.sessionId) and n.sessionId or (child and child.sessionId) or nil
    local code = present(n.exitCode) and n.exitCode or (child and present(child.exitCode) and child.exitCode) or nil
    local line = string.format(
      '  %s %-20s %-10s%s%s%s',
      NODE_MARK[state] or '?',
      id,
      state,
      code and ('exit ' .. tostring(code) .. '  ') or '',
      sid and sid:sub(1, 8) or '',
      present(n.reason) and ('  ' .. n.reason) or ''
    )
    table.insert(lines, line)
    node_sessions[#lines] = sid
  end
  return lines, node_sessions
end

--- Redraws a plan's summary buffer from ktl.session.get + ktl.sessions.list {parentId}.
function M.refresh_plan(plan_id, callback)
  M.exec('ktl.session.get', { sessionId = plan_id }, function(err, plan)
    if err then
      return
    end
    M.exec('ktl.sessions.list', { parentId = plan_id, limit = 1000, remote = false }, function(err2, res)
      local children = (not err2 and res and res.sessions) or {}
      table.sort(children, function(x, y)
        return (x.createdAt or '') < (y.createdAt or '')
      end)
      vim.schedule(function()
        local buf = M.plan_bufs[plan_id]
        if buf and vim.api.nvim_buf_is_valid(buf) then
          local lines, node_sessions = M.plan_lines(plan, children)
          vim.bo[buf].modifiable = true
          vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
          vim.bo[buf].modifiable = false
          vim.b[buf].ktl_plan_state = plan.state
          M.plan_node_sessions[buf] = node_sessions
        end
        if callback then
          callback(plan, children)
        end
      end)
    end)
  end)
end

--- Shows a plan session's summary buffer (a line per node, live while the plan runs).
function M.plan_summary(plan_id)
  local buf = M.plan_bufs[plan_id]
  if buf and vim.api.nvim_buf_is_valid(buf) then
    vim.cmd(M.config.split)
    vim.api.nvim_win_set_buf(0, buf)
  else
    buf = scratch('ktl://plan/' .. plan_id:sub(1, 8), { 'ktl: loading plan ' .. plan_id }, 'ktlplan')
    M.plan_bufs[plan_id] = buf
    vim.b[buf].ktl_plan_session = plan_id
    local function open_node()
      local sid = (M.plan_node_sessions[buf] or {})[vim.api.nvim_win_get_cursor(0)[1]]
      if sid and sid ~= vim.NIL then
        M.with_session(sid, function(s)
          vim.schedule(function()
            M.open_session(s)
          end)
        end)
      end
    end
    vim.api.nvim_buf_set_keymap(buf, 'n', '<CR>', '', { noremap = true, callback = open_node, desc = 'ktl: open the node session' })
    vim.api.nvim_buf_set_keymap(buf, 'n', 'r', '', {
      noremap = true,
      callback = function()
        M.refresh_plan(plan_id)
      end,
      desc = 'ktl: refresh',
    })
    vim.api.nvim_create_autocmd('BufWipeout', {
      buffer = buf,
      once = true,
      callback = function()
        M.plan_bufs[plan_id] = nil
        M.plan_node_sessions[buf] = nil
      end,
    })
  end
  M.refresh_plan(plan_id)
  return buf
end

-- While a summary is open, every session state change (nodes start and end) redraws it,
-- at most every 200 ms.
local plan_refresh_pending = false
function M._on_any_state()
  if plan_refresh_pending or next(M.plan_bufs) == nil then
    return
  end
  plan_refresh_pending = true
  vim.defer_fn(function()
    plan_refresh_pending = false
    for plan_id, buf in pairs(M.plan_bufs) do
      if vim.api.nvim_buf_is_valid(buf) and not terminal.FINAL[vim.b[buf].ktl_plan_state or ''] then
        M.refresh_plan(plan_id)
      end
    end
  end, 200)
end

--- Runs a plan or ktl stack.yaml (`ktl.plan.run`, detached) and opens its summary buffer.
--- file: default the current buffer's. opts: extra ktl.plan.run arguments (nodes, dryRun, ...).
function M.plan(file, opts)
  local uri
  if file and file ~= '' then
    uri = vim.uri_from_fname(vim.fn.fnamemodify(vim.fn.expand(file), ':p'))
  else
    uri = buffer_uri()
  end
  local args = vim.tbl_extend('force', { uri = uri }, opts or {}, { detach = true })
  exec_if_supported('ktl.plan.run', args, function(err, result)
    if err then
      notify('ktl: plan: ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    vim.schedule(function()
      M.plan_summary(result.sessionId)
    end)
  end)
end

-- Kubernetes: the active context/namespace, exec terminals, port-forwards ---------------------

local function redraw_status()
  vim.schedule(function()
    pcall(vim.cmd, 'redrawstatus!')
  end)
end

--- Tracks running sessions from `ktl/sessionState` and SessionResults (the statusline's count).
function M._track(state)
  if type(state) ~= 'table' or not state.sessionId then
    return
  end
  local before = M.running[state.sessionId]
  if state.state == 'running' then
    M.running[state.sessionId] = true
  elseif terminal.FINAL[state.state or ''] then
    M.running[state.sessionId] = nil
  end
  if before ~= M.running[state.sessionId] then
    redraw_status()
  end
end

--- How many sessions run now.
function M.running_count()
  local n = 0
  for _ in pairs(M.running) do
    n = n + 1
  end
  return n
end

--- Reloads the running sessions (`ktl.sessions.list`, local ones).
function M.refresh_running(callback)
  M.exec('ktl.sessions.list', { state = 'running', limit = 1000, remote = false }, function(err, result)
    if not err and result then
      M.running = {}
      for _, s in ipairs(result.sessions or {}) do
        M.running[s.sessionId] = true
      end
      redraw_status()
    end
    if callback then
      callback()
    end
  end)
end

--- Reloads the active context/namespace (`ktl.k8s.contexts`) into M.k8s; callback(M.k8s).
function M.refresh_k8s(callback)
  if not supported('ktl.k8s.contexts') then
    M.k8s = {}
    if callback then
      callback(M.k8s)
    end
    return
  end
  M.exec('ktl.k8s.contexts', {}, function(err, result)
    if err then
      M.k8s = { error = err.message }
    else
      M.contexts_answer = result
      M.k8s = k8s.status_of(result)
    end
    redraw_status()
    if callback then
      callback(M.k8s)
    end
  end)
end

--- The server is up: tell it the pick again (a new server starts from the kubeconfig's), then
--- load the statusline's context and running sessions.
function M._on_ready()
  local sel = M.k8s_selection
  if sel and supported('ktl.k8s.use') then
    M.exec('ktl.k8s.use', vim.deepcopy(sel), function(err)
      if err then
        M.k8s_selection = nil
        notify('ktl: forgot the Kubernetes pick: ' .. (err.message or ''), vim.log.levels.WARN)
      end
      M.refresh_k8s()
    end)
  else
    M.refresh_k8s()
  end
  M.refresh_running()
end

--- "⎈ kind-dev/web · 2 running": the active context/namespace and the running sessions.
function M.status()
  return k8s.status_text(M.k8s, M.running_count(), M.config.status_icon)
end

local function after_use(err, result, callback)
  if err then
    notify('ktl: ' .. (err.message or 'ktl.k8s.use failed'), vim.log.levels.ERROR)
    return
  end
  M.k8s_selection = k8s.selection_of(result)
  M.refresh_k8s(function(status)
    notify('ktl: context ' .. tostring(status.context) .. ', namespace ' .. tostring(status.namespace))
    if callback then
      callback(status)
    end
  end)
end

--- Switches this workspace's context (`ktl.k8s.use`): `name`, else picked with vim.ui.select.
--- Another context starts from its own namespace. callback(status) optional.
function M.pick_context(name, callback)
  exec_if_supported('ktl.k8s.contexts', {}, function(err, answer)
    if err then
      notify('ktl: ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    M.contexts_answer = answer
    local function use(ctx)
      local args = { context = ctx, namespace = '' }
      if ctx ~= '' and ctx == answer.current then
        args = { context = ctx } -- the active one again: keep the namespace
      end
      M.exec('ktl.k8s.use', args, function(e, r)
        after_use(e, r, callback)
      end)
    end
    if name and name ~= '' then
      return use(name)
    end
    local items = k8s.context_items(answer, M.k8s_selection)
    if #items == 0 then
      notify('ktl: no Kubernetes contexts' .. (k8s.present(answer.error) and (': ' .. answer.error) or ' in the kubeconfig'), vim.log.levels.ERROR)
      return
    end
    vim.schedule(function()
      vim.ui.select(items, {
        prompt = 'ktl: Kubernetes context (active: ' .. tostring(k8s.present(answer.current) and answer.current or 'none') .. ')',
        format_item = function(i)
          return i.label
        end,
      }, function(choice)
        if choice then
          use(choice.context)
        end
      end)
    end)
  end)
end

--- Switches this workspace's namespace (`ktl.k8s.use`): `ns` ('' = the context's), else picked
--- (known namespaces, "other namespace…" asks). callback(status) optional.
function M.pick_namespace(ns, callback)
  local function use(n)
    exec_if_supported('ktl.k8s.use', { namespace = n }, function(e, r)
      after_use(e, r, callback)
    end)
  end
  if ns then
    return use(ns)
  end
  exec_if_supported('ktl.k8s.contexts', {}, function(err, answer)
    if err then
      notify('ktl: ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    if not k8s.present(answer.current) then
      notify('ktl: no Kubernetes context' .. (k8s.present(answer.error) and (': ' .. answer.error) or ''), vim.log.levels.ERROR)
      return
    end
    M.contexts_answer = answer
    local function show(listed)
      local names = vim.list_extend(vim.deepcopy(type(answer.namespaces) == 'table' and answer.namespaces or {}), listed)
      local items = k8s.namespace_items(vim.tbl_extend('force', answer, { namespaces = names }))
      vim.ui.select(items, {
        prompt = 'ktl: namespace (context ' .. answer.current .. ')',
        format_item = function(i)
          return i.label
        end,
      }, function(choice)
        if not choice then
          return
        end
        if choice.namespace then
          return use(choice.namespace)
        end
        vim.ui.input({ prompt = 'ktl: namespace: ' }, function(text)
          text = text and vim.trim(text) or ''
          if text ~= '' then
            use(text)
          end
        end)
      end)
    end
    if not supported('ktl.k8s.list') then
      return vim.schedule(function()
        show({})
      end)
    end
    -- the cluster's namespaces, when it can be listed (else the known ones)
    M.exec('ktl.k8s.list', { kinds = { 'namespaces' } }, function(lerr, listed)
      vim.schedule(function()
        show(lerr and {} or k8s.namespaces_of(listed))
      end)
    end)
  end)
end

local PICK_TITLES = { exec = 'exec into', logs = 'logs of', port_forward = 'port-forward to' }

--- Picks what `purpose` ('exec', 'logs', 'port_forward') acts on from `ktl.k8s.list` with
--- vim.ui.select. {opts}: `namespace`, `context` (default: the workspace's). Calls
--- on_choice({item, answer}), or on_choice({typed = true, why}) when the user chose "type a
--- name…" or there is nothing to pick from (`why`: no cluster, RBAC, nothing running; also
--- when the server lacks ktl.k8s.list). Nothing when the pick is dismissed.
function M.pick_target(purpose, opts, on_choice)
  opts = opts or {}
  when_ready(function()
    if not supported('ktl.k8s.list') then
      return on_choice({ typed = true })
    end
    local args = { kinds = k8s.LIST_KINDS[purpose] }
    for _, key in ipairs({ 'namespace', 'context' }) do
      if k8s.present(opts[key]) then
        args[key] = opts[key]
      end
    end
    M.exec('ktl.k8s.list', args, function(err, answer)
      vim.schedule(function()
        if err or type(answer) ~= 'table' then
          return on_choice({ typed = true, why = 'could not list the cluster: ' .. tostring(err and err.message or 'no answer') })
        end
        local items = k8s.target_items(answer, purpose)
        if #items <= 1 then
          return on_choice({ typed = true, why = 'no ' .. k8s.WHAT[purpose] .. ' in namespace ' .. tostring(answer.namespace) })
        end
        vim.ui.select(items, {
          prompt = string.format('ktl %s (context %s, namespace %s)', PICK_TITLES[purpose], tostring(answer.context), tostring(answer.namespace)),
          format_item = function(i)
            return i.label
          end,
        }, function(choice)
          if not choice then
            return
          elseif choice.typed then
            return on_choice({ typed = true })
          end
          on_choice({ item = choice.item, answer = answer })
        end)
      end)
    end)
  end)
end

--- The ports to forward to a listed item (vim.ui.select: `:PORT` of one, all, or "other…" that
--- asks with vim.ui.input); on_ports(list).
function M.pick_ports(item, label, on_ports)
  local items = k8s.port_items(item)
  local function ask(default)
    vim.ui.input({ prompt = 'ktl port-forward ' .. label .. ' (LOCAL:REMOTE or :REMOTE): ', default = default }, function(text)
      if not text or vim.trim(text) == '' then
        return
      end
      local ports, err = k8s.parse_ports({ text })
      if not ports then
        notify('ktl port-forward: ' .. err, vim.log.levels.ERROR)
        return
      end
      on_ports(ports)
    end)
  end
  if #items == 1 then
    return ask(':80')
  end
  vim.ui.select(items, {
    prompt = 'ktl port-forward ' .. label .. ': ports',
    format_item = function(i)
      return i.label
    end,
  }, function(choice)
    if not choice then
      return
    elseif choice.ports then
      return on_ports(choice.ports)
    end
    local first = items[1].ports[1]:sub(2)
    ask(first .. ':' .. first)
  end)
end

--- False when the server is up and lacks `command` (says so); true otherwise.
local function offers(command)
  local id = M.start(nil)
  if id and ready[id] and not supported(command) then
    notify('ktl: this ktl-lsp does not implement ' .. command .. ' yet', vim.log.levels.WARN)
    return false
  end
  return true
end

--- A terminal buffer on a shell (or `spec.command`) in a container: `ktl.exec` with
--- {pod | workload, namespace?, container?, command?, context?}. Returns the buffer.
function M.exec_into(spec)
  if not offers('ktl.exec') then
    return nil
  end
  local args = {}
  for _, key in ipairs({ 'pod', 'workload', 'namespace', 'container', 'command', 'context', 'tty', 'title' }) do
    if k8s.present(spec[key]) then
      args[key] = spec[key]
    end
  end
  return start_terminal('ktl.exec', args, 'exec/' .. k8s.target_label(args):gsub('/', '-'))
end

--- :KtlExec's line: `[TARGET] [-n NS] [-c CONTAINER] [-- COMMAND...]`. Without a target,
--- picks one from the cluster (the line's -n, --context, -c and command still apply); a pod
--- with several containers asks which.
function M.exec_command(line)
  local function go(text)
    if not text or vim.trim(text) == '' then
      return
    end
    local spec, err = k8s.exec_spec(text)
    if not spec then
      notify('ktl exec: ' .. err, vim.log.levels.ERROR)
      return
    end
    M.exec_into(spec)
  end
  local p, perr = k8s.parse_target_line(line or '')
  if not p then
    notify('ktl exec: ' .. perr, vim.log.levels.ERROR)
    return
  end
  if p.target then
    return go(line)
  end
  pick_or_type('exec', p, 'ktl exec (pod or kind/name [-n ns] [-c container] [-- cmd]): ', go, function(choice)
    local spec = k8s.item_target(choice.item, choice.answer)
    if not spec or spec.service then
      return
    end
    spec.context, spec.command = p.context, p.command
    local function start(container)
      spec.container = container
      M.exec_into(spec)
    end
    local containers = type(choice.item.containers) == 'table' and choice.item.containers or {}
    if not spec.pod or p.container or #containers < 2 then
      return start(p.container)
    end
    vim.ui.select(containers, { prompt = 'ktl exec: container in pod/' .. spec.pod }, function(c)
      if c then
        start(c)
      end
    end)
  end)
end

--- Starts a port-forward (`ktl.portForward` {pod | service | workload, namespace?, ports}) and
--- shows its URLs with vim.notify. callback(err, result) optional.
function M.port_forward(spec, callback)
  local label = k8s.target_label(spec)
  exec_if_supported('ktl.portForward', spec, function(err, result)
    if callback then
      callback(err, result)
    end
    if err then
      notify('ktl: port-forward ' .. label .. ': ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    M._track(result)
    local forwards = (result and type(result.forwards) == 'table') and result.forwards or {}
    if #forwards == 0 then
      local why = k8s.present(result and result.error) and (': ' .. result.error) or ''
      notify('ktl: port-forward ' .. label .. ' ' .. tostring(result and result.state) .. why, vim.log.levels.ERROR)
      return
    end
    M.last_forward = result
    notify('ktl: ' .. k8s.forward_message(forwards, label) .. '   (:KtlForwards to open or stop)')
  end)
end

local function port_forward_line(line)
  local spec, err = k8s.port_forward_spec(line or '')
  if not spec then
    notify('ktl port-forward: ' .. err, vim.log.levels.ERROR)
    return
  end
  M.port_forward(spec)
end

--- :KtlPortForward's line: `TARGET PORTS... [-n NS]`. Without a target, picks one from the
--- cluster (the line's -n and --context apply), then its ports.
function M.port_forward_command(line)
  local p, perr = k8s.parse_target_line(line or '')
  if not p then
    notify('ktl port-forward: ' .. perr, vim.log.levels.ERROR)
    return
  end
  if p.target then
    return port_forward_line(line)
  end
  local function typed(text)
    if text and vim.trim(text) ~= '' then
      port_forward_line(text)
    end
  end
  pick_or_type('port_forward', p, 'ktl port-forward (TARGET PORTS... [-n ns]): ', typed, function(choice)
    local spec = k8s.item_target(choice.item, choice.answer)
    if not spec then
      return
    end
    spec.context = p.context
    M.pick_ports(choice.item, k8s.target_label(spec), function(ports)
      spec.ports = ports
      M.port_forward(spec)
    end)
  end)
end

--- The running port-forwards (vim.ui.select): open one of its URLs, or stop it.
function M.forwards()
  exec_if_supported('ktl.sessions.list', { kind = 'port-forward', state = 'running', limit = M.config.sessions_limit, remote = false }, function(err, result)
    if err then
      notify('ktl: ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    local live = {}
    for _, s in ipairs(result.sessions or {}) do
      if #k8s.forwards_of(s) > 0 then
        table.insert(live, s)
      end
    end
    if #live == 0 then
      notify('ktl: no running port-forwards')
      return
    end
    local function urls(s)
      local out = {}
      for _, f in ipairs(k8s.forwards_of(s)) do
        table.insert(out, f.url .. ' -> ' .. tostring(f.remote))
      end
      return table.concat(out, ', ')
    end
    vim.schedule(function()
      vim.ui.select(live, {
        prompt = 'ktl: port-forwards',
        format_item = function(s)
          return (s.title or s.sessionId) .. '   ' .. urls(s)
        end,
      }, function(s)
        if not s then
          return
        end
        local actions = {}
        for _, f in ipairs(k8s.forwards_of(s)) do
          table.insert(actions, { label = 'open ' .. f.url, url = f.url })
        end
        table.insert(actions, { label = 'stop ' .. (s.title or s.sessionId), stop = true })
        vim.ui.select(actions, {
          prompt = 'ktl: ' .. (s.title or s.sessionId),
          format_item = function(a)
            return a.label
          end,
        }, function(a)
          if not a then
            return
          end
          if a.url then
            M.open_url(a.url)
          else
            M.exec('ktl.session.cancel', { sessionId = s.sessionId }, function(e, r)
              if e then
                notify('ktl: stop: ' .. (e.message or ''), vim.log.levels.ERROR)
              else
                M._track(r)
                notify('ktl: stopped ' .. (s.title or s.sessionId))
              end
            end)
          end
        end)
      end)
    end)
  end)
end

--- Completion for :KtlContext (the last ktl.k8s.contexts answer).
function M.complete_contexts(lead)
  local out = {}
  for _, c in ipairs((M.contexts_answer or {}).contexts or {}) do
    if c.name:sub(1, #lead) == lead then
      table.insert(out, c.name)
    end
  end
  return out
end

--- Defines lspconfig's `ktl_lsp` server from this plugin's configuration (see :help ktl-lspconfig).
function M.lspconfig()
  local ok, configs = pcall(require, 'lspconfig.configs')
  if not ok then
    notify('ktl: nvim-lspconfig is not installed', vim.log.levels.WARN)
    return false
  end
  if not configs.ktl_lsp then
    local cfg = M.lsp_config()
    local markers = M.config.root_markers
    configs.ktl_lsp = {
      default_config = {
        cmd = cfg.cmd,
        filetypes = M.config.filetypes,
        root_dir = function(fname)
          return require('lspconfig.util').root_pattern(unpack(markers))(fname) or vim.fn.getcwd()
        end,
        init_options = cfg.init_options,
        handlers = cfg.handlers,
        on_init = cfg.on_init,
        on_exit = cfg.on_exit,
      },
      docs = { description = 'ktl-lsp: Kubernetes sessions and manifests (editors/neovim)' },
    }
  end
  return true
end

--- For the statusline: the latest progress message, else M.status() (the active context and
--- namespace, the running sessions), or ''.
function M.statusline()
  return M.progress_message or M.status()
end

--- CodeLens commands run through the plugin (client-side), so a lens gets the same handling
--- as the user command: a live terminal for sessions, a plain note when the server lacks it.
local LENS_COMMANDS = { 'ktl.apply', 'ktl.diff', 'ktl.delete', 'ktl.verify', 'ktl.logs', 'ktl.plan.run', 'ktl.exec', 'ktl.portForward' }
M.last_lens_command = nil

local function register_lens_commands()
  for _, name in ipairs(LENS_COMMANDS) do
    vim.lsp.commands[name] = function(command)
      M.last_lens_command = command.command
      local args = (command.arguments or {})[1] or {}
      if name == 'ktl.exec' then
        return M.exec_into(args) -- a terminal, like :KtlExec
      elseif name == 'ktl.portForward' then
        return M.port_forward(args) -- its URLs with vim.notify, like :KtlPortForward
      end
      local callback = show_result(name)
      if name == 'ktl.plan.run' then
        args.detach = true
        callback = function(err, result)
          if err then
            notify('ktl: ' .. name .. ': ' .. (err.message or ''), vim.log.levels.ERROR)
          elseif result and result.sessionId then
            vim.schedule(function()
              M.plan_summary(result.sessionId)
            end)
          end
        end
      elseif name == 'ktl.logs' then
        args.detach = true
        callback = function(err, result)
          if err then
            notify('ktl: ' .. name .. ': ' .. (err.message or ''), vim.log.levels.ERROR)
          elseif result and result.sessionId then
            vim.schedule(function()
              M.open_session(result)
            end)
          end
        end
      end
      exec_if_supported(name, args, callback)
    end
  end
  -- "ran 2 min ago · open replay" above a file: opened by us (Neovim < 0.10 cannot open a
  -- URL from window/showDocument).
  vim.lsp.commands['ktl.session.openReplay'] = function(command)
    M.last_lens_command = command.command
    local args = (command.arguments or {})[1] or {}
    M.replay(args.sessionId)
  end
end

local function create_commands()
  local cmd = vim.api.nvim_create_user_command
  cmd('KtlRun', function(a)
    M.run(a.args)
  end, { nargs = '+', complete = 'shellcmd', desc = 'ktl: run a command as a session' })
  cmd('KtlSessions', function()
    M.sessions()
  end, { desc = 'ktl: pick a session and show it' })
  cmd('KtlCancel', function()
    M.cancel()
  end, { desc = 'ktl: cancel the session in this buffer' })
  cmd('KtlApply', function()
    M.apply()
  end, { desc = 'ktl: apply this manifest' })
  cmd('KtlDiff', function()
    M.diff()
  end, { desc = 'ktl: diff this manifest against the cluster' })
  cmd('KtlLogs', function(a)
    M.logs(a.args)
  end, { nargs = '*', desc = 'ktl: follow logs (no target: pick one)' })
  cmd('KtlReplay', function(a)
    M.replay(a.args)
  end, { nargs = '?', desc = 'ktl: open a session replay in the browser' })
  cmd('KtlExport', function(a)
    M.export(a.fargs[1], a.fargs[2])
  end, {
    nargs = '+',
    complete = function(lead, line)
      if #vim.split(line, '%s+') <= 2 then
        return vim.tbl_filter(function(f)
          return f:sub(1, #lead) == lead
        end, M.EXPORT_FORMATS)
      end
      return vim.fn.getcompletion(lead, 'file')
    end,
    desc = 'ktl: export a session (asciicast, html, ndjson)',
  })
  cmd('KtlPin', function(a)
    M.pin(not a.bang, a.args)
  end, { nargs = '?', bang = true, desc = 'ktl: pin a session (! unpins)' })
  cmd('KtlCompare', function(a)
    M.compare(a.fargs[1], a.fargs[2])
  end, { nargs = '*', desc = 'ktl: compare two sessions' })
  cmd('KtlPlan', function(a)
    M.plan(a.args)
  end, { nargs = '?', complete = 'file', desc = 'ktl: run a plan or stack.yaml' })
  cmd('KtlContext', function(a)
    M.pick_context(a.args)
  end, { nargs = '?', complete = M.complete_contexts, desc = 'ktl: switch the Kubernetes context' })
  cmd('KtlNamespace', function(a)
    M.pick_namespace(a.args ~= '' and a.args or (a.bang and '' or nil))
  end, { nargs = '?', bang = true, desc = "ktl: switch the namespace (! back to the context's)" })
  cmd('KtlExec', function(a)
    M.exec_command(a.args)
  end, { nargs = '*', desc = 'ktl: a shell in a pod or workload (no target: pick one)' })
  cmd('KtlPortForward', function(a)
    M.port_forward_command(a.args)
  end, { nargs = '*', desc = 'ktl: forward local ports to a pod, Service or workload (no target: pick one)' })
  cmd('KtlForwards', function()
    M.forwards()
  end, { desc = 'ktl: open or stop a running port-forward' })
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', M.config, opts or {})
  create_commands()
  register_lens_commands()
  local group = vim.api.nvim_create_augroup('ktl', { clear = true })
  if M.config.autostart then
    vim.api.nvim_create_autocmd('FileType', {
      group = group,
      pattern = M.config.filetypes,
      callback = function(a)
        if vim.bo[a.buf].buftype == '' then
          M.start(a.buf)
        end
      end,
    })
  end
  vim.api.nvim_create_autocmd({ 'VimResized', 'BufWinEnter', 'WinEnter' }, {
    group = group,
    callback = function()
      terminal.check_size()
    end,
  })
end

return M
