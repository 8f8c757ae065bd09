-- Helm renders (`ktl.helm.render`, the "Render" lenses): the rendered manifests in a read-only
-- scratch buffer ('buftype' nofile, 'filetype' yaml).
local client = require('ktl.client')
local notify = require('ktl.ui').notify
local sessions = require('ktl.sessions')

local M = {}

M.last_buf = nil -- the latest render's buffer

--- The lines of a render: one YAML stream as `helm template` prints it, the error and a
--- cut-short render as comments first.
function M.rendered_lines(answer)
  local lines = { '# ' .. tostring(answer.chart) .. ' rendered with ' .. tostring(answer.label) }
  local err = answer.error
  if type(err) == 'table' then
    local where = ''
    if type(err.template) == 'string' and type(err.line) == 'number' then
      where = err.template .. ':' .. tostring(err.line + 1) .. ': '
    end
    table.insert(lines, '# error: ' .. where .. tostring(err.message):gsub('\n', ' '))
  end
  if answer.cutShort then
    table.insert(lines, '# the render was cut short: only part of it is shown')
  end
  local names = vim.tbl_keys(answer.manifests or {})
  table.sort(names)
  for _, name in ipairs(names) do
    table.insert(lines, '---')
    table.insert(lines, '# Source: ' .. name)
    local text = answer.manifests[name]:gsub('\n+$', '')
    vim.list_extend(lines, vim.split(text, '\n', { plain = true }))
  end
  return lines
end

--- Opens a render's manifests in a scratch buffer.
function M.show(answer)
  local chart = tostring(answer.chart):gsub('/+$', '')
  local name = 'ktl://render/' .. vim.fn.fnamemodify(chart, ':t') .. ' (' .. tostring(answer.label) .. ')'
  local existing = vim.fn.bufnr(name)
  if existing ~= -1 then
    vim.api.nvim_buf_delete(existing, { force = true }) -- rendered again: the new text
  end
  M.last_buf = sessions.scratch(name, M.rendered_lines(answer), 'yaml')
  return M.last_buf
end

--- Renders the chart of `args.uri` (`ktl.helm.render`) and shows the manifests.
function M.render(args)
  client.exec_if_supported('ktl.helm.render', args, function(err, result)
    if err then
      notify('ktl: render: ' .. (err.message or ''), vim.log.levels.ERROR)
    elseif type(result) == 'table' and result.manifests then
      vim.schedule(function()
        M.show(result)
      end)
    end
  end)
end

return M
