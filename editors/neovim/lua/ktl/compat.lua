-- Small shims so the plugin runs on Neovim 0.7 (Debian 12) and on current releases.
local M = {}

local function has(feature)
  return vim.fn.has(feature) == 1
end

M.has_011 = has('nvim-0.11')
M.has_010 = has('nvim-0.10')
M.has_08 = has('nvim-0.8')

--- client:request / client.request (0.11 deprecates the dot form).
function M.request(client, method, params, handler, bufnr)
  if M.has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.is_stopped(client)
  if M.has_011 then
    return client:is_stopped()
  end
  return client.is_stopped()
end

--- Starts a client for `config`; attaches it to `bufnr` when given. Returns nil (and says
--- why) when the server cannot be started.
function M.start(config, bufnr)
  local ok, id = pcall(M._start, config, bufnr)
  if not ok or not id then
    vim.notify('ktl: could not start ' .. table.concat(config.cmd, ' ') .. (ok and '' or (': ' .. tostring(id))), vim.log.levels.ERROR)
    return nil
  end
  return id
end

function M._start(config, bufnr)
  if bufnr and vim.lsp.start then -- 0.8+: reuses a client with the same name and root_dir
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  if M.has_011 then
    return vim.lsp.start(config, { attach = false })
  end
  local id = vim.lsp.start_client(config)
  if id and bufnr then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

function M.attach(bufnr, client_id)
  if not vim.lsp.buf_is_attached(bufnr, client_id) then
    vim.lsp.buf_attach_client(bufnr, client_id)
  end
end

--- The directory a buffer's project lives in: the nearest marker upwards, else cwd.
function M.root_dir(bufnr, markers)
  local name = vim.api.nvim_buf_get_name(bufnr or 0)
  local start = name ~= '' and vim.fn.fnamemodify(name, ':p:h') or vim.fn.getcwd()
  for _, marker in ipairs(markers) do
    local dir = vim.fn.finddir(marker, start .. ';')
    if dir ~= '' then
      return vim.fn.fnamemodify(dir, ':p:h:h')
    end
    local file = vim.fn.findfile(marker, start .. ';')
    if file ~= '' then
      return vim.fn.fnamemodify(file, ':p:h')
    end
  end
  return vim.fn.getcwd()
end

function M.open_url(url)
  if vim.ui.open then -- 0.10+
    return vim.ui.open(url)
  end
  local opener = vim.fn.has('mac') == 1 and 'open' or 'xdg-open'
  if vim.fn.executable(opener) == 1 then
    vim.fn.jobstart({ opener, url }, { detach = true })
  else
    vim.notify('ktl: open ' .. url, vim.log.levels.INFO)
  end
end

return M
