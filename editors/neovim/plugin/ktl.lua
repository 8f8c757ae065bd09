-- ktl-lsp client. Nothing starts until require('ktl').setup{...} (see :help ktl).
if vim.g.loaded_ktl then
  return
end
vim.g.loaded_ktl = true
