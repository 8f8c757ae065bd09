-- :KtlCluster: the cluster explorer's tree (context > namespace > kind > object > owned
-- objects, containers, Warning events) in a buffer, kept from `ktl/resources` notifications
-- (docs/protocol.md, section 15). <CR> expands or collapses the line's entry; folds follow the
-- levels (foldmethod=indent); the buffer is redrawn per batch with the cursor kept on its entry.
local client = require('ktl.client')
local forwards = require('ktl.forwards')
local notify = require('ktl.ui').notify
local sessions = require('ktl.sessions')
local targets = require('ktl.targets')

local M = {}

--- context -> { watch_id, nodes = { uid -> node }, streams = {} }
M.watched = {}
--- entry ids the user expanded (contexts and namespaces start expanded)
M.expanded = {}
M.buf = nil

local KIND_ORDER = { 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'CronJob', 'Job', 'Pod', 'Service', 'Ingress', 'ConfigMap', 'Secret', 'PersistentVolumeClaim', 'Node' }
local HEALTH = { ok = '✓', pending = '…', warn = '!', error = '✗' }
local CLUSTER_SCOPE = '(cluster)'

--- Applies one `ktl/resources` notification to the model.
function M.apply(p)
  local w = M.watched[p.context]
  if not w or w.watch_id ~= p.watchId or p.event == 'snapshot' then
    w = { watch_id = p.watchId, nodes = {}, streams = {} }
    M.watched[p.context] = w
  end
  for _, list in ipairs({ p.resources or {}, p.added or {}, p.updated or {} }) do
    for _, n in ipairs(list) do
      w.nodes[n.uid] = n
    end
  end
  for _, uid in ipairs(p.deleted or {}) do
    w.nodes[uid] = nil
  end
  if p.streams then
    w.streams = p.streams
  end
end

local function rank(kind)
  for i, k in ipairs(KIND_ORDER) do
    if k == kind then
      return i
    end
  end
  return 99
end

local function sorted_keys(t, less)
  local keys = vim.tbl_keys(t)
  table.sort(keys, less)
  return keys
end

local function describe_node(n)
  local bits = {}
  for _, key in ipairs({ 'ready', 'status' }) do
    if type(n[key]) == 'string' and n[key] ~= '' and not vim.tbl_contains(bits, n[key]) then
      table.insert(bits, n[key])
    end
  end
  if type(n.restarts) == 'number' and n.restarts > 0 then
    table.insert(bits, n.restarts .. ' restarts')
  end
  if type(n.endpoints) == 'string' then
    table.insert(bits, 'endpoints ' .. n.endpoints)
  end
  return table.concat(bits, ' · ')
end

