-- What the headless tests (run.lua, host.lua, host_kinds.lua) share: their results, written as
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

--- The end of a test script: its error (pcall's) as the check `lua_error`, the results saved,
--- and Neovim quits.
function M.finish(ok, failure)
  if not ok then
    M.check('lua_error', false, failure)
  end
  M.save()
  vim.cmd('qall!')
end

function M.buf_text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
end

--- The answer to a server command, waited for ({} on an error or none in time).
function M.call(command, args)
  local answer
  require('ktl.client').exec(command, args, function(err, r)
    answer = (not err and r) or {}
  end)
  vim.wait(10000, function()
    return answer ~= nil
  end, 20)
  return answer or {}
end

--- The plugin set up with sessions.persist (`reopen` = reopen_sessions), its client started on
--- $KTL_MANIFEST and waited for. Answers require('ktl').
function M.persisting(reopen)
  vim.notify = function() end
  vim.cmd('filetype on')
  local ktl = require('ktl')
  ktl.setup({
    cmd = { os.getenv('KTL_LSP') },
    store = os.getenv('KTL_STORE'),
    init_options = { sessions = { persist = true, hostIdleTimeout = 60 } },
    reopen_sessions = reopen,
  })
  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('KTL_MANIFEST')))
  vim.wait(10000, function()
    return ktl.client_id ~= nil
  end, 20)
  return ktl
end

--- Saves the results so far, then waits for the test to kill Neovim (and its language server).
function M.wait_killed()
  M.save()
  vim.wait(60000, function()
    return false
  end, 100)
end

--- Answers :KtlForwards' two vim.ui.select questions: the session `sid`, then the first action
--- whose label starts with `action_prefix`. Answers a table that gets the labels offered:
--- `sessions` and `actions`.
function M.select_forward(sid, action_prefix)
  local shown = {}
  vim.ui.select = function(list, opts, on_choice)
    local labels = vim.tbl_map(opts.format_item, list)
    if list[1] and list[1].sessionId then
      shown.sessions = labels
      for _, s in ipairs(list) do
        if s.sessionId == sid then
          return on_choice(s)
        end
      end
      return on_choice(nil)
    end
    shown.actions = labels
    for i, label in ipairs(labels) do
      if label:sub(1, #action_prefix) == action_prefix then
        return on_choice(list[i])
      end
    end
    on_choice(nil)
  end
  return shown
end

return M
