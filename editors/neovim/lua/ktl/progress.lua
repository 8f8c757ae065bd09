-- `$/progress` from the server: vim.notify at the begin and the end, and for reports at most
-- every progress_interval_ms per token; the latest line is kept for the statusline.
local config = require('ktl.config')
local notify = require('ktl.ui').notify

local M = {}

M.message = nil -- the latest progress line
local tokens = {}

--- A `$/progress` handler that calls `default` (Neovim's own) first.
function M.handler(default)
  return function(err, result, ctx, cfg)
    if default then
      pcall(default, err, result, ctx, cfg)
    end
    if not config.options.progress or not result or type(result.value) ~= 'table' then
      return
    end
    local value, token = result.value, tostring(result.token)
    local now = vim.loop.now()
    local st = tokens[token] or { title = value.title or 'ktl', last = 0 }
    tokens[token] = st
    if value.kind == 'begin' then
      st.title = value.title or st.title
      M.message = st.title
      notify(st.title)
      st.last = now
    elseif value.kind == 'report' then
      M.message = st.title .. ': ' .. (value.message or '')
      -- Neovim 0.7 keeps only the latest $/progress per token anyway; we notify sparingly.
      if now - st.last >= config.options.progress_interval_ms then
        st.last = now
        notify(M.message)
      end
    elseif value.kind == 'end' then
      tokens[token] = nil
      M.message = nil
      notify(st.title .. ': ' .. (value.message or 'done'))
    end
  end
end

return M
