-- What runs in the cluster, picked (`ktl.k8s.list`) or typed: :KtlExec terminals and :KtlLogs.
local client = require('ktl.client')
local k8s = require('ktl.k8s')
local sessions = require('ktl.sessions')
local ui = require('ktl.ui')
local notify = ui.notify

local M = {}

local PICK_TITLES = { exec = 'exec into', logs = 'logs of', port_forward = 'port-forward to' }

--- Picks what `purpose` ('exec', 'logs', 'port_forward') acts on from `ktl.k8s.list` with
--- vim.ui.select. {opts}: `namespace`, `context` (default: the workspace's). Calls
--- on_choice({item, answer}), or on_choice({typed = true, why}) when the user chose "type a
--- name…" or there is nothing to pick from (`why`: no cluster, RBAC, nothing running; also
--- when the server lacks ktl.k8s.list). Nothing when the pick is dismissed.
function M.pick_target(purpose, opts, on_choice)
  opts = opts or {}
  client.when_ready(function()
    if not client.supported('ktl.k8s.list') then
      return on_choice({ typed = true })
    end
    local args = { kinds = k8s.LIST_KINDS[purpose] }
    for _, key in ipairs({ 'namespace', 'context' }) do
      if k8s.present(opts[key]) then
        args[key] = opts[key]
      end
    end
    client.exec('ktl.k8s.list', args, function(err, answer)
      vim.schedule(function()
        if err or type(answer) ~= 'table' then
          return on_choice({ typed = true, why = 'could not list the cluster: ' .. tostring(err and err.message or 'no answer') })
        end
        local items = k8s.target_items(answer, purpose)
        if #items <= 1 then
          return on_choice({ typed = true, why = 'no ' .. k8s.WHAT[purpose] .. ' in namespace ' .. tostring(answer.namespace) })
        end
        local prompt = string.format('ktl %s (context %s, namespace %s)', PICK_TITLES[purpose], tostring(answer.context), tostring(answer.namespace))
        ui.select(items, prompt, function(choice)
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

--- A command's line parsed (k8s.parse_target_line), or nil when it is not one (said as
--- `ktl WHAT: why`).
function M.parse_line(what, line)
  local p, err = k8s.parse_target_line(line or '')
  if not p then
    notify('ktl ' .. what .. ': ' .. err, vim.log.levels.ERROR)
  end
  return p
end

--- M.pick_target, falling back to an input box with `prompt` when the user asks to type a
--- name or there is nothing to pick (the reason is shown first). on_pick(choice), on_typed(text).
function M.pick_or_type(purpose, opts, prompt, on_typed, on_pick)
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

--- A terminal buffer on a shell (or `spec.command`) in a container: `ktl.exec` with
--- {pod | workload, namespace?, container?, command?, context?}. Returns the buffer.
function M.exec_into(spec)
  if not client.offers('ktl.exec') then
    return nil
  end
  local args = {}
  for _, key in ipairs({ 'pod', 'workload', 'namespace', 'container', 'command', 'context', 'tty', 'title' }) do
    if k8s.present(spec[key]) then
      args[key] = spec[key]
    end
  end
  return sessions.start_terminal('ktl.exec', args, 'exec/' .. k8s.target_label(args):gsub('/', '-'))
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
  local p = M.parse_line('exec', line)
  if not p then
    return
  end
  if p.target then
    return go(line)
  end
  M.pick_or_type('exec', p, 'ktl exec (pod or kind/name [-n ns] [-c container] [-- cmd]): ', go, function(choice)
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

--- Follows logs (`ktl.logs` arguments) in a session terminal.
function M.follow_logs(args)
  args.detach = true
  client.exec_if_supported('ktl.logs', args, function(err, result)
    if err then
      notify('ktl: logs: ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    vim.schedule(function()
      sessions.open_session(result)
    end)
  end)
end

--- :KtlLogs's line: `[TARGET] [-n NS] [-c CONTAINER] [--context C]`; TARGET a pod, `kind/name`
--- or a label selector (`app=web`). Without one, picks from the cluster (|M.pick_target|).
function M.logs(line)
  local p = M.parse_line('logs', line)
  if not p then
    return
  end
  local function start(args)
    for _, key in ipairs({ 'namespace', 'container', 'context' }) do
      if p[key] then
        args[key] = p[key]
      end
    end
    M.follow_logs(args)
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
  M.pick_or_type('logs', p, 'ktl logs (pod, kind/name or selector): ', typed, function(choice)
    local t = k8s.item_target(choice.item, choice.answer)
    if t and not t.service then
      p.namespace = p.namespace or t.namespace
      start(t.pod and { pod = t.pod } or { workload = t.workload })
    end
  end)
end

return M
