-- The ktl-lsp client: its configuration, start and attach, and the commands sent to it.
local compat = require('ktl.compat')
local config = require('ktl.config')
local notify = require('ktl.ui').notify
local progress = require('ktl.progress')
local terminal = require('ktl.terminal')

local M = {}

M.client_id = nil
local ready = {}
local queue = {}

-- What the modules above this one do with the server's news (set by ktl/init.lua):
-- after each `ktl/sessionState` (the terminal has it first), and once a client is up.
M.on_session_state = function(_) end
M.on_ready = function() end
-- each `ktl/resources` batch of the cluster explorer (set by ktl/init.lua)
M.on_resources = function(_) end
M.on_block = function(_) end

--- The running ktl client, or nil.
function M.get()
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

local function codelens_refresh()
  local client = M.get()
  if not client or not config.options.codelens then
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
  local cfg = config.options
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
      M.on_session_state(result)
    end,
    ['$/progress'] = progress.handler(vim.lsp.handlers['$/progress']),
    ['ktl/resources'] = function(_, result)
      M.on_resources(result)
    end,
    ['ktl/block'] = function(_, result)
      M.on_block(result)
    end,
  }
  return {
    name = 'ktl',
    cmd = cmd,
    root_dir = compat.root_dir(bufnr or 0, cfg.root_markers),
    init_options = vim.tbl_extend('force', cfg.init_options or {}, { sessionData = true, resources = true }),
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
      vim.schedule(M.on_ready)
    end,
    on_exit = function(_, _, client_id)
      ready[client_id] = nil
      queue[client_id] = nil
      if M.client_id == client_id then
        M.client_id = nil
      end
    end,
    on_attach = function(_, buf)
      if config.options.codelens then
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
  local client = M.get()
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
--- Callers go through this table (client.exec), so replacing require('ktl').exec reaches them all.
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
  local client = M.get()
  local caps = client and client.server_capabilities or {}
  local provider = caps.executeCommandProvider or {}
  return provider.commands or {}
end

--- Whether the running server advertises `command`.
function M.supported(command)
  for _, c in ipairs(M.server_commands()) do
    if c == command then
      return true
    end
  end
  return false
end

--- Runs fn() once the client is ready (at once when it is; scheduled otherwise).
function M.when_ready(fn)
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

local function lacks(command)
  notify('ktl: this ktl-lsp does not implement ' .. command .. ' yet', vim.log.levels.WARN)
end

--- Like M.exec, but says so plainly when the server does not offer `command` (yet).
function M.exec_if_supported(command, args, callback)
  M.when_ready(function()
    if not M.supported(command) then
      return lacks(command)
    end
    M.exec(command, args, callback)
  end)
end

--- False when the server is up and lacks `command` (says so); true otherwise.
function M.offers(command)
  local id = M.start(nil)
  if id and ready[id] and not M.supported(command) then
    lacks(command)
    return false
  end
  return true
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
    local markers = config.options.root_markers
    configs.ktl_lsp = {
      default_config = {
        cmd = cfg.cmd,
        filetypes = config.options.filetypes,
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

return M
