-- ktl: Neovim client for ktl-lsp. See :help ktl.
-- This module is the public face (setup() and :help ktl-api). The work is done by modules
-- that require only those on the lines above their own:
--   ui, config, compat, k8s    notes and pickers, options, Neovim 0.7 shims, Kubernetes parsing
--   terminal, progress         session terminal buffers; $/progress notes
--   client                     start/attach, lspconfig, workspace/executeCommand
--   statusline                 running sessions, the status text
--   contexts, sessions, manifest
--                              :KtlContext/:KtlNamespace; session terminals, pickers, cancel,
--                              replay, export, pin; :KtlApply/:KtlDiff
--   compare, plans, targets    :KtlCompare; :KtlPlan, :KtlSessions; :KtlExec, :KtlLogs
--   forwards                   :KtlPortForward, :KtlForwards
--   blocks                     :KtlShell, command block marks, :KtlBlocks, :KtlBlockRerun/Copy
--   reopen                     session buffers that come back after Neovim (sessions.persist)
--   cluster                    :KtlCluster, the explorer's tree from ktl/resources
--   codelens, commands         the lens commands; the :Ktl* user commands
-- Upwards, a lower module is handed functions instead of requiring: client.on_session_state,
-- client.on_ready and client.on_block, terminal.on_shown and on_let_go (set below),
-- terminal.exec (set by client).
local blocks = require('ktl.blocks')
local client = require('ktl.client')
local cluster = require('ktl.cluster')
local codelens = require('ktl.codelens')
local commands = require('ktl.commands')
local compare = require('ktl.compare')
local config = require('ktl.config')
local contexts = require('ktl.contexts')
local forwards = require('ktl.forwards')
local manifest = require('ktl.manifest')
local plans = require('ktl.plans')
local progress = require('ktl.progress')
local reopen = require('ktl.reopen')
local sessions = require('ktl.sessions')
local statusline = require('ktl.statusline')
local targets = require('ktl.targets')
local terminal = require('ktl.terminal')

local M = {}

client.on_session_state = function(state)
  statusline.track(state)
  plans.on_session_state()
end
client.on_ready = function()
  contexts.on_ready()
  reopen.on_ready()
end
terminal.on_shown = reopen.remember
terminal.on_let_go = reopen.forget
client.on_resources = cluster.on_resources
client.on_block = blocks.on_block

M.lsp_config = client.lsp_config
M.start = client.start
M.server_commands = client.server_commands
M.lspconfig = client.lspconfig

M.run = sessions.run
M.open_session = sessions.open_session
M.format_session = sessions.format_session
M.group_sessions = sessions.group_sessions
M.pick_session = sessions.pick_session
M.with_session = sessions.with_session
M.cancel = sessions.cancel
M.open_url = sessions.open_url
M.replay = sessions.replay
M.export = sessions.export
M.pin = sessions.pin
M.reattach = reopen.reattach
M.compare_lines = compare.compare_lines
M.compare = compare.compare

M.cluster = cluster.open
M.cluster_lines = cluster.lines

M.apply = manifest.apply
M.diff = manifest.diff

M.sessions = plans.browse
M.plan_lines = plans.plan_lines
M.refresh_plan = plans.refresh_plan
M.plan_summary = plans.plan_summary
M.plan = plans.plan
M._on_any_state = plans.on_session_state

M._track = statusline.track
M.running_count = statusline.running_count
M.refresh_running = statusline.refresh_running
M.status = statusline.status
M.statusline = statusline.statusline
M.statusline_hl = statusline.statusline_hl

M.refresh_k8s = contexts.refresh
M._on_ready = contexts.on_ready
M.pick_context = contexts.pick_context
M.pick_namespace = contexts.pick_namespace
M.complete_contexts = contexts.complete

M.pick_target = targets.pick_target
M.exec_into = targets.exec_into
M.exec_command = targets.exec_command
M.logs = targets.logs
M.pick_ports = forwards.pick_ports
M.port_forward = forwards.port_forward
M.port_forward_command = forwards.port_forward_command
M.forwards = forwards.forwards
M.shell = blocks.shell
M.blocks = blocks.list
M.block_rerun = blocks.rerun
M.block_copy = blocks.copy
M.format_block = blocks.format_block

-- Fields kept by the module they belong to: require('ktl').<name> reads and sets them there,
-- so `ktl.exec = f` reaches every caller and `ktl.config` is the options in use.
local FIELDS = {
  config = { config, 'options' },
  exec = { client, 'exec' },
  client_id = { client, 'client_id' },
  progress_message = { progress, 'message' },
  k8s = { statusline, 'k8s' },
  running = { statusline, 'running' },
  k8s_selection = { contexts, 'selection' },
  contexts_answer = { contexts, 'answer' },
  last_replay_url = { sessions, 'last_replay_url' },
  EXPORT_FORMATS = { sessions, 'EXPORT_FORMATS' },
  last_compare_buf = { compare, 'last_buf' },
  plan_bufs = { plans, 'bufs' },
  plan_node_sessions = { plans, 'node_sessions' },
  last_forward = { forwards, 'last_forward' },
  last_lens_command = { codelens, 'last_command' },
  last_blocks_list = { blocks, 'last_list' },
}

setmetatable(M, {
  __index = function(_, key)
    local field = FIELDS[key]
    if field then
      return field[1][field[2]]
    end
  end,
  __newindex = function(t, key, value)
    local field = FIELDS[key]
    if field then
      field[1][field[2]] = value
    else
      rawset(t, key, value)
    end
  end,
})

function M.setup(opts)
  config.set(opts)
  commands.create()
  codelens.register()
  local group = vim.api.nvim_create_augroup('ktl', { clear = true })
  if config.options.autostart then
    vim.api.nvim_create_autocmd('FileType', {
      group = group,
      pattern = config.options.filetypes,
      callback = function(a)
        if vim.bo[a.buf].buftype == '' then
          client.start(a.buf)
        end
      end,
    })
  end
  vim.api.nvim_create_autocmd({ 'VimResized', 'BufWinEnter', 'WinEnter' }, {
    group = group,
    callback = function()
      terminal.check_size()
    end,
  })  reopen.on_setup()
end

return M