--- The lines of the tree: { text, entry = {id, type, context, node?, ...}, level }.
function M.lines(watched, expanded)
  local out = {}
  local function add(level, text, entry)
    entry.level = level
    table.insert(out, { text = string.rep('  ', level) .. text, entry = entry, level = level })
  end
  local function open(id, default)
    local v = expanded[id]
    if v == nil then
      return default
    end
    return v
  end
  for _, context in ipairs(sorted_keys(watched)) do
    local w = watched[context]
    local cid = 'c:' .. context
    local ctx_open = open(cid, true)
    add(0, (ctx_open and '▾ ' or '▸ ') .. context .. '  (context)', { id = cid, type = 'context', context = context })
    if ctx_open then
      local uids = {}
      for uid in pairs(w.nodes) do
        uids[uid] = true
      end
      local by_ns, owned = {}, {}
      for _, n in pairs(w.nodes) do
        if n.owner and uids[n.owner] then
          owned[n.owner] = owned[n.owner] or {}
          table.insert(owned[n.owner], n)
        elseif n.kind == 'Namespace' then
          by_ns[n.name] = by_ns[n.name] or {}
        else
          local ns = n.namespace or CLUSTER_SCOPE
          by_ns[ns] = by_ns[ns] or {}
          table.insert(by_ns[ns], n)
        end
      end
      local refused = {}
      for _, s in ipairs(w.streams or {}) do
        if s.state ~= 'watching' and s.state ~= 'listing' then
          local ns = s.namespace or ''
          refused[ns] = refused[ns] or {}
          table.insert(refused[ns], s)
          if s.namespace then
            by_ns[s.namespace] = by_ns[s.namespace] or {}
          end
        end
      end
      for _, s in ipairs(refused[''] or {}) do
        add(1, '⊘ ' .. s.plural .. ': ' .. s.state .. (s.message and ('  ' .. s.message) or ''), { id = 's:' .. context .. '/' .. s.plural, type = 'stream', context = context })
      end
      local function node_lines(n, level)
        local oid = 'o:' .. context .. '/' .. n.uid
        local kids = owned[n.uid] or {}
        local has = #kids > 0 or #(n.containers or {}) > 0 or #(n.warnings or {}) > 0
        local o = open(oid, false)
        local mark = has and (o and '▾ ' or '▸ ') or '  '
        local desc = describe_node(n)
        add(level, mark .. (HEALTH[n.health] or '·') .. ' ' .. n.name .. (desc ~= '' and ('  ' .. desc) or ''), { id = oid, type = 'object', context = context, node = n })
        if not (has and o) then
          return
        end
        for i, wv in ipairs(n.warnings or {}) do
          local count = (wv.count or 1) > 1 and (' (x' .. wv.count .. ')') or ''
          add(level + 1, '⚠ ' .. tostring(wv.reason) .. count .. '  ' .. tostring(wv.message or ''), { id = oid .. '/w' .. i, type = 'warning', context = context, node = n })
        end
        table.sort(kids, function(a, b)
          return a.kind .. a.name < b.kind .. b.name
        end)
        for _, k in ipairs(kids) do
          node_lines(k, level + 1)
        end
        for _, c in ipairs(n.containers or {}) do
          local state = c.reason or c.state
          local extra = (c.restarts or 0) > 0 and (' · restarts ' .. c.restarts) or ''
          add(level + 1, (c.ready and '✓ ' or '✗ ') .. c.name .. '  ' .. tostring(state) .. extra, { id = oid .. '/c/' .. c.name, type = 'container', context = context, node = n, container = c.name })
        end
      end
      local namespaces = sorted_keys(by_ns, function(a, b)
        if a == CLUSTER_SCOPE or b == CLUSTER_SCOPE then
          return b == CLUSTER_SCOPE and a ~= CLUSTER_SCOPE
        end
        return a < b
      end)
      for _, ns in ipairs(namespaces) do
        local nid = 'n:' .. context .. '/' .. ns
        local ns_open = open(nid, true)
        add(1, (ns_open and '▾ ' or '▸ ') .. ns, { id = nid, type = 'namespace', context = context, namespace = ns })
        if ns_open then
          for _, s in ipairs(refused[ns] or {}) do
            add(2, '⊘ ' .. s.plural .. ': ' .. s.state, { id = 's:' .. context .. '/' .. s.plural .. '/' .. ns, type = 'stream', context = context })
          end
          local kinds = {}
          for _, n in ipairs(by_ns[ns]) do
            kinds[n.kind] = kinds[n.kind] or {}
            table.insert(kinds[n.kind], n)
          end
          for _, kind in ipairs(sorted_keys(kinds, function(a, b)
            return rank(a) < rank(b) or (rank(a) == rank(b) and a < b)
          end)) do
            local kid = 'k:' .. context .. '/' .. ns .. '/' .. kind
            local k_open = open(kid, true)
            add(2, (k_open and '▾ ' or '▸ ') .. kind .. ' (' .. #kinds[kind] .. ')', { id = kid, type = 'kind', context = context })
            if k_open then
              table.sort(kinds[kind], function(a, b)
                return a.name < b.name
              end)
              for _, n in ipairs(kinds[kind]) do
                node_lines(n, 3)
              end
            end
          end
        end
      end
    end
  end
  if #out == 0 then
    table.insert(out, { text = 'ktl: waiting for the cluster…', entry = { id = 'none', type = 'none' }, level = 0 })
  end
  return out
end

local shown = {}

--- Redraws the buffer, keeping the cursor on the entry it was on.
function M.render()
  local buf = M.buf
  if not buf or not vim.api.nvim_buf_is_valid(buf) then
    return
  end
  local win = vim.fn.bufwinid(buf)
  local at_id
  if win ~= -1 then
    local row = vim.api.nvim_win_get_cursor(win)[1]
    at_id = shown[row] and shown[row].id
  end
  local lines = M.lines(M.watched, M.expanded)
  local texts = {}
  shown = {}
  for i, l in ipairs(lines) do
    texts[i] = l.text
    shown[i] = l.entry
  end
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, texts)
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  if win ~= -1 and at_id then
    for i, e in ipairs(shown) do
      if e.id == at_id then
        local col = vim.api.nvim_win_get_cursor(win)[2]
        vim.api.nvim_win_set_cursor(win, { i, col })
        break
      end
    end
  end
