-- Headless test of the ktl plugin against the real server.
--   KTL_LSP=<server> KTL_STORE=<db> KTL_RESULTS=<json> KTL_MANIFEST=<yaml> \
--     nvim --headless -u NONE -i NONE --cmd 'set rtp^=editors/neovim' -c 'luafile editors/neovim/tests/run.lua'
-- Writes {checks: {name: {ok, detail}}} to KTL_RESULTS and quits (exit 0 even when checks fail:
-- the caller reads the results; a crash leaves no results file).
local harness = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'results.lua')
local results, check, buf_text = harness.results, harness.check, harness.buf_text
local diag_timeout = tonumber(os.getenv('KTL_DIAG_TIMEOUT') or '15000')

local function exec_sync(ktl, command, args, timeout)
  local done, err, res = false, nil, nil
  ktl.exec(command, args, function(e, r)
    done, err, res = true, e, r
  end)
  vim.wait(timeout or 10000, function()
    return done
  end, 20)
  return done, err, res
end

-- What the server logs (window/logMessage), for the moments a check must wait for.
local logged = {}
local log_handler = vim.lsp.handlers['window/logMessage']
vim.lsp.handlers['window/logMessage'] = function(err, result, ctx, config)
  table.insert(logged, result and result.message or '')
  return log_handler(err, result, ctx, config)
end
local function was_logged(text)
  for _, m in ipairs(logged) do
    if m:find(text, 1, true) then
      return true
    end
  end
  return false
end

