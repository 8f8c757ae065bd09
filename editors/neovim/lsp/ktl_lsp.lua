-- Neovim 0.11+: the `ktl_lsp` configuration for vim.lsp.config / vim.lsp.enable (see :help ktl-lsp-enable):
--
--   require('ktl').setup({ autostart = false }) -- options, commands; vim.lsp.enable starts the client
--   vim.lsp.enable('ktl_lsp')
--
-- It is the plugin's own client configuration (the ktl/sessionData and ktl/sessionState handlers,
-- progress, CodeLens refresh), so :KtlRun and the rest use this client. Neovim 0.7-0.10: use
-- require('ktl').setup() alone, or require('ktl').lspconfig() with nvim-lspconfig.
local config = require('ktl.config')
local cfg = require('ktl.client').lsp_config()

return {
  cmd = cfg.cmd,
  filetypes = config.options.filetypes,
  root_markers = config.options.root_markers,
  init_options = cfg.init_options,
  handlers = cfg.handlers,
  on_init = cfg.on_init,
  on_exit = cfg.on_exit,
  on_attach = cfg.on_attach,
}
