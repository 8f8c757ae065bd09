-- Kubernetes helpers without side effects: targets and their command lines, the statusline's
-- context/namespace, picker items and port-forward messages. init.lua wires them to the server.
local M = {}

--- JSON null arrives as vim.NIL.
local function present(v)
  return v ~= nil and v ~= vim.NIL and v ~= ''
end
M.present = present

--- Splits a command line like a shell would (quotes and backslashes; no expansion).
function M.split_args(line)
  local out, cur, has, quote = {}, '', false, nil
  local i, n = 1, #line
  while i <= n do
    local ch = line:sub(i, i)
    if quote then
      if ch == quote then
        quote = nil
      elseif ch == '\\' and quote == '"' and i < n then
        i = i + 1
        cur = cur .. line:sub(i, i)
      else
        cur = cur .. ch
      end
    elseif ch == "'" or ch == '"' then
      quote, has = ch, true
    elseif ch == '\\' and i < n then
      i = i + 1
      cur, has = cur .. line:sub(i, i), true
    elseif ch:match('%s') then
      if has or cur ~= '' then
        table.insert(out, cur)
      end
      cur, has = '', false
    else
      cur = cur .. ch
    end
    i = i + 1
  end
  if has or cur ~= '' then
    table.insert(out, cur)
  end
  return out
end

local POD = { pod = true, po = true, pods = true }
local SERVICE = { service = true, svc = true, services = true }

--- `web-0`, `pod/web-0`, `svc/web`, `deployment/web` (what kubectl accepts).
function M.parse_target(text)
  local s = vim.trim(text or '')
  if s == '' or s:find('%s') then
    return nil
  end
  local kind, name = s:match('^([^/]*)/(.*)$')
  if not kind then
    return { pod = s }
  end
  if kind == '' or name == '' or name:find('/') then
    return nil
  end
  local lower = kind:lower()
  if POD[lower] then
    return { pod = name }
  elseif SERVICE[lower] then
    return { service = name }
  end
  return { workload = s }
end