local ok, failure = pcall(function()
  local notes = {}
  vim.notify = function(msg)
    table.insert(notes, msg)
  end
  vim.cmd('filetype on')
  local ktl = require('ktl')
  ktl.setup({ cmd = { os.getenv('KTL_LSP') }, store = os.getenv('KTL_STORE') })
  check('setup', vim.fn.exists(':KtlRun') == 2 and vim.fn.exists(':KtlSessions') == 2)

  -- 1. a manifest with an error: the client starts, attaches, and gets a diagnostic
  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('KTL_MANIFEST')))
  local manifest = vim.api.nvim_get_current_buf()
  vim.wait(10000, function()
    return #vim.lsp.buf_get_clients(manifest) > 0 and ktl.client_id ~= nil
  end, 20)
  check('attached', #vim.lsp.buf_get_clients(manifest) > 0)
  local got = vim.wait(diag_timeout, function()
    return #vim.diagnostic.get(manifest) > 0
  end, 50)
  local diags = vim.diagnostic.get(manifest)
  local detail = {}
  for _, d in ipairs(diags) do
    table.insert(detail, string.format('%d:%s:%s', d.lnum, tostring(d.code), d.message))
  end
  check('diagnostic', got and diags[1] ~= nil and diags[1].source == 'ktl', table.concat(detail, ' | '))

  -- 2. :KtlRun: a terminal buffer fed by ktl/sessionData
  -- (a short sleep: a session that ends before the client answered workDoneProgress/create
  -- gets only an end report, by design)
  vim.cmd([[KtlRun sleep 0.3; printf 'hello from ktl\n']])
  local term_buf = vim.api.nvim_get_current_buf()
  check('terminal_buffer', vim.bo[term_buf].buftype == 'terminal', vim.bo[term_buf].buftype)
  got = vim.wait(10000, function()
    return buf_text(term_buf):find('hello from ktl', 1, true) ~= nil
  end, 20)
  check('run_output', got, buf_text(term_buf))
  got = vim.wait(10000, function()
    return vim.b[term_buf].ktl_session_state == 'done'
  end, 20)
  check('run_state', got, vim.b[term_buf].ktl_session_state)
  vim.wait(2000, function()
    return buf_text(term_buf):find('session done', 1, true) ~= nil
  end, 20)
  check('run_final_line', buf_text(term_buf):find('[ktl] session done (exit 0)', 1, true) ~= nil, buf_text(term_buf))
  local sid = vim.b[term_buf].ktl_session_id
  -- progress: the begin and the end of the session reached vim.notify
  local function noted(text)
    for _, n in ipairs(notes) do
      if n:find(text, 1, true) then
        return true
      end
    end
    return false
  end
  got = vim.wait(3000, function()
    return noted('exit 0 in')
  end, 20)
  check('progress', got and noted('ktl: sleep 0.3; printf'), table.concat(notes, ' | '))

  -- 3. the session is in ktl.sessions.list
  local done, err, res = exec_sync(ktl, 'ktl.sessions.list', {})
  local found = false
  for _, s in ipairs((res and res.sessions) or {}) do
    found = found or s.sessionId == sid
  end
  check('sessions_list', done and not err and found, vim.inspect({ sid = sid, err = err }))

  -- 4. typing into the terminal reaches the process (the on_input path)
  vim.cmd([[KtlRun read line; echo "got:$line"]])
  local in_buf = vim.api.nvim_get_current_buf()
  vim.wait(10000, function()
    return vim.b[in_buf].ktl_session_id ~= nil
  end, 20)
  require('ktl.terminal').input(in_buf, 'typed-text\r')
  got = vim.wait(10000, function()
    return buf_text(in_buf):find('got:typed-text', 1, true) ~= nil
  end, 20)
  check('input', got, buf_text(in_buf))

  -- 5. :KtlCancel in a running session's buffer
  vim.cmd([[KtlRun sleep 30]])
  local c_buf = vim.api.nvim_get_current_buf()
  vim.wait(10000, function()
    return vim.b[c_buf].ktl_session_id ~= nil
  end, 20)
  vim.cmd('KtlCancel')
  got = vim.wait(15000, function()
    return vim.b[c_buf].ktl_session_state == 'cancelled'
  end, 20)
  check('cancel', got, vim.b[c_buf].ktl_session_state)

  -- 6. :KtlSessions picks with vim.ui.select and shows the recorded output
  local items
  vim.ui.select = function(list, opts, on_choice)
    items = list
    for _, s in ipairs(list) do
      if s.sessionId == sid then
        on_choice(s)
        return
      end
    end
    on_choice(nil)
  end
  local before = vim.api.nvim_get_current_buf()
  vim.cmd('KtlSessions')
  got = vim.wait(10000, function()
    local b = vim.api.nvim_get_current_buf()
    return b ~= before and buf_text(b):find('hello from ktl', 1, true) ~= nil
  end, 20)
  check('sessions_picker', got and items ~= nil and #items >= 3, items and #items or 'no picker')

  -- 7. :KtlApply on the manifest (the loopback cluster answers) tells how it went
  vim.cmd('buffer ' .. manifest)
  notes = {}
  vim.cmd('KtlApply')
  vim.wait(15000, function()
    return table.concat(notes, ' '):lower():find('appl', 1, true) ~= nil
  end, 20)
  check('apply_notifies', table.concat(notes, ' '):lower():find('appl', 1, true) ~= nil, table.concat(notes, ' | '))

  -- 8. CodeLens (test_neovim.py requires the server to offer it): refreshed on BufEnter, and runnable
  local client = vim.lsp.get_client_by_id(ktl.client_id)
  results.codelens_provider = client and client.server_capabilities.codeLensProvider ~= nil or false
  if results.codelens_provider then
    vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('KTL_GOOD_MANIFEST')))
    local good = vim.api.nvim_get_current_buf()
    got = vim.wait(10000, function()
      return #vim.lsp.codelens.get(good) > 0
    end, 50)
    local titles = {}
    for _, lens in ipairs(vim.lsp.codelens.get(good)) do
      table.insert(titles, lens.command and lens.command.title or '?')
    end
    check('codelens', got, table.concat(titles, ','))
    if got then
      vim.ui.select = function(list, _, on_choice)
        on_choice(list[1])
      end
      vim.api.nvim_win_set_cursor(0, { vim.lsp.codelens.get(good)[1].range.start.line + 1, 0 })
      notes = {}
      vim.lsp.codelens.run()
      got = vim.wait(5000, function()
        return ktl.last_lens_command ~= nil and #notes > 0
      end, 20)
      check('codelens_run', got, tostring(ktl.last_lens_command) .. ': ' .. table.concat(notes, ' | '))
    end
  end

  -- 9. Hover through the built-in client: the schema's words for the key at a position
  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('KTL_GOOD_MANIFEST')))
  local hover_buf = vim.api.nvim_get_current_buf()
  vim.wait(10000, function()
    return next(vim.lsp.buf_get_clients(hover_buf)) ~= nil
  end, 20)
  local hover_params = {
    textDocument = { uri = vim.uri_from_bufnr(hover_buf) },
    position = { line = 13, character = 12 }, -- `image` of the first container
  }
  local replies = vim.lsp.buf_request_sync(hover_buf, 'textDocument/hover', hover_params, 10000) or {}
  local hover_text = ''
  for _, reply in pairs(replies) do
    local contents = reply.result and reply.result.contents
    if type(contents) == 'table' and contents.value then
      hover_text = hover_text .. contents.value
    end
  end
  check('hover', hover_text:find('**image** `string`', 1, true) ~= nil and hover_text:find('Container image name', 1, true) ~= nil, hover_text:sub(1, 200))

  -- 9b. Completion and its resolve through the built-in client: the container's other keys
  local completion_params = {
    textDocument = { uri = vim.uri_from_bufnr(hover_buf) },
    position = { line = 13, character = 12 }, -- on `image`: the keys of a container
  }
  local completion_replies = vim.lsp.buf_request_sync(hover_buf, 'textDocument/completion', completion_params, 10000) or {}
  local labels, pull = {}, nil
  for _, reply in pairs(completion_replies) do
    local result = reply.result or {}
    for _, item in ipairs(result.items or result) do
      labels[item.label] = true
      if item.label == 'imagePullPolicy' then
        pull = item
      end
    end
  end
  local documented = ''
  if pull then
    local resolved = vim.lsp.buf_request_sync(hover_buf, 'completionItem/resolve', pull, 10000) or {}
    for _, reply in pairs(resolved) do
      if reply.err then
        documented = documented .. vim.inspect(reply.err)
      end
      local doc = reply.result and reply.result.documentation
      documented = documented .. (type(doc) == 'table' and (doc.value or '') or (doc or ''))
    end
  end
  check('completion', labels.imagePullPolicy and labels.ports and not labels.name and documented:find('**imagePullPolicy**', 1, true) ~= nil, 'documentation: ' .. documented:sub(1, 200) .. ' labels: ' .. vim.inspect(vim.tbl_keys(labels)):sub(1, 200))

  -- 9c. A quick fix applied: the code action for the misspelled `replica:` key, its WorkspaceEdit
  -- applied by vim.lsp.util.apply_workspace_edit
  local fix_lines = vim.fn.readfile(os.getenv('KTL_GOOD_MANIFEST'))
  table.insert(fix_lines, 6, '  replica: 3') -- under spec:
  vim.fn.writefile(fix_lines, 'fix.yaml')
  vim.cmd('edit fix.yaml')
  local fix_buf = vim.api.nvim_get_current_buf()
  local misspelled
  vim.wait(diag_timeout, function()
    for _, d in ipairs(vim.diagnostic.get(fix_buf)) do
      if d.message:find('"spec.replica"', 1, true) then
        misspelled = d
      end
    end
    return misspelled ~= nil
  end, 50)
  local fix_client = vim.lsp.get_client_by_id(ktl.client_id)
  local applied, titles = false, {}
  if misspelled then
    local range = {
      start = { line = misspelled.lnum, character = misspelled.col },
      ['end'] = { line = misspelled.end_lnum, character = misspelled.end_col },
    }
    local action_replies = vim.lsp.buf_request_sync(fix_buf, 'textDocument/codeAction', {
      textDocument = { uri = vim.uri_from_bufnr(fix_buf) },
      range = range,
      context = {
        diagnostics = { { range = range, message = misspelled.message, code = misspelled.code, source = misspelled.source, severity = misspelled.severity } },
        only = { 'quickfix' },
      },
    }, 10000) or {}
    for _, reply in pairs(action_replies) do
      for _, action in ipairs(reply.result or {}) do
        table.insert(titles, action.title)
        if action.title == 'Change "replica" to "replicas"' and action.isPreferred and action.edit then
          vim.lsp.util.apply_workspace_edit(action.edit, fix_client.offset_encoding)
          applied = true
        end
      end
    end
  end
  local fixed_line = vim.api.nvim_buf_get_lines(fix_buf, 5, 6, false)[1]
  local cleared = applied and vim.wait(diag_timeout, function()
    for _, d in ipairs(vim.diagnostic.get(fix_buf)) do
      if d.message:find('"spec.replica"', 1, true) then
        return false
      end
    end
    return true
  end, 50)
  check('code_action', applied and fixed_line == '  replicas: 3' and cleared, vim.inspect({ line = fixed_line, titles = titles, diagnostic = misspelled and misspelled.message, cleared = cleared }))

  -- 9d. Feature switches (:help ktl-features): hover off and on again with
  -- workspace/didChangeConfiguration, no restart
  local function hover_value()
    local answers = vim.lsp.buf_request_sync(hover_buf, 'textDocument/hover', hover_params, 10000) or {}
    local text = ''
    for _, reply in pairs(answers) do
      local contents = reply.result and reply.result.contents
      text = text .. (type(contents) == 'table' and (contents.value or '') or '')
    end
    return text
  end
  vim.cmd('buffer ' .. hover_buf)
  fix_client.notify('workspace/didChangeConfiguration', { settings = { hover = { enabled = false } } })
  local hover_off = hover_value()
  fix_client.notify('workspace/didChangeConfiguration', { settings = { hover = { enabled = true } } })
  local hover_on = hover_value()
  check('feature_switch', hover_off == '' and hover_on:find('Container image name', 1, true) ~= nil, vim.inspect({ off = hover_off:sub(1, 80), on = hover_on:sub(1, 80) }))
  -- 9e. Go to definition through the built-in client: from a configMapRef to the ConfigMap's
  -- name in the file that defines it (read from the workspace folder, never opened)
  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('KTL_NAV_MANIFEST')))
  local nav_buf = vim.api.nvim_get_current_buf()
  vim.wait(10000, function()
    return next(vim.lsp.buf_get_clients(nav_buf)) ~= nil
  end, 20)
  local function landed()
    return vim.api.nvim_buf_get_name(0):sub(-#'config/settings.yaml') == 'config/settings.yaml'
  end
  -- the server has read the workspace folder (where the ConfigMap is) once it says so
  vim.wait(20000, function()
    return was_logged('ktl: workspace checked')
  end, 20)
  vim.api.nvim_set_current_buf(nav_buf)
  vim.api.nvim_win_set_cursor(0, { 10, 32 }) -- on `settings` of the configMapRef
  vim.lsp.buf.definition()
  vim.wait(5000, landed, 20)
  local cursor = vim.api.nvim_win_get_cursor(0)
  local line = vim.api.nvim_get_current_line()
  check('definition', landed() and cursor[1] == 4 and cursor[2] == 8 and line == '  name: settings', vim.api.nvim_buf_get_name(0) .. ' ' .. vim.inspect(cursor) .. ' ' .. line)

  results.server_commands = ktl.server_commands()

  -- 10. :KtlReplay {id}: the one-time link goes to the opener (config.open_url)
  local opened_urls = {}
  ktl.config.open_url = function(url)
    table.insert(opened_urls, url)
  end
  vim.cmd('KtlReplay ' .. sid)
  got = vim.wait(10000, function()
    return #opened_urls > 0
  end, 20)
  check('replay', got and opened_urls[1]:match('^http://127%.0%.0%.1:%d+/') ~= nil and opened_urls[1]:find(sid, 1, true) ~= nil, opened_urls[1] or table.concat(notes, ' | '))
  -- ... also from a session's terminal buffer, with a unique id prefix
  opened_urls = {}
  vim.api.nvim_set_current_buf(term_buf)
  vim.cmd('KtlReplay')
  got = vim.wait(10000, function()
    return #opened_urls > 0
  end, 20)
  local from_buf = got
  opened_urls = {}
  vim.cmd('KtlReplay ' .. sid:sub(1, 8))
  got = vim.wait(10000, function()
    return #opened_urls > 0
  end, 20)
  check('replay_buffer_and_prefix', from_buf and got, table.concat(notes, ' | '))

  -- 11. :KtlExport {format} [path] for the session in the current buffer
  local cast = vim.fn.getcwd() .. '/demo.cast'
  vim.api.nvim_set_current_buf(term_buf)
  notes = {}
  vim.cmd('KtlExport asciicast ' .. vim.fn.fnameescape(cast))
  got = vim.wait(10000, function()
    return vim.fn.filereadable(cast) == 1 and noted('exported')
  end, 20)
  local header = got and vim.fn.json_decode(vim.fn.readfile(cast)[1]) or {}
  local body = got and table.concat(vim.fn.readfile(cast), '\n') or ''
  check('export', got and header.version == 2 and body:find('hello from ktl', 1, true) ~= nil, table.concat(notes, ' | '))
  local html = vim.fn.getcwd() .. '/demo.html'
  vim.cmd('KtlExport html ' .. vim.fn.fnameescape(html))
  got = vim.wait(10000, function()
    return vim.fn.filereadable(html) == 1
  end, 20)
  check('export_html', got and table.concat(vim.fn.readfile(html), '\n'):find('<html', 1, true) ~= nil, html)

  -- 12. :KtlPin / :KtlPin! (retention keeps pinned sessions)
  local function session_get(id)
    local _, e, r = exec_sync(ktl, 'ktl.session.get', { sessionId = id })
    return (not e) and r or {}
  end
  vim.cmd('KtlPin ' .. sid)
  got = vim.wait(10000, function()
    return session_get(sid).pinned == true
  end, 50)
  vim.cmd('KtlPin! ' .. sid)
  local unpinned = vim.wait(10000, function()
    return session_get(sid).pinned == false
  end, 50)
  check('pin', got and unpinned, vim.inspect(session_get(sid).pinned))
  -- a session loaded from a bundle is marked in the lists
  local line = require('ktl').format_session({
    sessionId = '0123456789abcdef', state = 'interrupted', title = 'deploy',
    meta = { imported = { from = 'ci.ktlbundle' } },
  })
  check('imported_marked', line:find('deploy [imported]', 1, true) ~= nil, line)

  -- 13. :KtlCompare {a} {b}: a scratch buffer with the diff
  vim.cmd([[KtlRun echo same; echo before]])
  local a_buf = vim.api.nvim_get_current_buf()
  vim.cmd([[KtlRun echo same; echo after; exit 3]])
  local b_buf = vim.api.nvim_get_current_buf()
  vim.wait(10000, function()
    return vim.b[a_buf].ktl_session_state == 'done' and vim.b[b_buf].ktl_session_state == 'error'
  end, 20)
  ktl.last_compare_buf = nil
  vim.cmd('KtlCompare ' .. vim.b[a_buf].ktl_session_id .. ' ' .. vim.b[b_buf].ktl_session_id:sub(1, 10))
  got = vim.wait(10000, function()
    return ktl.last_compare_buf ~= nil
  end, 20)
  local cmp = got and buf_text(ktl.last_compare_buf) or ''
  check(
    'compare',
    got
      and vim.bo[ktl.last_compare_buf].filetype == 'diff'
      and cmp:find('\n%-before\n') ~= nil
      and cmp:find('\n%+after') ~= nil
      and cmp:find('# exit codes: 0 -> 3', 1, true) ~= nil,
    cmp
  )
  check('compare_is_not_manifest_diff', vim.fn.exists(':KtlCompare') == 2 and vim.fn.exists(':KtlDiff') == 2)

  -- 14. :KtlPlan on a plan file: a summary buffer, a line per node, live until the end
  local plan_file = vim.fn.getcwd() .. '/ci.plan.yaml'
  vim.fn.writefile({
    'name: ci',
    'nodes:',
    '  - id: build',
    '    run: sleep 0.3; echo built',
    '  - id: test',
    '    run: echo tested; exit 2',
    '    deps: [build]',
    '  - id: ship',
    "    run: 'true'",
    '    deps: [test]',
  }, plan_file)
  vim.cmd('only') -- room for the summary and a node's terminal
  vim.cmd('edit ' .. vim.fn.fnameescape(plan_file))
  vim.cmd('KtlPlan')
  local plan_buf
  got = vim.wait(20000, function()
    plan_buf = vim.api.nvim_get_current_buf()
    return vim.b[plan_buf].ktl_plan_session ~= nil and vim.b[plan_buf].ktl_plan_state == 'error'
  end, 50)
  local summary = plan_buf and buf_text(plan_buf) or ''
  check(
    'plan_summary',
    got
      and summary:find('build%s+done') ~= nil
      and summary:find('test%s+failed%s+exit 2') ~= nil
      and summary:find('ship%s+skipped') ~= nil,
    summary
  )
  -- the nodes are child sessions of the plan (ktl.sessions.list with parentId)
  local plan_id = plan_buf and vim.b[plan_buf].ktl_plan_session
  local _, perr, kids = exec_sync(ktl, 'ktl.sessions.list', { parentId = plan_id })
  local nodes = {}
  for _, k in ipairs((kids and kids.sessions) or {}) do
    table.insert(nodes, tostring(k.meta.node) .. '=' .. k.state .. (k.parentId == plan_id and '' or '!'))
  end
  table.sort(nodes)
  check('plan_children', not perr and table.concat(nodes, ',') == 'build=done,test=error', vim.inspect({ perr, nodes }))
  -- <CR> on a node's line opens that node's terminal
  local build_line
  for i, l in ipairs(vim.api.nvim_buf_get_lines(plan_buf, 0, -1, false)) do
    if l:find('build', 1, true) and l:find('done', 1, true) then
      build_line = i
    end
  end
  local before_node = vim.api.nvim_get_current_buf()
  if build_line then
    vim.api.nvim_win_set_cursor(0, { build_line, 0 })
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<CR>', true, false, true), 'x', false)
  end
  got = vim.wait(10000, function()
    local b = vim.api.nvim_get_current_buf()
    return b ~= before_node and buf_text(b):find('built', 1, true) ~= nil
  end, 20)
  check('plan_node_terminal', got, vim.inspect({ line = build_line, name = vim.api.nvim_buf_get_name(0), sid = vim.b.ktl_session_id, text = buf_text(0), notes = notes }))

  -- 15. :KtlSessions lists a plan followed by its nodes
  local shown
  vim.ui.select = function(list, opts, on_choice)
    shown = {}
    for _, s in ipairs(list) do
      table.insert(shown, opts.format_item(s))
    end
    on_choice(nil)
  end
  vim.cmd('KtlSessions')
  vim.wait(10000, function()
    return shown ~= nil
  end, 20)
  local plan_at, node_lines = nil, 0
  for i, line in ipairs(shown or {}) do
    if line:find('▸ plan ci', 1, true) then
      plan_at = i
    elseif plan_at and line:find('└ build', 1, true) and i == plan_at + 1 then
      node_lines = node_lines + 1
    elseif plan_at and line:find('└ test', 1, true) and i == plan_at + 2 then
      node_lines = node_lines + 1
    end
  end
  check('sessions_plan_nodes', plan_at ~= nil and node_lines == 2, table.concat(shown or {}, '\n'))


  -- 16. the statusline's Kubernetes context (KUBECONFIG: contexts "fake" and "staging" on the
  -- loopback API server), :KtlContext / :KtlNamespace through vim.ui.select to ktl.k8s.use
  got = vim.wait(10000, function()
    return (ktl.k8s or {}).context == 'fake'
  end, 20)
  check('status_context', got and ktl.status():find('fake/default', 1, true) ~= nil, vim.inspect({ k8s = ktl.k8s, status = ktl.status() }))
  do -- a context the server's settings guard: marked, and in the warning highlight
    local kept = ktl.k8s
    local guarded = require('ktl.k8s').status_of({ current = 'prod', contexts = { { name = 'prod', protection = 'protected' } } })
    require('ktl.statusline').k8s = guarded
    local plain, hl = ktl.status(), ktl.statusline_hl()
    require('ktl.statusline').k8s = kept
    check(
      'status_protected',
      plain == '⎈ prod/default (protected)' and hl == '%#KtlProtectedContext#⎈ prod/default (protected)%*',
      vim.inspect({ plain = plain, hl = hl })
    )
  end
  local prompts, offered = {}, {}
  vim.ui.select = function(list, opts, on_choice)
    table.insert(prompts, opts.prompt)
    for _, i in ipairs(list) do
      table.insert(offered, opts.format_item(i))
    end
    for _, i in ipairs(list) do
      if i.context == 'staging' then
        return on_choice(i)
      end
    end
    on_choice(nil)
  end
  vim.cmd('KtlContext')
  got = vim.wait(10000, function()
    return ktl.k8s.context == 'staging' and ktl.statusline():find('staging/default', 1, true) ~= nil
  end, 20)
  local _, cerr, cur = exec_sync(ktl, 'ktl.k8s.contexts', {})
  check(
    'context_picker',
    got and not cerr and cur.current == 'staging' and offered[1] == '* fake  (cluster fake)' and offered[2] == '  staging  (cluster staging)',
    vim.inspect({ prompts = prompts, offered = offered, k8s = ktl.k8s, server = cur, statusline = ktl.statusline() })
  )
  offered = {}
  vim.ui.select = function(list, opts, on_choice)
    for _, i in ipairs(list) do
      table.insert(offered, opts.format_item(i))
    end
    for _, i in ipairs(list) do
      if i.namespace == nil then
        return on_choice(i) -- "other namespace…"
      end
    end
  end
  local real_input = vim.ui.input
  vim.ui.input = function(_, on_confirm)
    on_confirm('shop')
  end
  vim.cmd('KtlNamespace')
  got = vim.wait(10000, function()
    return ktl.k8s.namespace == 'shop' and ktl.statusline():find('staging/shop', 1, true) ~= nil
  end, 20)
  vim.ui.input = real_input
  _, cerr, cur = exec_sync(ktl, 'ktl.k8s.contexts', {})
  check('namespace_picker', got and not cerr and cur.namespace == 'shop', vim.inspect({ offered = offered, k8s = ktl.k8s, server = cur }))
  -- a new server forgets the pick: it is told again when the client is ready
  exec_sync(ktl, 'ktl.k8s.use', { context = '', namespace = '' })
  ktl._on_ready()
  got = vim.wait(10000, function()
    local _, e, r = exec_sync(ktl, 'ktl.k8s.contexts', {})
    return not e and r.current == 'staging' and r.namespace == 'shop'
  end, 50)
  check('pick_restored', got and ktl.status():find('staging/shop', 1, true) ~= nil, vim.inspect({ sel = ktl.k8s_selection, status = ktl.status() }))

  -- the running sessions count (ktl/sessionState)
  vim.cmd([[KtlRun sleep 20]])
  local r_buf = vim.api.nvim_get_current_buf()
  vim.wait(10000, function()
    return vim.b[r_buf].ktl_session_id ~= nil
  end, 20)
  local r_sid = vim.b[r_buf].ktl_session_id
  got = vim.wait(10000, function()
    return ktl.running[r_sid] == true and ktl.status():match('%d+ running') ~= nil
  end, 20)
  local while_running = ktl.status()
  vim.cmd('KtlCancel')
  local ended = vim.wait(15000, function()
    return ktl.running[r_sid] == nil
  end, 20)
  check('status_running', got and ended, vim.inspect({ while_running = while_running, after = ktl.status() }))

  -- 17. :KtlExec, :KtlPortForward, :KtlForwards and their CodeLens commands, end to end: the
  -- real server's ktl.exec / ktl.portForward against the loopback cluster (tests/editors/
  -- conftest.py: pod web-1 in namespace default, HOSTNAME=web-1 in its exec'd processes, HTTP on
  -- port 80 naming the pod; Service web in front of it). The pick is staging/shop by now
  -- (staging is the same API server), hence -n default.
  local real_exec = ktl.exec
  local sent, cancels = {}, {}
  ktl.exec = function(command, args, cb) -- records what the plugin sends; the server answers
    if command == 'ktl.exec' or command == 'ktl.portForward' then
      table.insert(sent, { command = command, args = vim.deepcopy(args) })
    elseif command == 'ktl.session.cancel' then
      table.insert(cancels, args.sessionId)
    end
    return real_exec(command, args, cb)
  end
  local uv = vim.uv or vim.loop
  -- GET url over a raw TCP connection (HTTP/1.0, the server closes): the answer, or nil, error.
  local function http_get(url)
    local host, port, path = tostring(url):match('^http://([%d%.]+):(%d+)(.*)$')
    if not host then
      return nil, 'not a URL: ' .. tostring(url)
    end
    local chunks, finished, failure = {}, false, nil
    local tcp = uv.new_tcp()
    local function finish(e)
      failure = failure or e
      finished = true
      if not tcp:is_closing() then
        tcp:close()
      end
    end
    tcp:connect(host, tonumber(port), function(cerr)
      if cerr then
        return finish(cerr)
      end
      tcp:write('GET ' .. (path ~= '' and path or '/') .. ' HTTP/1.0\r\nHost: ' .. host .. '\r\nConnection: close\r\n\r\n')
      tcp:read_start(function(rerr, data)
        if rerr or not data then
          return finish(rerr)
        end
        table.insert(chunks, data)
      end)
    end)
    vim.wait(20000, function()
      return finished
    end, 20)
    if not finished then
      finish('timed out')
    end
    local answer = table.concat(chunks)
    if failure and answer == '' then
      return nil, tostring(failure)
    end
    return answer
  end
  local function from_web_1(answer)
    return answer ~= nil and answer:match('^HTTP/1%.%d 200') ~= nil and answer:lower():find('\r\nx-pod: web-1\r\n', 1, true) ~= nil
  end
  local function session_state(id)
    local _, e, r = exec_sync(ktl, 'ktl.session.get', { sessionId = id })
    return (not e and r) and r.state or nil
  end
  local ok17, err17 = pcall(function()
    vim.cmd([[KtlExec pod/web-1 -n default -- sh -c 'echo hello-from-$HOSTNAME; exec sh']])
    local x_buf = vim.api.nvim_get_current_buf()
    local a = (sent[1] or {}).args or {}
    got = vim.wait(20000, function()
      return buf_text(x_buf):find('hello-from-web-1', 1, true) ~= nil
    end, 20)
    local x_sid = vim.b[x_buf].ktl_session_id
    check(
      'exec_terminal',
      got
        and vim.bo[x_buf].buftype == 'terminal'
        and x_sid ~= nil
        and sent[1].command == 'ktl.exec'
        and a.pod == 'web-1'
        and a.namespace == 'default'
        and vim.deep_equal(a.command, { 'sh', '-c', 'echo hello-from-$HOSTNAME; exec sh' })
        and a.detach == true
        and type(a.cols) == 'number',
      vim.inspect({ sent = sent, sid = x_sid, text = buf_text(x_buf), notes = notes })
    )
    -- what is typed in the terminal reaches the shell in the container (the on_input path)
    require('ktl.terminal').input(x_buf, 'echo typed-$((2+3))\r')
    got = vim.wait(20000, function()
      return buf_text(x_buf):find('typed-5', 1, true) ~= nil
    end, 20)
    check('exec_input', got, buf_text(x_buf))
    -- :KtlCancel in its buffer: the shell ignores Ctrl-C, so the stream is hung up
    vim.api.nvim_set_current_buf(x_buf)
    vim.cmd('KtlCancel')
    got = vim.wait(30000, function()
      return vim.b[x_buf].ktl_session_state == 'cancelled' and buf_text(x_buf):find('[ktl] session cancelled', 1, true) ~= nil
    end, 50)
    check(
      'exec_cancel',
      got and cancels[#cancels] == x_sid and session_state(x_sid) == 'cancelled' and buf_text(x_buf):find('[ktl] session cancelled', 1, true) ~= nil,
      vim.inspect({ state = vim.b[x_buf].ktl_session_state, cancels = cancels, text = buf_text(x_buf) })
    )

    notes = {}
    vim.cmd('KtlExec svc/web')
    vim.wait(2000, function()
      return #notes > 0
    end, 20)
    check('exec_refuses_service', #sent == 1 and noted('not a Service'), table.concat(notes, ' | '))
    -- the CodeLens command: the same terminal, the server runs it for real
    local before_lens = vim.api.nvim_get_current_buf()
    vim.lsp.commands['ktl.exec']({ command = 'ktl.exec', arguments = { { pod = 'web-1', namespace = 'default', command = { 'sh', '-c', 'echo lens-in-$HOSTNAME' } } } })
    local lens_buf = vim.api.nvim_get_current_buf()
    got = vim.wait(20000, function()
      return vim.b[lens_buf].ktl_session_state == 'done' and buf_text(lens_buf):find('[ktl] session done (exit 0)', 1, true) ~= nil
    end, 20)
    check(
      'exec_lens',
      got
        and lens_buf ~= before_lens
        and vim.bo[lens_buf].buftype == 'terminal'
        and buf_text(lens_buf):find('lens-in-web-1', 1, true) ~= nil
        and #sent == 2
        and sent[2].args.pod == 'web-1'
        and ktl.last_lens_command == 'ktl.exec',
      vim.inspect({ sent = sent, state = vim.b[lens_buf].ktl_session_state, text = buf_text(lens_buf) })
    )

    -- :KtlPortForward: the URL in a notification, and it answers from the pod
    notes = {}
    ktl.last_forward = nil
    vim.cmd('KtlPortForward pod/web-1 :80 -n default')
    got = vim.wait(20000, function()
      return ktl.last_forward ~= nil and noted(' -> pod/web-1:80')
    end, 20)
    local pf = ktl.last_forward or {}
    local pf_url = ((pf.forwards or {})[1] or {}).url
    check(
      'port_forward',
      got
        and pf.state == 'running'
        and type(pf_url) == 'string'
        and noted('forwarding ' .. pf_url .. ' -> pod/web-1:80')
        and vim.deep_equal(sent[3] and sent[3].args, { pod = 'web-1', namespace = 'default', ports = { ':80' } }),
      vim.inspect({ sent = sent[3], result = pf, notes = notes })
    )
    local answer, herr = http_get(pf_url)
    check('port_forward_http', from_web_1(answer), vim.inspect({ url = pf_url, answer = answer, err = herr }))
    -- the CodeLens command, to the Service this time
    notes = {}
    ktl.last_forward = nil
    vim.lsp.commands['ktl.portForward']({ command = 'ktl.portForward', arguments = { { service = 'web', namespace = 'default', ports = { ':80' } } } })
    got = vim.wait(20000, function()
      return ktl.last_forward ~= nil and noted(' -> service/web:80')
    end, 20)
    local lens_pf = ktl.last_forward or {}
    local lens_url = ((lens_pf.forwards or {})[1] or {}).url
    answer, herr = http_get(lens_url)
    check(
      'port_forward_lens',
      got and ktl.last_lens_command == 'ktl.portForward' and lens_url ~= pf_url and from_web_1(answer),
      vim.inspect({ result = lens_pf, notes = notes, answer = answer, err = herr })
    )

    -- :KtlForwards lists both running forwards: open one, then stop them
    local opened = {}
    ktl.config.open_url = function(url)
      table.insert(opened, url)
    end
    local shown = {} -- the labels :KtlForwards offered: sessions, actions
    local function select_then(sid, action_prefix)
      shown = harness.select_forward(sid, action_prefix)
    end
    local function listed(url)
      for _, l in ipairs(shown.sessions or {}) do
        if l:find(url .. ' -> 80', 1, true) then
          return true
        end
      end
      return false
    end
    select_then(pf.sessionId, 'open ')
    vim.cmd('KtlForwards')
    got = vim.wait(10000, function()
      return opened[1] ~= nil
    end, 20)
    check(
      'forwards_open',
      got and opened[1] == pf_url and shown.sessions ~= nil and #shown.sessions == 2 and listed(pf_url) and listed(lens_url),
      vim.inspect({ opened = opened, sessions = shown.sessions, actions = shown.actions })
    )
    notes = {}
    select_then(pf.sessionId, 'stop ')
    vim.cmd('KtlForwards')
    got = vim.wait(20000, function()
      return cancels[#cancels] == pf.sessionId and session_state(pf.sessionId) == 'cancelled' and noted('stopped ')
    end, 50)
    local gone, gone_err = http_get(pf_url) -- the local port is closed
    check(
      'forwards_stop',
      got and gone == nil and gone_err ~= nil,
      vim.inspect({ actions = shown.actions, cancels = cancels, state = session_state(pf.sessionId), notes = notes, after = gone })
    )
    -- the other one is still listed, and still forwards; stopping it leaves none
    select_then(lens_pf.sessionId, 'stop ')
    vim.cmd('KtlForwards')
    got = vim.wait(20000, function()
      return cancels[#cancels] == lens_pf.sessionId and session_state(lens_pf.sessionId) == 'cancelled'
    end, 50)
    local still = got and shown.sessions and #shown.sessions == 1 and listed(lens_url)
    notes = {}
    vim.cmd('KtlForwards')
    got = vim.wait(10000, function()
      return noted('no running port-forwards')
    end, 20)
    check('forwards_stop_all', still and got, vim.inspect({ sessions = shown.sessions, notes = notes }))
  end)
  ktl.exec = real_exec
  if not ok17 then
    check('k8s_lua_error', false, err17)
  end
  -- 18. no target: :KtlExec / :KtlPortForward / :KtlLogs pick from what the cluster runs
  -- (ktl.k8s.list, vim.ui.select), then the ports; :KtlNamespace offers the cluster's
  -- namespaces. The pick is staging/shop by now (the same API server), hence -n default.
  local sent18 = {}
  ktl.exec = function(command, args, cb)
    if ({ ['ktl.exec'] = 1, ['ktl.portForward'] = 1, ['ktl.logs'] = 1, ['ktl.k8s.list'] = 1 })[command] then
      table.insert(sent18, { command = command, args = vim.deepcopy(args) })
    end
    return real_exec(command, args, cb)
  end
  local function sent_of(command)
    local out = {}
    for _, c in ipairs(sent18) do
      if c.command == command then
        table.insert(out, c.args)
      end
    end
    return out
  end
  local real_select, real_input = vim.ui.select, vim.ui.input
  local selects, inputs = {}, {}
  -- vim.ui.select picks the first item `want` accepts, and records what it offered
  local function choose(want)
    vim.ui.select = function(list, opts, on_choice)
      local labels = {}
      for _, i in ipairs(list) do
        table.insert(labels, opts.format_item and opts.format_item(i) or tostring(i))
      end
      table.insert(selects, { prompt = opts.prompt, labels = labels })
      for _, i in ipairs(list) do
        if want(i) then
          return on_choice(i)
        end
      end
      on_choice(nil)
    end
  end
  local function target_is(target, port)
    return function(i)
      return type(i) == 'table' and ((i.item and i.item.target == target) or (port and i.ports and i.ports[1] == port))
    end
  end
  vim.ui.input = function(opts, on_confirm)
    table.insert(inputs, opts)
    on_confirm(opts.prompt:find('port-forward pod/', 1, true) and ':80' or nil)
  end
  local function has_label(labels, text)
    for _, l in ipairs(labels or {}) do
      if l == text then
        return true
      end
    end
    return false
  end
  local ok18, err18 = pcall(function()
    -- exec: pod web-1 picked; the line's command still applies
    choose(target_is('pod/web-1'))
    local before18 = vim.api.nvim_get_current_buf()
    vim.cmd([[KtlExec -n default -- sh -c 'echo picked-in-$HOSTNAME']])
    local p_buf
    got = vim.wait(20000, function()
      p_buf = vim.api.nvim_get_current_buf()
      return p_buf ~= before18 and vim.b[p_buf].ktl_session_state == 'done' and buf_text(p_buf):find('picked-in-web-1', 1, true) ~= nil
    end, 20)
    local xa, la = sent_of('ktl.exec')[1] or {}, sent_of('ktl.k8s.list')[1] or {}
    local offered = (selects[1] or {}).labels
    local no_services = true
    for _, l in ipairs(offered or {}) do
      no_services = no_services and not l:find('service/', 1, true)
    end
    check(
      'pick_exec',
      got
        and xa.pod == 'web-1'
        and xa.namespace == 'default'
        and xa.container == nil
        and vim.deep_equal(xa.command, { 'sh', '-c', 'echo picked-in-$HOSTNAME' })
        and la.namespace == 'default'
        and vim.deep_equal(la.kinds, { 'pods', 'deployments', 'statefulsets', 'daemonsets', 'jobs' })
        and has_label(offered, 'pod/web-1   Running, ready   container app')
        and has_label(offered, 'type a name…')
        and no_services
        and (selects[1].prompt or ''):find('namespace default', 1, true) ~= nil,
      vim.inspect({ sent = sent18, selects = selects, text = p_buf and buf_text(p_buf), notes = notes })
    )

    -- port-forward: pod web-1 declares no ports, so they are asked (vim.ui.input: ":80")
    selects, inputs, notes = {}, {}, {}
    ktl.last_forward = nil
    choose(target_is('pod/web-1'))
    vim.cmd('KtlPortForward -n default')
    got = vim.wait(20000, function()
      return ktl.last_forward ~= nil and noted(' -> pod/web-1:80')
    end, 20)
    local pf18 = ktl.last_forward or {}
    local url18 = ((pf18.forwards or {})[1] or {}).url
    local answer18, herr18 = http_get(url18)
    check(
      'pick_port_forward',
      got
        and vim.deep_equal(sent_of('ktl.portForward')[1], { pod = 'web-1', namespace = 'default', ports = { ':80' } })
        and (inputs[1] or {}).default == ':80'
        and has_label((selects[1] or {}).labels, 'service/web   ClusterIP   port 80')
        and from_web_1(answer18),
      vim.inspect({ sent = sent18, selects = selects, inputs = inputs, notes = notes, answer = answer18, err = herr18 })
    )
    exec_sync(ktl, 'ktl.session.cancel', { sessionId = pf18.sessionId })
    -- ... Service web: its port is offered (:80), picked
    selects, inputs, notes = {}, {}, {}
    ktl.last_forward = nil
    choose(target_is('service/web', ':80'))
    vim.cmd('KtlPortForward -n default')
    got = vim.wait(20000, function()
      return ktl.last_forward ~= nil and noted(' -> service/web:80')
    end, 20)
    local svc18 = ktl.last_forward or {}
    answer18, herr18 = http_get(((svc18.forwards or {})[1] or {}).url)
    check(
      'pick_port_forward_service',
      got
        and vim.deep_equal(sent_of('ktl.portForward')[2], { service = 'web', namespace = 'default', ports = { ':80' } })
        and #inputs == 0
        and vim.deep_equal((selects[2] or {}).labels, { ':80   (a free local port -> 80)', 'other…   (LOCAL:REMOTE, e.g. 8080:80)' })
        and from_web_1(answer18),
      vim.inspect({ sent = sent18, selects = selects, notes = notes, answer = answer18, err = herr18 })
    )
    exec_sync(ktl, 'ktl.session.cancel', { sessionId = svc18.sessionId })

    -- logs: pod web-1 picked, its log session opens in a terminal buffer
    selects = {}
    choose(target_is('pod/web-1'))
    local before_logs = vim.api.nvim_get_current_buf()
    vim.cmd('KtlLogs -n default')
    local l_buf
    got = vim.wait(20000, function()
      l_buf = vim.api.nvim_get_current_buf()
      return l_buf ~= before_logs and vim.b[l_buf].ktl_session_id ~= nil
    end, 20)
    check(
      'pick_logs',
      got and vim.deep_equal(sent_of('ktl.logs')[1], { pod = 'web-1', namespace = 'default', detach = true }),
      vim.inspect({ sent = sent_of('ktl.logs'), selects = selects, notes = notes })
    )
    if got then
      exec_sync(ktl, 'ktl.session.cancel', { sessionId = vim.b[l_buf].ktl_session_id })
    end

    -- no list (an unknown context): a warning, then the input box as before
    selects, inputs, notes = {}, {}, {}
    vim.cmd('KtlExec --context nope')
    got = vim.wait(10000, function()
      return #inputs > 0
    end, 20)
    check(
      'pick_fallback',
      got and #selects == 0 and noted('could not list the cluster') and noted('nope') and inputs[1].prompt:find('ktl exec', 1, true) ~= nil,
      vim.inspect({ inputs = inputs, notes = notes, selects = selects })
    )

    -- :KtlNamespace: the cluster's namespaces (default, kube-system) are offered
    selects = {}
    choose(function(i)
      return i.namespace == 'default'
    end)
    local lists_before = #sent_of('ktl.k8s.list')
    vim.cmd('KtlNamespace')
    got = vim.wait(10000, function()
      return ktl.k8s.namespace == 'default' and ktl.status():find('staging/default', 1, true) ~= nil
    end, 20)
    local ns_labels = (selects[1] or {}).labels
    check(
      'pick_namespace',
      got
        and has_label(ns_labels, '  default')
        and has_label(ns_labels, '  kube-system')
        and has_label(ns_labels, '* shop')
        and vim.deep_equal((sent_of('ktl.k8s.list')[lists_before + 1] or {}).kinds, { 'namespaces' }),
      vim.inspect({ selects = selects, k8s = ktl.k8s, sent = sent18 })
    )
  end)
  ktl.exec = real_exec
  vim.ui.select, vim.ui.input = real_select, real_input
  if not ok18 then
    check('pick_lua_error', false, err18)
  end
  -- the picker items (no cluster needed): a pod with several containers, a Service's ports
  do
    local kk = require('ktl.k8s')
    local answer = {
      context = 'c',
      namespace = 'shop',
      items = {
        { kind = 'Pod', name = 'api-0', target = 'pod/api-0', ready = false, status = 'CrashLoopBackOff', containers = { 'api', 'envoy' }, ports = {} },
        { kind = 'Deployment', name = 'web', target = 'deployment/web', ready = false, status = '2/3', ports = { 8080 } },
        { kind = 'Service', name = 'web', target = 'service/web', status = 'ClusterIP', ports = { 80, 443 } },
        { kind = 'Namespace', name = 'kube-system' },
      },
    }
    local labels = {}
    for _, i in ipairs(kk.target_items(answer, 'exec')) do
      table.insert(labels, i.label)
    end
    local ports = {}
    for _, i in ipairs(kk.port_items(answer.items[3])) do
      table.insert(ports, i.ports and table.concat(i.ports, ' ') or 'other')
    end
    check(
      'pick_items',
      vim.deep_equal(labels, { 'pod/api-0   CrashLoopBackOff, not ready   containers api,envoy', 'deployment/web   2/3 ready   port 8080', 'type a name…' })
        and #kk.target_items(answer, 'port_forward') == 4
        and vim.deep_equal(ports, { ':80', ':443', ':80 :443', 'other' })
        and vim.deep_equal(kk.item_target(answer.items[2], answer), { workload = 'deployment/web', namespace = 'shop' })
        and vim.deep_equal(kk.namespaces_of(answer), { 'kube-system' }),
      vim.inspect({ labels, ports })
    )
  end
  -- the helpers the commands parse with
  local k8s = require('ktl.k8s')
  local line = k8s.parse_target_line('deploy/web -n shop -c app -- sh -c "ls /"')
  local spec = k8s.port_forward_spec('--namespace=shop svc/web 8080:80,:443')
  check(
    'parsing',
    vim.deep_equal(line, { target = 'deploy/web', namespace = 'shop', container = 'app', rest = {}, command = { 'sh', '-c', 'ls /' } })
      and vim.deep_equal(spec, { service = 'web', namespace = 'shop', ports = { '8080:80', ':443' } })
      and vim.deep_equal(k8s.parse_target('po/web-0'), { pod = 'web-0' })
      and select(2, k8s.port_forward_spec('svc/web')) ~= nil
      and select(2, k8s.parse_ports({ '80:http' })) ~= nil,
    vim.inspect({ line, spec })
  )

  -- a Render lens (ktl.helm.render): the manifests in a read-only scratch buffer
  local chart = os.getenv('KTL_CHART')
  if chart then
    local helm = require('ktl.helm')
    vim.lsp.commands['ktl.helm.render']({ command = 'ktl.helm.render', arguments = { { uri = vim.uri_from_fname(chart .. '/Chart.yaml') } } })
    local shown = vim.wait(20000, function()
      return helm.last_buf ~= nil
    end, 50)
    local buf = helm.last_buf
    local text = buf and buf_text(buf) or table.concat(notes, ' | ')
    check(
      'helm_render',
      shown
        and vim.bo[buf].buftype == 'nofile'
        and vim.bo[buf].filetype == 'yaml'
        and not vim.bo[buf].modifiable
        and vim.api.nvim_buf_get_name(buf):find('ktl://render/chart (values.yaml)', 1, true) ~= nil
        and text:find('# Source: templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: release-name', 1, true) ~= nil,
      (buf and vim.api.nvim_buf_get_name(buf) or '') .. '\n' .. text
    )
  end

  -- 18. :KtlCluster: the explorer's tree from ktl/resources, against the loopback cluster
  -- (pick: staging, the same API server). A Deployment appears with its pod, scales (the tree
  -- follows without moving the cursor), is described, and goes after a confirmed delete.
  do
    local cl = require('ktl.cluster')
    local dir = vim.fn.tempname()
    vim.fn.mkdir(dir, 'p')
    local demo = dir .. '/explorer-demo.yaml'
    vim.fn.writefile({
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: {name: explorer-demo, namespace: default}',
      'spec:',
      '  replicas: 1',
      '  selector: {matchLabels: {app: explorer-demo}}',
      '  template:',
      '    metadata: {labels: {app: explorer-demo}}',
      '    spec: {containers: [{name: app, image: busybox}]}',
    }, demo)
    local _, aerr, applied = exec_sync(ktl, 'ktl.apply', { uri = vim.uri_from_fname(demo) }, 20000)
    vim.cmd('KtlCluster')
    local cbuf = cl.buf
    local function line_of(text)
      for i, l in ipairs(vim.api.nvim_buf_get_lines(cbuf, 0, -1, false)) do
        if l:find(text, 1, true) then
          return i, l
        end
      end
    end
    local appeared = vim.wait(20000, function()
      return line_of('explorer-demo') ~= nil and line_of('web-1') ~= nil
    end, 50)
    check('cluster_tree', appeared and aerr == nil and vim.bo[cbuf].filetype == 'ktlcluster' and vim.wo.foldmethod == 'indent' and line_of('staging  (context)') ~= nil,
      vim.inspect({ aerr = aerr, applied = applied and applied.state, text = buf_text(cbuf) }))
    -- <CR> on the Deployment shows its pod under it
    local row = line_of('explorer-demo')
    if row then
      vim.api.nvim_win_set_cursor(0, { row, 0 })
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<CR>', true, false, true), 'x', false)
    end
    local expanded = vim.wait(10000, function()
      local _, pod_line = line_of('explorer-demo-')
      return pod_line ~= nil and pod_line:match('^%s+') and #pod_line:match('^%s+') > 6
    end, 50)
    check('cluster_expand', expanded, buf_text(cbuf))
    -- a scale: the line follows, the cursor stays on the Deployment
    local _, serr = exec_sync(ktl, 'ktl.k8s.scale', { kind = 'Deployment', name = 'explorer-demo', namespace = 'default', replicas = 2 }, 20000)
    local scaled = vim.wait(20000, function()
      local _, l = line_of('✓ explorer-demo  2/2')
      return l ~= nil
    end, 50)
    local cursor_line = vim.api.nvim_get_current_line()
    check('cluster_update_keeps_cursor', serr == nil and scaled and cursor_line:find('explorer-demo  ', 1, true) ~= nil and not cursor_line:find('explorer-demo-', 1, true),
      vim.inspect({ serr = serr, cursor = cursor_line, text = buf_text(cbuf) }))
    -- d: describe web-1 in a scratch buffer
    row = line_of('web-1')
    vim.api.nvim_win_set_cursor(0, { row, 0 })
    vim.api.nvim_feedkeys('d', 'x', false)
    local described = vim.wait(10000, function()
      return vim.bo.filetype == 'ktldescribe' and buf_text(0):find('Name:         web-1', 1, true) ~= nil
    end, 50)
    check('cluster_describe', described, buf_text(0):sub(1, 300))
    vim.cmd('close')
    vim.api.nvim_set_current_win(vim.fn.bufwinid(cbuf))
    -- D: a confirmation naming the object and the context, then it goes
    local real_confirm = vim.fn.confirm
    local asked = {}
    vim.fn.confirm = function(msg)
      table.insert(asked, msg)
      return 1
    end
    row = line_of('explorer-demo')
    vim.api.nvim_win_set_cursor(0, { row, 0 })
    vim.api.nvim_feedkeys('D', 'x', false)
    local gone = vim.wait(20000, function()
      return line_of('explorer-demo') == nil
    end, 50)
    vim.fn.confirm = real_confirm
    check('cluster_delete', gone and asked[1] == 'Delete Deployment explorer-demo in namespace default from context staging?', vim.inspect({ asked = asked, text = buf_text(cbuf) }))
    vim.cmd('close')
  end

  -- 9. :help ktl (KTL_DOC_RTP: a copy of the plugin where helptags may write doc/tags)
  local doc_rtp = os.getenv('KTL_DOC_RTP')
  if doc_rtp then
    vim.opt.rtp:prepend(doc_rtp)
    vim.cmd('helptags ' .. vim.fn.fnameescape(doc_rtp .. '/doc'))
    local okhelp, e = pcall(vim.cmd, 'help ktl')
    local okrun = pcall(vim.cmd, 'help :KtlRun')
    check('help', okhelp and okrun and vim.bo.filetype == 'help' and vim.fn.expand('%:t') == 'ktl.txt', e)
    local missing = {}
    for _, tag in ipairs({ ':KtlContext', ':KtlNamespace', ':KtlExec', ':KtlPortForward', ':KtlForwards', ':KtlCluster', 'ktl-statusline', 'ktl-pickers', 'ktl-features', 'ktl-yamlls' }) do
      if not pcall(vim.cmd, 'help ' .. tag) then
        table.insert(missing, tag)
      end
    end
    check('help_k8s', #missing == 0, table.concat(missing, ' '))
    -- every *tag* the file defines reaches the tags file (0.10+ skips tags inside an example)
    local indexed = {}
    for _, l in ipairs(vim.fn.readfile(doc_rtp .. '/doc/tags')) do
      indexed[vim.split(l, '\t')[1]] = true
    end
    local unindexed = {}
    for tag in table.concat(vim.fn.readfile(doc_rtp .. '/doc/ktl.txt'), '\n'):gmatch('%*([^%*%s|]+)%*') do
      if not indexed[tag] then
        table.insert(unindexed, tag)
      end
    end
    check('help_tags', #unindexed == 0, table.concat(unindexed, ' '))
  end
end)
harness.finish(ok, failure)
