-- Port-forwards: :KtlPortForward (`ktl.portForward`, a target picked or typed, then its ports)
-- and :KtlForwards (open or stop a running one).
local client = require('ktl.client')
local config = require('ktl.config')
local k8s = require('ktl.k8s')
local sessions = require('ktl.sessions')
local statusline = require('ktl.statusline')
local targets = require('ktl.targets')
local ui = require('ktl.ui')
local notify = ui.notify

local M = {}

M.last_forward = nil -- the latest port-forward started (its SessionResult)

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
  ui.select(items, 'ktl port-forward ' .. label .. ': ports', function(choice)
    if not choice then
      return
    elseif choice.ports then
      return on_ports(choice.ports)
    end
    local first = items[1].ports[1]:sub(2)
    ask(first .. ':' .. first)
  end)
end

--- Starts a port-forward (`ktl.portForward` {pod | service | workload, namespace?, ports}) and
--- shows its URLs with vim.notify. callback(err, result) optional.
function M.port_forward(spec, callback)
  local label = k8s.target_label(spec)
  client.exec_if_supported('ktl.portForward', spec, function(err, result)
    if callback then
      callback(err, result)
    end
    if err then
      notify('ktl: port-forward ' .. label .. ': ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    statusline.track(result)
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
  local p = targets.parse_line('port-forward', line)
  if not p then
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
  targets.pick_or_type('port_forward', p, 'ktl port-forward (TARGET PORTS... [-n ns]): ', typed, function(choice)
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
  client.exec_if_supported('ktl.sessions.list', { kind = 'port-forward', state = 'running', limit = config.options.sessions_limit, remote = false }, function(err, result)
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
        ui.select(actions, 'ktl: ' .. (s.title or s.sessionId), function(a)
          if not a then
            return
          end
          if a.url then
            sessions.open_url(a.url)
          else
            client.exec('ktl.session.cancel', { sessionId = s.sessionId }, function(e, r)
              if e then
                notify('ktl: stop: ' .. (e.message or ''), vim.log.levels.ERROR)
              else
                statusline.track(r)
                notify('ktl: stopped ' .. (s.title or s.sessionId))
              end
            end)
          end
        end)
      end)
    end)
  end)
end

return M
