-- The :Ktl* user commands.
local cluster = require('ktl.cluster')
local compare = require('ktl.compare')
local contexts = require('ktl.contexts')
local forwards = require('ktl.forwards')
local manifest = require('ktl.manifest')
local plans = require('ktl.plans')
local sessions = require('ktl.sessions')
local targets = require('ktl.targets')

local M = {}

--- Defines the :Ktl* commands.
function M.create()
  local cmd = vim.api.nvim_create_user_command
  cmd('KtlRun', function(a)
    sessions.run(a.args)
  end, { nargs = '+', complete = 'shellcmd', desc = 'ktl: run a command as a session' })
  cmd('KtlSessions', function()
    plans.browse()
  end, { desc = 'ktl: pick a session and show it' })
  cmd('KtlCancel', function()
    sessions.cancel()
  end, { desc = 'ktl: cancel the session in this buffer' })
  cmd('KtlApply', function()
    manifest.apply()
  end, { desc = 'ktl: apply this manifest' })
  cmd('KtlDiff', function()
    manifest.diff()
  end, { desc = 'ktl: diff this manifest against the cluster' })
  cmd('KtlLogs', function(a)
    targets.logs(a.args)
  end, { nargs = '*', desc = 'ktl: follow logs (no target: pick one)' })
  cmd('KtlReplay', function(a)
    sessions.replay(a.args)
  end, { nargs = '?', desc = 'ktl: open a session replay in the browser' })
  cmd('KtlExport', function(a)
    sessions.export(a.fargs[1], a.fargs[2])
  end, {
    nargs = '+',
    complete = function(lead, line)
      if #vim.split(line, '%s+') <= 2 then
        return vim.tbl_filter(function(f)
          return f:sub(1, #lead) == lead
        end, sessions.EXPORT_FORMATS)
      end
      return vim.fn.getcompletion(lead, 'file')
    end,
    desc = 'ktl: export a session (asciicast, html, ndjson)',
  })
  cmd('KtlPin', function(a)
    sessions.pin(not a.bang, a.args)
  end, { nargs = '?', bang = true, desc = 'ktl: pin a session (! unpins)' })
  cmd('KtlCompare', function(a)
    compare.compare(a.fargs[1], a.fargs[2])
  end, { nargs = '*', desc = 'ktl: compare two sessions' })
  cmd('KtlPlan', function(a)
    plans.plan(a.args)
  end, { nargs = '?', complete = 'file', desc = 'ktl: run a plan or stack.yaml' })
  cmd('KtlContext', function(a)
    contexts.pick_context(a.args)
  end, { nargs = '?', complete = contexts.complete, desc = 'ktl: switch the Kubernetes context' })
  cmd('KtlNamespace', function(a)
    contexts.pick_namespace(a.args ~= '' and a.args or (a.bang and '' or nil))
  end, { nargs = '?', bang = true, desc = "ktl: switch the namespace (! back to the context's)" })
  cmd('KtlExec', function(a)
    targets.exec_command(a.args)
  end, { nargs = '*', desc = 'ktl: a shell in a pod or workload (no target: pick one)' })
  cmd('KtlPortForward', function(a)
    forwards.port_forward_command(a.args)
  end, { nargs = '*', desc = 'ktl: forward local ports to a pod, Service or workload (no target: pick one)' })
  cmd('KtlCluster', function(a)
    cluster.open(a.args ~= '' and a.args or nil)
  end, { nargs = '?', complete = contexts.complete, desc = 'ktl: the cluster explorer (<CR> expands; l x f d e D)' })
  cmd('KtlForwards', function()
    forwards.forwards()
  end, { desc = 'ktl: open or stop a running port-forward' })
end

return M
