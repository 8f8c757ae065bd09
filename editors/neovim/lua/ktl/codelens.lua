-- The CodeLens commands (vim.lsp.commands): run by the plugin, like the user commands.
local client = require('ktl.client')
local forwards = require('ktl.forwards')
local helm = require('ktl.helm')
local manifest = require('ktl.manifest')
local notify = require('ktl.ui').notify
local plans = require('ktl.plans')
local sessions = require('ktl.sessions')
local targets = require('ktl.targets')

local M = {}

-- A lens gets the same handling as the user command: a live terminal for sessions, a plain
-- note when the server lacks the command; a Render lens opens the manifests read-only.
local LENS_COMMANDS = { 'ktl.apply', 'ktl.diff', 'ktl.delete', 'ktl.verify', 'ktl.logs', 'ktl.plan.run', 'ktl.exec', 'ktl.portForward', 'ktl.helm.render' }
M.last_command = nil -- the latest lens command run

--- A callback for `name` started detached: open(result) once the session is there.
local function then_open(name, args, open)
  args.detach = true
  return function(err, result)
    if err then
      notify('ktl: ' .. name .. ': ' .. (err.message or ''), vim.log.levels.ERROR)
    elseif result and result.sessionId then
      vim.schedule(function()
        open(result)
      end)
    end
  end
end

--- Registers the lens commands in vim.lsp.commands.
function M.register()
  for _, name in ipairs(LENS_COMMANDS) do
    vim.lsp.commands[name] = function(command)
      M.last_command = command.command
      local args = (command.arguments or {})[1] or {}
      if name == 'ktl.exec' then
        return targets.exec_into(args) -- a terminal, like :KtlExec
      elseif name == 'ktl.portForward' then
        return forwards.port_forward(args) -- its URLs with vim.notify, like :KtlPortForward
      elseif name == 'ktl.helm.render' then
        return helm.render(args) -- the manifests in a read-only scratch buffer
      end
      local callback = manifest.show_result(name)
      if name == 'ktl.plan.run' then
        callback = then_open(name, args, function(result)
          plans.plan_summary(result.sessionId)
        end)
      elseif name == 'ktl.logs' then
        callback = then_open(name, args, sessions.open_session)
      end
      client.exec_if_supported(name, args, callback)
    end
  end
  -- "ran 2 min ago · open replay" above a file: opened by us (Neovim < 0.10 cannot open a
  -- URL from window/showDocument).
  vim.lsp.commands['ktl.session.openReplay'] = function(command)
    M.last_command = command.command
    local args = (command.arguments or {})[1] or {}
    sessions.replay(args.sessionId)
  end
end

return M
