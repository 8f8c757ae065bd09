-- Plans and ktl stacks (:KtlPlan, `ktl.plan.run`): the summary buffer of a plan session, a
-- line per node, live while the plan runs.
local client = require('ktl.client')
local config = require('ktl.config')
local manifest = require('ktl.manifest')
local notify = require('ktl.ui').notify
local sessions = require('ktl.sessions')
local terminal = require('ktl.terminal')

local M = {}
local present = sessions.present

-- Plan summary buffers: plan session id -> buffer; buffer -> {line -> node session id}.
M.bufs = {}
M.node_sessions = {}

local NODE_MARK = { done = '✓', failed = '✗', error = '✗', cancelled = '⊘', skipped = '-', running = '…', pending = ' ' }

--- The lines of a plan summary from the plan session and its node sessions.
function M.plan_lines(plan, children)
  local record = type(plan.meta) == 'table' and type(plan.meta.plan) == 'table' and plan.meta.plan or {}
  local exit = present(plan.exitCode) and (' (exit ' .. tostring(plan.exitCode) .. ')') or ''
  local err = present(plan.error) and plan.error ~= '' and (': ' .. plan.error) or ''
  local lines = {
    (plan.title or 'plan') .. '  ' .. plan.state .. exit .. err,
    'session ' .. plan.sessionId .. '   <CR> on a node: its terminal   r: refresh   :KtlReplay',
    '',
  }
  local by_node = {}
  for _, c in ipairs(children or {}) do
    local node = type(c.meta) == 'table' and present(c.meta.node) and tostring(c.meta.node) or nil
    if node then
      by_node[node] = c -- the newest attempt wins (children come oldest first)
    end
  end
  local rows, seen = {}, {}
  for _, n in ipairs(record.nodes or {}) do
    if type(n) == 'table' and present(n.id) then
      table.insert(rows, n)
      seen[tostring(n.id)] = true
    end
  end
  for node, c in pairs(by_node) do
    if not seen[node] then
      table.insert(rows, { id = node, state = c.state, sessionId = c.sessionId, exitCode = c.exitCode })
    end
  end
  local node_sessions = {}
  for _, n in ipairs(rows) do
    local id = tostring(n.id)
    local child = by_node[id]
    local state = present(n.state) and n.state or (child and child.state) or 'pending'
    if child and child.state == 'running' then
      state = 'running'
    end
    local sid = present(n.sessionId) and n.sessionId or (child and child.sessionId) or nil
    local code = present(n.exitCode) and n.exitCode or (child and present(child.exitCode) and child.exitCode) or nil
    local line = string.format(
      '  %s %-20s %-10s%s%s%s',
      NODE_MARK[state] or '?',
      id,
      state,
      code and ('exit ' .. tostring(code) .. '  ') or '',
      sid and sid:sub(1, 8) or '',
      present(n.reason) and ('  ' .. n.reason) or ''
    )
    table.insert(lines, line)
    node_sessions[#lines] = sid
  end
  return lines, node_sessions
end

--- Redraws a plan's summary buffer from ktl.session.get + ktl.sessions.list {parentId}.
function M.refresh_plan(plan_id, callback)
  client.exec('ktl.session.get', { sessionId = plan_id }, function(err, plan)
    if err then
      return
    end
    client.exec('ktl.sessions.list', { parentId = plan_id, limit = 1000, remote = false }, function(err2, res)
      local children = (not err2 and res and res.sessions) or {}
      table.sort(children, function(x, y)
        return (x.createdAt or '') < (y.createdAt or '')
      end)
      vim.schedule(function()
        local buf = M.bufs[plan_id]
        if buf and vim.api.nvim_buf_is_valid(buf) then
          local lines, node_sessions = M.plan_lines(plan, children)
          vim.bo[buf].modifiable = true
          vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
          vim.bo[buf].modifiable = false
          vim.b[buf].ktl_plan_state = plan.state
          M.node_sessions[buf] = node_sessions
        end
        if callback then
          callback(plan, children)
        end
      end)
    end)
  end)
end

--- Shows a plan session's summary buffer (a line per node, live while the plan runs).
function M.plan_summary(plan_id)
  local buf = M.bufs[plan_id]
  if buf and vim.api.nvim_buf_is_valid(buf) then
    vim.cmd(config.options.split)
    vim.api.nvim_win_set_buf(0, buf)
  else
    buf = sessions.scratch('ktl://plan/' .. plan_id:sub(1, 8), { 'ktl: loading plan ' .. plan_id }, 'ktlplan')
    M.bufs[plan_id] = buf
    vim.b[buf].ktl_plan_session = plan_id
    local function open_node()
      local sid = (M.node_sessions[buf] or {})[vim.api.nvim_win_get_cursor(0)[1]]
      if sid and sid ~= vim.NIL then
        sessions.with_session(sid, function(s)
          vim.schedule(function()
            sessions.open_session(s)
          end)
        end)
      end
    end
    vim.api.nvim_buf_set_keymap(buf, 'n', '<CR>', '', { noremap = true, callback = open_node, desc = 'ktl: open the node session' })
    vim.api.nvim_buf_set_keymap(buf, 'n', 'r', '', {
      noremap = true,
      callback = function()
        M.refresh_plan(plan_id)
      end,
      desc = 'ktl: refresh',
    })
    vim.api.nvim_create_autocmd('BufWipeout', {
      buffer = buf,
      once = true,
      callback = function()
        M.bufs[plan_id] = nil
        M.node_sessions[buf] = nil
      end,
    })
  end
  M.refresh_plan(plan_id)
  return buf
end

-- While a summary is open, every session state change (nodes start and end) redraws it,
-- at most every 200 ms.
local plan_refresh_pending = false
function M.on_session_state()
  if plan_refresh_pending or next(M.bufs) == nil then
    return
  end
  plan_refresh_pending = true
  vim.defer_fn(function()
    plan_refresh_pending = false
    for plan_id, buf in pairs(M.bufs) do
      if vim.api.nvim_buf_is_valid(buf) and not terminal.FINAL[vim.b[buf].ktl_plan_state or ''] then
        M.refresh_plan(plan_id)
      end
    end
  end, 200)
end

--- :KtlSessions: picks a session; a plan opens its summary, any other its terminal.
function M.browse()
  sessions.pick_session({}, function(s)
    if s.kind == 'plan' then
      M.plan_summary(s.sessionId)
    else
      sessions.open_session(s)
    end
  end)
end

--- Runs a plan or ktl stack.yaml (`ktl.plan.run`, detached) and opens its summary buffer.
--- file: default the current buffer's. opts: extra ktl.plan.run arguments (nodes, dryRun, ...).
function M.plan(file, opts)
  local uri
  if file and file ~= '' then
    uri = vim.uri_from_fname(vim.fn.fnamemodify(vim.fn.expand(file), ':p'))
  else
    uri = manifest.buffer_uri()
  end
  local args = vim.tbl_extend('force', { uri = uri }, opts or {}, { detach = true })
  client.exec_if_supported('ktl.plan.run', args, function(err, result)
    if err then
      notify('ktl: plan: ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    vim.schedule(function()
      M.plan_summary(result.sessionId)
    end)
  end)
end

return M
