-- ktl: Neovim client for ktl-lsp. See :help ktl.
local compat = require('ktl.compat')
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
}

M.client_id = nil
local ready = {}
local queue = {}
local progress_state = {}
M.progress_message = nil -- the latest progress line (see M.statusline())

local function notify(msg, level)
  vim.schedule(function()
    vim.notify(msg, level or vim.log.levels.INFO)
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

--- Like M.exec, but says so plainly when the server does not offer `command` (yet).
local function exec_if_supported(command, args, callback)
  local id = M.start(nil)
  local function go()
    if not supported(command) then
      notify('ktl: this ktl-lsp does not implement ' .. command .. ' yet', vim.log.levels.WARN)
      return
    end
    M.exec(command, args, callback)
  end
  if id and ready[id] then
    go()
  elseif id then
    queue[id] = queue[id] or {}
    table.insert(queue[id], function()
      vim.schedule(go)
    end)
  end
end

--- Runs `command` (a shell command line) as a session in a new terminal buffer.
--- opts: argv (instead of command), title, cwd, env. Returns the buffer.
function M.run(command, opts)
  opts = opts or {}
  local buf, win = terminal.new_window(opts.title or 'run')
  local chan = terminal.open_term(buf)
  local cols, rows = terminal.size(win)
  local args = {
    detach = true,
    cols = cols,
    rows = rows,
    title = opts.title,
    cwd = opts.cwd,
    env = opts.env,
    argv = opts.argv,
  }
  if not opts.argv then
    args.command = command
  end
  vim.b[buf].ktl_pending = true
  M.exec('ktl.run', args, function(err, result)
    if err then
      pcall(vim.api.nvim_chan_send, chan, '[ktl] ' .. (err.message or 'ktl.run failed') .. '\r\n')
      notify('ktl: ' .. (err.message or 'ktl.run failed'), vim.log.levels.ERROR)
      return
    end
    local term = terminal.bind(result.sessionId, buf, chan, result.state, nil)
    term.cols, term.rows = cols, rows
    if terminal.FINAL[result.state] then
      terminal.on_state(result)
    end
  end)
  return buf
end

--- Shows a session (live if it is still running) in a new terminal buffer.
function M.open_session(session)
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

local function format_session(s)
  local exit = (s.exitCode ~= nil and s.exitCode ~= vim.NIL) and (' exit ' .. s.exitCode) or ''
  return string.format('%s  %-11s%s  %s  %s', s.sessionId:sub(1, 8), s.state, exit, s.title or '', s.createdAt or '')
end

--- Picks a session (vim.ui.select over ktl.sessions.list); on_choice(session).
function M.pick_session(opts, on_choice)
  M.exec('ktl.sessions.list', opts or {}, function(err, result)
    if err then
      notify('ktl: ' .. (err.message or 'ktl.sessions.list failed'), vim.log.levels.ERROR)
      return
    end
    local sessions = result.sessions or {}
    if #sessions == 0 then
      notify('ktl: no sessions')
      return
    end
    vim.schedule(function()
      vim.ui.select(sessions, { prompt = 'ktl sessions', format_item = format_session }, function(choice)
        if choice then
          on_choice(choice)
        end
      end)
    end)
  end)
end

function M.sessions()
  M.pick_session({}, M.open_session)
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

function M.logs(target)
  local function go(t)
    if not t or t == '' then
      return
    end
    local args = { detach = true }
    if t:find('/') then
      args.workload = t
    elseif t:find('=') then
      args.selector = t
    else
      args.pod = t
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
  if target and target ~= '' then
    go(target)
  else
    vim.ui.input({ prompt = 'ktl logs (pod, kind/name or selector): ' }, go)
  end
end

function M.replay()
  M.pick_session({}, function(s)
    exec_if_supported('ktl.session.replay', { sessionId = s.sessionId }, function(err, result)
      if err then
        notify('ktl: replay: ' .. (err.message or ''), vim.log.levels.ERROR)
      elseif result and result.url then
        vim.schedule(function()
          compat.open_url(result.url)
        end)
      end
    end)
  end)
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

--- For the statusline: the latest progress message, or ''.
function M.statusline()
  return M.progress_message or ''
end

--- CodeLens commands run through the plugin (client-side), so a lens gets the same handling
--- as the user command: a live terminal for sessions, a plain note when the server lacks it.
local LENS_COMMANDS = { 'ktl.apply', 'ktl.diff', 'ktl.delete', 'ktl.verify', 'ktl.logs', 'ktl.plan.run' }
M.last_lens_command = nil

local function register_lens_commands()
  for _, name in ipairs(LENS_COMMANDS) do
    vim.lsp.commands[name] = function(command)
      M.last_lens_command = command.command
      local args = (command.arguments or {})[1] or {}
      local callback = show_result(name)
      if name == 'ktl.logs' or name == 'ktl.plan.run' then
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
  end, { nargs = '?', desc = 'ktl: follow logs' })
  cmd('KtlReplay', function()
    M.replay()
  end, { desc = 'ktl: open a session replay in the browser' })
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
