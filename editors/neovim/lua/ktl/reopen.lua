-- Session buffers that come back after Neovim does (sessions.persist): the sessions shown in
-- terminal buffers are remembered per workspace while they run, in an owner-only file under
-- stdpath('state')/ktl, and when the client starts again each one still running in the session
-- host gets its buffer back (attached, its screen replayed, then live).
local client = require('ktl.client')
local compat = require('ktl.compat')
local config = require('ktl.config')
local notify = require('ktl.ui').notify
local sessions = require('ktl.sessions')
local terminal = require('ktl.terminal')

local M = {}

local uv = vim.uv or vim.loop
local PRIVATE_DIR, PRIVATE_FILE = 448, 384 -- 0700, 0600

--- Whether sessions run in the session host (init_options.sessions.persist).
function M.persisting()
  local s = (config.options.init_options or {}).sessions
  return type(s) == 'table' and s.persist == true
end

--- The workspace: the running client's root, else the one the current buffer is in.
local function workspace()
  local c = client.get()
  local root = c and c.config and c.config.root_dir
  return root or compat.root_dir(0, config.options.root_markers)
end

--- The file remembering `root`'s sessions (one per workspace: two Neovims on two projects
--- never write the same one).
function M.file(root)
  local ok, state = pcall(vim.fn.stdpath, 'state') -- 0.8+
  local dir = (ok and state or vim.fn.stdpath('data')) .. '/ktl'
  return dir .. '/shown-' .. vim.fn.sha256(root or workspace()):sub(1, 16) .. '.json'
end

--- The ids of the sessions remembered for the workspace.
function M.ids(root)
  local f = io.open(M.file(root), 'r')
  if not f then
    return {}
  end
  local text = f:read('*a')
  f:close()
  local ok, data = pcall(vim.fn.json_decode, text)
  return (ok and type(data) == 'table' and type(data.sessions) == 'table') and data.sessions or {}
end

local function write(root, ids)
  local path = M.file(root)
  local dir = vim.fn.fnamemodify(path, ':h')
  vim.fn.mkdir(dir, 'p', PRIVATE_DIR)
  uv.fs_chmod(dir, PRIVATE_DIR)
  local tmp = path .. '.' .. tostring(uv.os_getpid())
  local fd = uv.fs_open(tmp, 'w', PRIVATE_FILE)
  if not fd then
    return
  end
  uv.fs_write(fd, vim.fn.json_encode({ root = root, sessions = ids }))
  uv.fs_close(fd)
  uv.fs_rename(tmp, path) -- whole or not at all
end

function M.remember(sid)
  if not M.persisting() then
    return
  end
  local root = workspace()
  local ids = M.ids(root)
  if not vim.tbl_contains(ids, sid) then
    table.insert(ids, sid)
    write(root, ids)
  end
end

function M.forget(sid)
  local root = workspace()
  local ids = M.ids(root)
  if vim.tbl_contains(ids, sid) then
    write(
      root,
      vim.tbl_filter(function(id)
        return id ~= sid
      end, ids)
    )
  end
end

--- Opens a buffer on each remembered session the server can attach (one still running in the
--- session host), leaving the current window current; the others (ended meanwhile, unknown,
--- another editor's) are forgotten. done(sessions) gets those reopened.
function M.reattach(done)
  local ids = M.ids()
  local reopened, left = {}, #ids
  local function step()
    left = left - 1
    if left == 0 and done then
      done(reopened)
    end
  end
  if left == 0 and done then
    done(reopened)
  end
  for _, sid in ipairs(ids) do
    client.exec('ktl.session.get', { sessionId = sid }, function(err, s)
      if err or terminal.FINAL[s.state] then
        M.forget(sid)
        return step()
      end
      client.exec('ktl.session.attach', { sessionId = sid, detach = true }, function(aerr)
        vim.schedule(function()
          if aerr then
            M.forget(sid)
          elseif not terminal.terms[sid] then
            local win = vim.api.nvim_get_current_win()
            sessions.open_session(s)
            pcall(vim.api.nvim_set_current_win, win)
            table.insert(reopened, s)
          end
          step()
        end)
      end)
    end)
  end
end

local reopened = false

--- Once per Neovim, when the client is up: the sessions that outlived the last one come back
--- (or, with reopen_sessions = false, a note says :KtlReattach brings them).
function M.on_ready()
  if reopened or not M.persisting() then
    return
  end
  reopened = true
  local ids = M.ids()
  if #ids == 0 then
    return
  end
  if config.options.reopen_sessions == false then
    local short = vim.tbl_map(function(id)
      return id:sub(1, 8)
    end, ids)
    notify('ktl: sessions shown last time may still run (' .. table.concat(short, ', ') .. '): :KtlReattach opens them')
    return
  end
  M.reattach()
end

--- At setup: with remembered sessions, the client starts at once (not at the first YAML file)
--- so they come back when Neovim does.
function M.on_setup()
  if M.persisting() and config.options.autostart and #M.ids() > 0 then
    vim.schedule(function()
      client.start(nil)
    end)
  end
end

return M