--- `pod/web-0`, `service/web`, `deployment/web` (the server's label).
function M.target_label(t)
  if present(t.pod) then
    return 'pod/' .. t.pod
  elseif present(t.service) then
    return 'service/' .. t.service
  end
  return present(t.workload) and t.workload or '?'
end

local OPTIONS = {
  ['-n'] = 'namespace',
  ['--namespace'] = 'namespace',
  ['-c'] = 'container',
  ['--container'] = 'container',
  ['--context'] = 'context',
}

--- `[-n NS] [-c CONTAINER] [--context C] TARGET [WORDS...] [-- COMMAND...]`
--- -> {target, namespace, container, context, rest = {...}, command = {...}|nil}, or nil, error.
function M.parse_target_line(line)
  local words = type(line) == 'table' and line or M.split_args(line or '')
  local out = { rest = {} }
  local i = 1
  while i <= #words do
    local w = words[i]
    if w == '--' then
      out.command = { unpack(words, i + 1) }
      if #out.command == 0 then
        out.command = nil
      end
      break
    end
    local flag, value = w:match('^(%-%-[%w-]+)=(.*)$')
    flag = flag or w
    local key = OPTIONS[flag]
    if key then
      if not value then
        i = i + 1
        value = words[i]
      end
      if not value or value == '' then
        return nil, flag .. ' needs a value'
      end
      out[key] = value
    elseif w:sub(1, 1) == '-' and #w > 1 then
      return nil, 'unknown option ' .. w
    elseif not out.target then
      out.target = w
    else
      table.insert(out.rest, w)
    end
    i = i + 1
  end
  return out
end

local function copy_options(from, to)
  for _, k in ipairs({ 'namespace', 'container', 'context' }) do
    if from[k] then
      to[k] = from[k]
    end
  end
  return to
end

--- `ktl.exec` arguments from `deployment/web -n shop -c app -- sh`, or nil, error.
function M.exec_spec(line)
  local p, err = M.parse_target_line(line)
  if not p then
    return nil, err
  end
  if not p.target then
    return nil, 'name a pod or a workload, e.g. deployment/web'
  end
  if #p.rest > 0 then
    return nil, 'unexpected ' .. table.concat(p.rest, ' ') .. ' (put the command after --)'
  end
  local t = M.parse_target(p.target)
  if not t then
    return nil, 'not a target: ' .. p.target
  end
  if t.service then
    return nil, 'exec needs a pod or a workload (deployment/web), not a Service'
  end
  copy_options(p, t)
  t.command = p.command
  return t
end

--- kubectl's port syntax: `8080:80`, `:80`, `80`. -> list, or nil, error.
function M.parse_ports(words)
  local ports = {}
  for _, w in ipairs(words) do
    for p in w:gmatch('[^,%s]+') do
      local loc, remote = p:match('^(%d*):(%d+)$')
      if not remote then
        remote = p:match('^(%d+)$')
      end
      local r = tonumber(remote or '')
      if not r or r < 1 or r > 65535 or (loc and loc ~= '' and tonumber(loc) > 65535) then
        return nil, 'port "' .. p .. '": expected LOCAL:REMOTE, :REMOTE or PORT'
      end
      table.insert(ports, p)
    end
  end
  if #ports == 0 then
    return nil, 'give at least one port, e.g. "8080:80" or ":80"'
  end
  return ports
end

--- `ktl.portForward` arguments from `svc/web 8080:80 :443 -n shop`, or nil, error.
function M.port_forward_spec(line)
  local p, err = M.parse_target_line(line)
  if not p then
    return nil, err
  end
  if not p.target then
    return nil, 'name a pod, a Service (svc/web) or a workload (deployment/web), then ports'
  end
  local t = M.parse_target(p.target)
  if not t then
    return nil, 'not a target: ' .. p.target
  end
  local ports, perr = M.parse_ports(p.rest)
  if not ports then
    return nil, perr
  end
  t.ports = ports
  t.namespace, t.context = p.namespace, p.context
  return t
end

--- The statusline's Kubernetes part from `ktl.k8s.contexts`: {context, cluster, namespace}
--- (the picked namespace, else the context's, else "default"), or {error} / {}.
function M.status_of(answer)
  if type(answer) ~= 'table' or not present(answer.current) then
    return (type(answer) == 'table' and present(answer.error)) and { error = answer.error } or {}
  end
  local info
  for _, c in ipairs(answer.contexts or {}) do
    if c.name == answer.current then
      info = c
    end
  end
  local ns = present(answer.namespace) and answer.namespace or (info and present(info.namespace) and info.namespace) or 'default'
  return {
    context = answer.current,
    cluster = info and present(info.cluster) and info.cluster or nil,
    namespace = ns,
    -- 'protected' (changes ask first) or 'read-only' (refused), from the server's settings
    protection = info and present(info.protection) and info.protection or nil,
  }
end

--- "⎈ kind-dev/web · 2 running", "⎈ kind-dev/web", "ktl: 2 running" or ''.
function M.status_text(k8s, running, icon)
  local parts = {}
  if k8s and present(k8s.context) then
    local mark = k8s.protection == 'protected' and ' (protected)' or k8s.protection == 'read-only' and ' (read-only)' or ''
    table.insert(parts, (icon or '⎈ ') .. k8s.context .. '/' .. (k8s.namespace or 'default') .. mark)
  end
  if running and running > 0 then
    table.insert(parts, (#parts == 0 and 'ktl: ' or '') .. running .. ' running')
  end
  return table.concat(parts, ' · ')
end

--- `ktl.k8s.use`'s answer as the pick to remember ({} fields absent when reset), or nil.
function M.selection_of(r)
  if type(r) ~= 'table' then
    return nil
  end
  local sel = {}
  if present(r.context) then
    sel.context = r.context
  end
  if present(r.namespace) then
    sel.namespace = r.namespace
  end
  return next(sel) and sel or nil
end

--- vim.ui.select items for the context picker: {context, label}; the active one marked.
function M.context_items(answer, selection)
  local items = {}
  for _, c in ipairs(answer.contexts or {}) do
    local extra = {}
    if present(c.cluster) then
      table.insert(extra, 'cluster ' .. c.cluster)
    end
    if present(c.namespace) then
      table.insert(extra, 'namespace ' .. c.namespace)
    end
    table.insert(items, {
      context = c.name,
      label = (c.name == answer.current and '* ' or '  ') .. c.name .. (#extra > 0 and ('  (' .. table.concat(extra, ', ') .. ')') or ''),
    })
  end
  if selection and selection.context then
    table.insert(items, { context = '', label = "  the kubeconfig's current-context (forget the pick)" })
  end
  return items
end

--- vim.ui.select items for the namespace picker: {namespace, label}; `namespace == nil` is
--- "Other…" (ask), '' goes back to the context's namespace.
function M.namespace_items(answer)
  local status = M.status_of(answer)
  local context_ns
  for _, c in ipairs(answer.contexts or {}) do
    if c.name == answer.current and present(c.namespace) then
      context_ns = c.namespace
    end
  end
  local names, seen = {}, {}
  local function add(n)
    if present(n) and not seen[n] then
      seen[n] = true
      table.insert(names, n)
    end
  end
  add(status.namespace)
  for _, n in ipairs(type(answer.namespaces) == 'table' and answer.namespaces or {}) do
    add(n)
  end
  add(context_ns)
  for _, c in ipairs(answer.contexts or {}) do
    add(c.namespace)
  end
  add('default')
  local items = {}
  for _, n in ipairs(names) do
    table.insert(items, { namespace = n, label = (n == status.namespace and '* ' or '  ') .. n })
  end
  table.insert(items, { label = '  other namespace…' })
  if present(answer.namespace) then
    table.insert(items, { namespace = '', label = "  the context's namespace (" .. (context_ns or 'default') .. ')' })
  end
  return items
end

-- What the cluster runs (`ktl.k8s.list`): the pickers of :KtlExec, :KtlLogs, :KtlPortForward.

--- The `kinds` each picker asks `ktl.k8s.list` for (plural resource names).
M.LIST_KINDS = {
  exec = { 'pods', 'deployments', 'statefulsets', 'daemonsets', 'jobs' },
  logs = { 'pods', 'deployments', 'statefulsets', 'daemonsets', 'jobs' },
  port_forward = { 'pods', 'deployments', 'statefulsets', 'daemonsets', 'services' },
}

local WORKLOADS = { Pod = true, Deployment = true, StatefulSet = true, DaemonSet = true, ReplicaSet = true, Job = true }
local FITS = {
  exec = WORKLOADS,
  logs = WORKLOADS,
  port_forward = { Pod = true, Deployment = true, StatefulSet = true, DaemonSet = true, ReplicaSet = true, Service = true },
}
M.WHAT = { exec = 'pods or workloads', logs = 'pods or workloads', port_forward = 'pods, workloads or Services' }

local function list(v)
  return type(v) == 'table' and v or {}
end

--- "pod/web-1   Running, ready   containers app   ports 80".
function M.item_label(item)
  local parts = { item.target or item.name }
  local status = present(item.status) and item.status or nil
  if item.kind == 'Pod' then
    local ready = item.ready == true and 'ready' or (item.ready == false and 'not ready' or nil)
    local s = table.concat(vim.tbl_filter(function(x)
      return x ~= nil
    end, { status, ready }), ', ')
    if s ~= '' then
      table.insert(parts, s)
    end
  elseif item.kind == 'Service' then
    if status then
      table.insert(parts, status)
    end
  elseif status then
    table.insert(parts, status .. ' ready')
  end
  local containers = list(item.containers)
  if #containers > 0 then
    table.insert(parts, (#containers == 1 and 'container ' or 'containers ') .. table.concat(containers, ','))
  end
  local ports = list(item.ports)
  if #ports > 0 then
    local shown = {}
    for _, p in ipairs(ports) do
      table.insert(shown, tostring(p))
    end
    table.insert(parts, (#ports == 1 and 'port ' or 'ports ') .. table.concat(shown, ','))
  end
  return table.concat(parts, '   ')
end

--- vim.ui.select items for a target picker: {item, label} for each listed resource that fits
--- `purpose` ('exec', 'logs', 'port_forward'), then {typed = true, label} ("type a name…").
function M.target_items(answer, purpose)
  local fits = FITS[purpose]
  local items = {}
  for _, item in ipairs(list(type(answer) == 'table' and answer.items or nil)) do
    if type(item) == 'table' and fits[item.kind] and present(item.target) and M.parse_target(item.target) then
      table.insert(items, { item = item, label = M.item_label(item) })
    end
  end
  table.insert(items, { typed = true, label = 'type a name…' })
  return items
end

--- `ktl.exec` / `ktl.logs` / `ktl.portForward` target arguments for a listed item, in its
--- namespace (else the answer's): {pod | workload | service, namespace}.
function M.item_target(item, answer)
  local t = M.parse_target(item and item.target or '')
  if not t then
    return nil
  end
  local ns = present(item.namespace) and item.namespace or (type(answer) == 'table' and present(answer.namespace) and answer.namespace or nil)
  t.namespace = ns
  return t
end

--- vim.ui.select items for the ports to forward: `:PORT` for each of the item's ports, all of
--- them when several, then {label = 'other…'} (no `ports`: ask for LOCAL:REMOTE).
function M.port_items(item)
  local items, all = {}, {}
  for _, p in ipairs(list(item and item.ports)) do
    if type(p) == 'number' and p >= 1 and p <= 65535 then
      local port = ':' .. tostring(math.floor(p))
      table.insert(all, port)
      table.insert(items, { ports = { port }, label = port .. '   (a free local port -> ' .. tostring(math.floor(p)) .. ')' })
    end
  end
  if #all > 1 then
    table.insert(items, { ports = all, label = table.concat(all, ' ') .. '   (all of them)' })
  end
  table.insert(items, { label = 'other…   (LOCAL:REMOTE, e.g. 8080:80)' })
  return items
end

--- The namespaces of a `ktl.k8s.list {kinds = {'namespaces'}}` answer.
function M.namespaces_of(answer)
  local out = {}
  for _, item in ipairs(list(type(answer) == 'table' and answer.items or nil)) do
    if type(item) == 'table' and item.kind == 'Namespace' and present(item.name) then
      table.insert(out, item.name)
    end
  end
  return out
end

--- A port-forward session's forwards (`meta.forwards`: {local, remote, url}).
function M.forwards_of(session)
  local meta = type(session) == 'table' and session.meta or nil
  local list = type(meta) == 'table' and meta.forwards or nil
  local out = {}
  for _, f in ipairs(type(list) == 'table' and list or {}) do
    if type(f) == 'table' and present(f.url) then
      table.insert(out, f)
    end
  end
  return out
end

--- "forwarding http://127.0.0.1:8080 -> service/web:80, ..."
function M.forward_message(forwards, label)
  local parts = {}
  for _, f in ipairs(forwards) do
    table.insert(parts, f.url .. ' -> ' .. label .. ':' .. tostring(f.remote))
  end
  return 'forwarding ' .. table.concat(parts, ', ')
end

return M
