-- The plugin's options (require('ktl').config, see :help ktl-setup).
local M = {}

M.options = {
  cmd = nil, -- default: { 'ktl-lsp' } (+ '--store', store)
  store = nil, -- session store path (ktl-lsp --store)
  filetypes = { 'yaml', 'json', 'helm' }, -- 'helm': Helm templates (vim-helm and the like)
  root_markers = { '.git', '.ktl.yaml', 'stack.yaml' },
  autostart = true,
  progress = true, -- vim.notify progress, at most one report per token every progress_interval_ms
  progress_interval_ms = 2000,
  codelens = true, -- refresh CodeLens on BufEnter/InsertLeave when the server offers it
  split = 'botright split',
  init_options = {},
  open_url = nil, -- function(url): how :KtlReplay opens a link (default: vim.ui.open, xdg-open/open, or print)
  sessions_limit = 200, -- how many sessions :KtlSessions lists
  status_icon = '⎈ ', -- before the context in status() / statusline()
  reopen_sessions = true, -- sessions.persist: reopen the buffers of sessions that outlived Neovim (false: a note, :KtlReattach)
}

--- Merges `opts` (setup's) over the options in use.
function M.set(opts)
  M.options = vim.tbl_deep_extend('force', M.options, opts or {})
end

return M