end

--- The entry under the cursor of the cluster buffer.
function M.entry()
  local row = vim.api.nvim_win_get_cursor(0)[1]
  return shown[row]
end

--- Called with each `ktl/resources` (client.on_resources).
function M.on_resources(p)
  M.apply(p)
  vim.schedule(M.render)
end

local function target_of(e)
  local n = e.node
  if not n then
    return nil
  end
  local spec = { namespace = n.namespace, context = e.context, container = e.container }
  if n.kind == 'Pod' then
    spec.pod = n.name
  elseif vim.tbl_contains({ 'Deployment', 'StatefulSet', 'DaemonSet', 'Job' }, n.kind) then
    spec.workload = n.kind:lower() .. '/' .. n.name
  elseif n.kind == 'Service' then
    spec.service = n.name
  else
    return nil
  end
  return spec
end

local function object_args(e)
  return { kind = e.node.kind, name = e.node.name, namespace = e.node.namespace, context = e.context }
end

--- What the delete confirmation asks: the object and the context.
function M.delete_prompt(n, context)
  local where = n.namespace and (' in namespace ' .. n.namespace) or ''
  return 'Delete ' .. n.kind .. ' ' .. n.name .. where .. ' from context ' .. context .. '?'
end

M.actions = {}

function M.actions.toggle()
  local e = M.entry()
  if not e or e.type == 'none' then
    return
  end
  local default = e.type == 'context' or e.type == 'namespace' or e.type == 'kind'
  local now = M.expanded[e.id]
  if now == nil then
    now = default
  end
  M.expanded[e.id] = not now
  M.render()
end

function M.actions.logs()
  local e = M.entry()
  local spec = e and target_of(e)
  if not spec or spec.service then
    return
  end
  targets.follow_logs(spec)
end

function M.actions.exec()
  local e = M.entry()
  local spec = e and target_of(e)
  if spec and not spec.service then
    targets.exec_into(spec)
  end
end

function M.actions.forward()
  local e = M.entry()
  local spec = e and target_of(e)
  if not spec then
    return
  end
  vim.ui.input({ prompt = 'ktl port-forward ' .. e.node.name .. ' ports (local:remote or :remote): ' }, function(text)
    if not text or vim.trim(text) == '' then
      return
    end
    spec.ports = vim.split(vim.trim(text), '%s+')
    spec.container = nil
    forwards.port_forward(spec)
  end)
end

function M.actions.describe()
  local e = M.entry()
  if not e or not e.node then
    return
  end
  client.exec_if_supported('ktl.k8s.describe', object_args(e), function(err, result)
    if err then
      return notify('ktl: describe: ' .. (err.message or ''), vim.log.levels.ERROR)
    end
    vim.schedule(function()
      sessions.scratch('ktl://describe/' .. e.node.kind .. '/' .. e.node.name, vim.split(result.text, '\n', { trimempty = true }), 'ktldescribe')
    end)
  end)
