-- What the headless tests (run.lua, host.lua) share: their results, written as
-- {checks: {name: {ok, detail}}, nvim, ...} to $KTL_RESULTS for the caller to read.
local M = {
  results = { checks = {}, nvim = tostring(vim.version().major) .. '.' .. tostring(vim.version().minor) },
}

function M.check(name, ok, detail)
  M.results.checks[name] = { ok = ok and true or false, detail = detail and tostring(detail) or '' }
end

function M.save()
  vim.fn.writefile({ vim.fn.json_encode(M.results) }, os.getenv('KTL_RESULTS'))
end

function M.buf_text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
end

return M
