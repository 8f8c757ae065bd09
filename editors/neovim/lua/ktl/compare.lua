-- :KtlCompare: two sessions side by side (`ktl.sessions.diff`) in a scratch diff buffer.
local client = require('ktl.client')
local notify = require('ktl.ui').notify
local sessions = require('ktl.sessions')

local M = {}
local present = sessions.present

M.last_buf = nil -- the latest comparison's buffer

local function describe_session(s)
  local text = (s.title or s.sessionId) .. ' (' .. s.sessionId .. ', ' .. s.state
  if present(s.exitCode) then
    text = text .. ' exit ' .. tostring(s.exitCode)
  end
  return text .. ', ' .. (s.createdAt or '') .. ')'
end

local function ms_text(ms)
  local sign = ms < 0 and '-' or '+'
  ms = math.abs(ms)
  if ms < 1000 then
    return sign .. ms .. 'ms'
  end
  return sign .. string.format('%.1fs', ms / 1000)
end

--- The lines of a comparison (`ktl.sessions.diff`): a header, then the unified diff.
function M.compare_lines(r)
  local codes = r.exitCodes or {}
  local a_code = present(codes[1]) and tostring(codes[1]) or 'none'
  local b_code = present(codes[2]) and tostring(codes[2]) or 'none'
  local lines = {
    '# ktl: compare two sessions',
    '# a: ' .. describe_session(r.a),
    '# b: ' .. describe_session(r.b),
    '# exit codes: ' .. a_code .. ' -> ' .. b_code .. (a_code == b_code and ' (same)' or ''),
    '# duration: ' .. ms_text(r.durationDeltaMs or 0) .. ' (b - a)',
  }
  if r.truncated == true then
    table.insert(lines, '# output truncated: only the first lines were compared')
  end
  table.insert(lines, '')
  local diff = r.outputDiff or ''
  if diff == '' then
    table.insert(lines, '(the output is the same, volatile tokens aside)')
  else
    for _, l in ipairs(vim.split((diff:gsub('\n$', '')), '\n')) do
      table.insert(lines, l)
    end
  end
  return lines
end

--- Compares two sessions (`ktl.sessions.diff`) in a scratch buffer ('filetype' diff).
--- a, b: ids or unique prefixes; picked when omitted.
function M.compare(a, b)
  local function go(sa, sb)
    client.exec_if_supported('ktl.sessions.diff', { a = sa.sessionId, b = sb.sessionId }, function(err, r)
      if err then
        notify('ktl: compare: ' .. (err.message or ''), vim.log.levels.ERROR)
        return
      end
      vim.schedule(function()
        local name = 'ktl://compare/' .. sa.sessionId:sub(1, 8) .. '..' .. sb.sessionId:sub(1, 8)
        M.last_buf = sessions.scratch(name, M.compare_lines(r), 'diff')
      end)
    end)
  end
  local function second(sa)
    if b and b ~= '' then
      sessions.with_session(b, function(sb)
        go(sa, sb)
      end)
    else
      sessions.pick_session({}, function(sb)
        go(sa, sb)
      end, 'ktl: compare ' .. sa.sessionId:sub(1, 8) .. ' with…')
    end
  end
  if a and a ~= '' then
    sessions.with_session(a, second)
  else
    sessions.pick_session({}, second, 'ktl: compare: the first (earlier) session')
  end
end

return M
