-- What the statusline shows: the latest progress line, else the active Kubernetes context and
-- namespace and how many sessions run (see :help ktl-statusline).
local client = require('ktl.client')
local config = require('ktl.config')
local k8s = require('ktl.k8s')
local progress = require('ktl.progress')
local terminal = require('ktl.terminal')

local M = {}

M.k8s = {} -- the active context/namespace: {context, namespace, cluster} (ktl.k8s.contexts)
M.running = {} -- sessionId -> true while it runs

function M.redraw()
  vim.schedule(function()
    pcall(vim.cmd, 'redrawstatus!')
  end)
end

--- Tracks running sessions from `ktl/sessionState` and SessionResults.
function M.track(state)
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
    M.redraw()
  end
end

--- How many sessions are running.
function M.running_count()
  local n = 0
  for _ in pairs(M.running) do
    n = n + 1
  end
  return n
end

--- Reloads the running sessions (`ktl.sessions.list`, local ones).
function M.refresh_running(callback)
  client.exec('ktl.sessions.list', { state = 'running', limit = 1000, remote = false }, function(err, result)
    if not err and result then
      M.running = {}
      for _, s in ipairs(result.sessions or {}) do
        M.running[s.sessionId] = true
      end
      M.redraw()
    end
    if callback then
      callback()
    end
  end)
end

--- "⎈ kind-dev/web · 2 running": the active context/namespace and the running sessions.
function M.status()
  return k8s.status_text(M.k8s, M.running_count(), config.options.status_icon)
end

--- The latest progress message, else M.status(), or ''.
function M.statusline()
  return progress.message or M.status()
end

--- M.statusline() as statusline format (for `%{%...%}`): a guarded context in the
--- KtlProtectedContext highlight (default: WarningMsg).
function M.statusline_hl()
  local text = (M.statusline() or ''):gsub('%%', '%%%%')
  if progress.message == nil and M.k8s.protection ~= nil and text ~= '' then
    return '%#KtlProtectedContext#' .. text .. '%*'
  end
  return text
end

vim.api.nvim_set_hl(0, 'KtlProtectedContext', { link = 'WarningMsg', default = true })

return M
