-- :KtlApply / :KtlDiff on the manifest in the current buffer, and how their results are shown.
local client = require('ktl.client')
local config = require('ktl.config')
local notify = require('ktl.ui').notify

local M = {}

--- The current buffer's URI.
function M.buffer_uri()
  return vim.uri_from_bufnr(vim.api.nvim_get_current_buf())
end

--- A callback for `title`'s result: its diff in a scratch buffer, else its state in a note.
function M.show_result(title)
  return function(err, result)
    if err then
      notify('ktl: ' .. title .. ': ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    if result and result.diff and result.diff ~= '' then
      vim.schedule(function()
        vim.cmd(config.options.split)
        local buf = vim.api.nvim_create_buf(false, true)
        vim.api.nvim_win_set_buf(0, buf)
        vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(result.diff, '\n'))
        vim.bo[buf].filetype = 'diff'
      end)
    else
      local state = result and result.state or '?'
      notify('ktl: ' .. title .. ' ' .. state .. ((result and result.exitCode) and (' (exit ' .. tostring(result.exitCode) .. ')') or ''))
    end
  end
end

--- Applies the current buffer's manifest (`ktl.apply`; {opts}: more arguments).
function M.apply(opts)
  client.exec_if_supported('ktl.apply', vim.tbl_extend('force', { uri = M.buffer_uri() }, opts or {}), M.show_result('apply'))
end

--- Diffs the current buffer's manifest against the cluster (`ktl.diff`).
function M.diff(opts)
  client.exec_if_supported('ktl.diff', vim.tbl_extend('force', { uri = M.buffer_uri() }, opts or {}), M.show_result('diff'))
end

return M
