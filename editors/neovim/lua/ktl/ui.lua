-- Messages and choices, as every module shows them.
local M = {}

--- vim.notify, scheduled: server callbacks run where most of the API may not be called.
function M.notify(msg, level)
  vim.schedule(function()
    vim.notify(msg, level or vim.log.levels.INFO)
  end)
end

--- vim.ui.select over `items` shown by their `label`; on_choice(item), nil when dismissed.
function M.select(items, prompt, on_choice)
  vim.ui.select(items, {
    prompt = prompt,
    format_item = function(i)
      return i.label
    end,
  }, on_choice)
end

return M
