-- The workspace's Kubernetes context and namespace: :KtlContext, :KtlNamespace (ktl.k8s.use),
-- told again to a new server, shown by the statusline.
local client = require('ktl.client')
local k8s = require('ktl.k8s')
local statusline = require('ktl.statusline')
local ui = require('ktl.ui')
local notify = ui.notify

local M = {}

M.selection = nil -- what :KtlContext / :KtlNamespace picked (told again to a new server)
M.answer = nil -- the last ktl.k8s.contexts answer (completion)

--- Reloads the active context/namespace (`ktl.k8s.contexts`) into the statusline's;
--- callback(status).
function M.refresh(callback)
  if not client.supported('ktl.k8s.contexts') then
    statusline.k8s = {}
    if callback then
      callback(statusline.k8s)
    end
    return
  end
  client.exec('ktl.k8s.contexts', {}, function(err, result)
    if err then
      statusline.k8s = { error = err.message }
    else
      M.answer = result
      statusline.k8s = k8s.status_of(result)
    end
    statusline.redraw()
    if callback then
      callback(statusline.k8s)
    end
  end)
end

--- The server is up: tell it the pick again (a new server starts from the kubeconfig's), then
--- load the statusline's context and running sessions.
function M.on_ready()
  local sel = M.selection
  if sel and client.supported('ktl.k8s.use') then
    client.exec('ktl.k8s.use', vim.deepcopy(sel), function(err)
      if err then
        M.selection = nil
        notify('ktl: forgot the Kubernetes pick: ' .. (err.message or ''), vim.log.levels.WARN)
      end
      M.refresh()
    end)
  else
    M.refresh()
  end
  statusline.refresh_running()
end

local function after_use(err, result, callback)
  if err then
    notify('ktl: ' .. (err.message or 'ktl.k8s.use failed'), vim.log.levels.ERROR)
    return
  end
  M.selection = k8s.selection_of(result)
  M.refresh(function(status)
    notify('ktl: context ' .. tostring(status.context) .. ', namespace ' .. tostring(status.namespace))
    if callback then
      callback(status)
    end
  end)
end

--- Switches this workspace's context (`ktl.k8s.use`): `name`, else picked with vim.ui.select.
--- Another context starts from its own namespace. callback(status) optional.
function M.pick_context(name, callback)
  client.exec_if_supported('ktl.k8s.contexts', {}, function(err, answer)
    if err then
      notify('ktl: ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    M.answer = answer
    local function use(ctx)
      local args = { context = ctx, namespace = '' }
      if ctx ~= '' and ctx == answer.current then
        args = { context = ctx } -- the active one again: keep the namespace
      end
      client.exec('ktl.k8s.use', args, function(e, r)
        after_use(e, r, callback)
      end)
    end
    if name and name ~= '' then
      return use(name)
    end
    local items = k8s.context_items(answer, M.selection)
    if #items == 0 then
      notify('ktl: no Kubernetes contexts' .. (k8s.present(answer.error) and (': ' .. answer.error) or ' in the kubeconfig'), vim.log.levels.ERROR)
      return
    end
    vim.schedule(function()
      local active = tostring(k8s.present(answer.current) and answer.current or 'none')
      ui.select(items, 'ktl: Kubernetes context (active: ' .. active .. ')', function(choice)
        if choice then
          use(choice.context)
        end
      end)
    end)
  end)
end

--- Switches this workspace's namespace (`ktl.k8s.use`): `ns` ('' = the context's), else picked
--- (known namespaces, "other namespace…" asks). callback(status) optional.
function M.pick_namespace(ns, callback)
  local function use(n)
    client.exec_if_supported('ktl.k8s.use', { namespace = n }, function(e, r)
      after_use(e, r, callback)
    end)
  end
  if ns then
    return use(ns)
  end
  client.exec_if_supported('ktl.k8s.contexts', {}, function(err, answer)
    if err then
      notify('ktl: ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    if not k8s.present(answer.current) then
      notify('ktl: no Kubernetes context' .. (k8s.present(answer.error) and (': ' .. answer.error) or ''), vim.log.levels.ERROR)
      return
    end
    M.answer = answer
    local function show(listed)
      local names = vim.list_extend(vim.deepcopy(type(answer.namespaces) == 'table' and answer.namespaces or {}), listed)
      local items = k8s.namespace_items(vim.tbl_extend('force', answer, { namespaces = names }))
      ui.select(items, 'ktl: namespace (context ' .. answer.current .. ')', function(choice)
        if not choice then
          return
        end
        if choice.namespace then
          return use(choice.namespace)
        end
        vim.ui.input({ prompt = 'ktl: namespace: ' }, function(text)
          text = text and vim.trim(text) or ''
          if text ~= '' then
            use(text)
          end
        end)
      end)
    end
    if not client.supported('ktl.k8s.list') then
      return vim.schedule(function()
        show({})
      end)
    end
    -- the cluster's namespaces, when it can be listed (else the known ones)
    client.exec('ktl.k8s.list', { kinds = { 'namespaces' } }, function(lerr, listed)
      vim.schedule(function()
        show(lerr and {} or k8s.namespaces_of(listed))
      end)
    end)
  end)
end

--- Completion for :KtlContext (the last ktl.k8s.contexts answer).
function M.complete(lead)
  local out = {}
  for _, c in ipairs((M.answer or {}).contexts or {}) do
    if c.name:sub(1, #lead) == lead then
      table.insert(out, c.name)
    end
  end
  return out
end

return M