end

function M.actions.edit()
  local e = M.entry()
  if not e or not e.node then
    return
  end
  local args = object_args(e)
  if e.node.kind == 'Secret' then
    if vim.fn.confirm('Edit Secret ' .. e.node.name .. ' with its values (context ' .. e.context .. ')?', '&Edit\n&Cancel', 2) ~= 1 then
      return
    end
    args.reveal = true
  end
  client.exec_if_supported('ktl.k8s.edit', args, function(err, result)
    if err then
      return notify('ktl: edit: ' .. (err.message or ''), vim.log.levels.ERROR)
    end
    vim.schedule(function()
      vim.cmd('split ' .. vim.fn.fnameescape(vim.uri_to_fname(result.uri)))
    end)
  end)
end

function M.actions.delete()
  local e = M.entry()
  if not e or not e.node then
    return
  end
  if vim.fn.confirm(M.delete_prompt(e.node, e.context), '&Delete\n&Cancel', 2) ~= 1 then
    return
  end
  local args = object_args(e)
  args.propagation = 'Background'
  client.exec_if_supported('ktl.k8s.delete', args, function(err, result)
    if err or (result and result.state ~= 'done') then
      return notify('ktl: delete ' .. e.node.name .. ': ' .. tostring(err and err.message or result.error), vim.log.levels.ERROR)
    end
    notify('ktl: deleted ' .. e.node.kind .. ' ' .. e.node.name)
  end)
end

--- Starts a watch of `context` (nil: the picked one) unless one runs.
function M.watch(context, callback)
  client.exec_if_supported('ktl.k8s.watch', context and { context = context } or {}, function(err, result)
    if err then
      notify('ktl: watch: ' .. (err.message or ''), vim.log.levels.ERROR)
    elseif result and result.state ~= 'running' then
      notify('ktl: watch: ' .. tostring(result.error or result.state), vim.log.levels.ERROR)
    end
    if callback then
      callback(err, result)
    end
  end)
end

local KEYS = {
  ['<CR>'] = 'toggle',
  l = 'logs',
  x = 'exec',
  f = 'forward',
  d = 'describe',
  e = 'edit',
  D = 'delete',
}

--- :KtlCluster [context]: the tree in a buffer of its own (a watch starts when none runs).
function M.open(context)
  if not (M.buf and vim.api.nvim_buf_is_valid(M.buf)) then
    local buf = vim.api.nvim_create_buf(false, true)
    pcall(vim.api.nvim_buf_set_name, buf, 'ktl://cluster')
    vim.bo[buf].filetype = 'ktlcluster'
    vim.bo[buf].bufhidden = 'hide'
    M.buf = buf
    for key, action in pairs(KEYS) do
      vim.keymap.set('n', key, M.actions[action], { buffer = buf, desc = 'ktl cluster: ' .. action })
    end
    vim.keymap.set('n', 'R', function()
      M.watch(context)
    end, { buffer = buf, desc = 'ktl cluster: watch again' })
  end
  local win = vim.fn.bufwinid(M.buf)
  if win == -1 then
    vim.cmd(require('ktl.config').options.split)
    vim.api.nvim_win_set_buf(0, M.buf)
    win = vim.api.nvim_get_current_win()
  else
    vim.api.nvim_set_current_win(win)
  end
  vim.wo[win].foldmethod = 'indent'
  vim.wo[win].foldlevel = 99
  vim.bo[M.buf].shiftwidth = 2
  vim.wo[win].wrap = false
  M.render()
  local wanted = context
  if not wanted or not M.watched[wanted] then
    if next(M.watched) == nil or context then
      M.watch(context)
    end
  end
end

return M
