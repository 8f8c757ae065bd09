/**
 * End to end: a Node client on vscode-jsonrpc / vscode-languageserver-protocol drives the real
 * Python server the way the extension does: same server resolution, initializationOptions and
 * the capabilities that matter (workDoneProgress, executeCommand, diagnostics, CodeLens), the
 * extension's SessionRouter + SessionTerminal for the live terminal.
 *
 * KTL_LSP: the server executable (default: ../../.venv/bin/ktl-lsp from the repository root).
 * KTL_TEST_KUBECONFIG: the kubeconfig the server gets (tests/editors/conftest.py: contexts "fake"
 * and "staging" on a loopback API server holding pod web-1 in namespace default, which exec and
 * port-forward reach); without it one with the same contexts is written here (no API server
 * behind it: the exec and port-forward tests skip, and fail under CI).
 */
import { strict as assert } from "node:assert";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { createMessageConnection, MessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import {
  ClientCapabilities,
  ExecuteCommandRequest,
  InitializeRequest,
  InitializeResult,
  InitializedNotification,
  LogMessageNotification,
  PublishDiagnosticsNotification,
  PublishDiagnosticsParams,
  ShutdownRequest,
  ExitNotification,
  WorkDoneProgressCreateRequest,
  DidOpenTextDocumentNotification,
  DidChangeTextDocumentNotification,
  CompletionRequest,
  CompletionResolveRequest,
  CompletionItem,
  CompletionItemKind,
  CompletionList,
  CodeActionRequest,
  CodeAction,
  Command,
  TextEdit,
  Diagnostic,
} from "vscode-languageserver-protocol";
import { ClusterModel, entryView, ResourcesParams } from "../../src/core/cluster";
import { SessionRouter } from "../../src/core/router";
import { httpGet } from "../support/http";
import { noCluster, testKubeconfig } from "../support/kubeconfig";
import { contextKey, contextKeys, GATED_COMMANDS, initializationOptions, resolveServer } from "../../src/core/server";
import { SessionTerminal } from "../../src/core/terminal";
import { compareDocument } from "../../src/core/commands/compare";
import {
  ContextsAnswer,
  contextPickItems,
  forwardsOf,
  itemTarget,
  k8sStatusOf,
  LIST_KINDS,
  ListAnswer,
  namespacePickItems,
  namespacesOf,
  PortForwardResult,
  portPickItems,
  targetPickItems,
  UseAnswer,
} from "../../src/core/k8s";
import { loadChildren, nodeOf, sessionItem, SessionsModel } from "../../src/core/sessions";
import { Exec, PlanResult, Session, SessionDataParams, SessionResult, SessionsDiff, SessionStateParams } from "../../src/core/types";

const REPO = path.resolve(__dirname, "..", "..", "..", "..", "..");

/** What vscode-languageclient 9 announces for the features the extension relies on. */
const CAPABILITIES: ClientCapabilities = {
  window: { workDoneProgress: true, showMessage: { messageActionItem: { additionalPropertiesSupport: true } }, showDocument: { support: true } },
  workspace: { executeCommand: { dynamicRegistration: true }, codeLens: { refreshSupport: true }, configuration: true, workspaceFolders: true },
  textDocument: {
    synchronization: { dynamicRegistration: true, didSave: true, willSave: true, willSaveWaitUntil: true },
    publishDiagnostics: { relatedInformation: true, versionSupport: false, codeDescriptionSupport: true, dataSupport: true, tagSupport: { valueSet: [1, 2] } },
    codeLens: { dynamicRegistration: true },
    completion: {
      dynamicRegistration: true,
      contextSupport: true,
      completionItem: {
        snippetSupport: true,
        commitCharactersSupport: true,
        documentationFormat: ["markdown", "plaintext"],
        deprecatedSupport: true,
        preselectSupport: true,
        tagSupport: { valueSet: [1] },
        insertReplaceSupport: true,
        resolveSupport: { properties: ["documentation", "detail", "additionalTextEdits"] },
        insertTextModeSupport: { valueSet: [1, 2] },
        labelDetailsSupport: true,
      },
      insertTextMode: 2,
      completionItemKind: { valueSet: Array.from({ length: 25 }, (_, i) => (i + 1) as CompletionItemKind) },
      completionList: { itemDefaults: ["commitCharacters", "editRange", "insertTextFormat", "insertTextMode", "data"] },
    },
    hover: { dynamicRegistration: true, contentFormat: ["markdown", "plaintext"] },
    codeAction: {
      dynamicRegistration: true,
      isPreferredSupport: true,
      disabledSupport: true,
      dataSupport: true,
      resolveSupport: { properties: ["edit"] },
      codeActionLiteralSupport: {
        codeActionKind: { valueSet: ["", "quickfix", "refactor", "refactor.extract", "refactor.inline", "refactor.rewrite", "source", "source.organizeImports"] },
      },
      honorsChangeAnnotations: false,
    },
  },
  general: { positionEncodings: ["utf-16"] },
};

let proc: ChildProcess;
let conn: MessageConnection;
let init: InitializeResult;
let tmp: string;
const router = new SessionRouter();
const logs: string[] = [];
const progressCreated: string[] = [];
const diagnostics = new Map<string, PublishDiagnosticsParams>();
const cluster = new ClusterModel();

const exec: Exec = async <T>(command: string, args: object = {}) =>
  (await conn.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args] })) as T;

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function untilAsync(what: string, fn: () => Promise<boolean>, timeoutMs = 30000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ktl-e2e-"));
  const server = resolveServer({ path: process.env.KTL_LSP || path.join(REPO, ".venv", "bin", "ktl-lsp"), store: path.join(tmp, "sessions.db") });
  proc = spawn(server.command, server.args, { cwd: tmp, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, XDG_STATE_HOME: tmp, KUBECONFIG: testKubeconfig(tmp) } });
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  proc.on("exit", (code) => {
    if (code && code !== 0) console.error(`ktl-lsp exited ${code}: ${stderr}`);
  });
  conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
  conn.onNotification("ktl/sessionData", (p: SessionDataParams) => router.onData(p));
  conn.onNotification("ktl/sessionState", (p: SessionStateParams) => router.onState(p));
  conn.onNotification(LogMessageNotification.type, (p) => logs.push(p.message));
  conn.onNotification(PublishDiagnosticsNotification.type, (p) => diagnostics.set(p.uri, p));
  conn.onNotification("$/progress", () => undefined);
  conn.onNotification("ktl/resources", (p: ResourcesParams) => cluster.apply(p));
  conn.onRequest(WorkDoneProgressCreateRequest.type, (p) => {
    progressCreated.push(String(p.token));
    return null;
  });
  conn.onRequest("workspace/configuration", (p: { items: unknown[] }) => p.items.map(() => null));
  conn.onRequest("client/registerCapability", () => null);
  conn.onRequest("workspace/codeLens/refresh", () => null);
  conn.onRequest("window/showMessageRequest", () => null);
  conn.listen();
  init = await conn.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    clientInfo: { name: "Visual Studio Code", version: "1.90.0" },
    rootUri: `file://${tmp}`,
    workspaceFolders: [{ uri: `file://${tmp}`, name: "e2e" }],
    capabilities: CAPABILITIES,
    initializationOptions: initializationOptions({}),
  });
  await conn.sendNotification(InitializedNotification.type, {});
});

after(async () => {
  try {
    await Promise.race([conn.sendRequest(ShutdownRequest.type), new Promise((r) => setTimeout(r, 3000))]);
    await conn.sendNotification(ExitNotification.type);
  } catch {
    // gone already
  }
  // the server exits after `exit`; kill it only if it has not within 3 s
  await Promise.race([new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once("exit", r))), new Promise((r) => setTimeout(r, 3000))]);
  conn.dispose();
  if (proc.exitCode === null) proc.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("the server advertises the session commands the extension uses", () => {
  const commands = init.capabilities.executeCommandProvider?.commands ?? [];
  for (const c of ["ktl.run", "ktl.session.input", "ktl.session.resize", "ktl.session.cancel", "ktl.session.output", "ktl.sessions.list"]) {
    assert.ok(commands.includes(c), c);
  }
  // keys the extension sets for `when` clauses are computable from the answer
  const keys = contextKeys(commands);
  assert.deepEqual(Object.keys(keys).sort(), GATED_COMMANDS.map(contextKey).sort());
  for (const c of GATED_COMMANDS) assert.equal(keys[contextKey(c)], true, `the server offers ${c}`);
});

test("a live terminal: run detached, stream sessionData, type into it, resize, end", async () => {
  const resized: unknown[] = [];
  // the server has resized the PTY once its answer to ktl.session.resize is here
  const execSeen: Exec = async <T>(command: string, args: object = {}) => {
    const answer = await exec<T>(command, args);
    if (command === "ktl.session.resize") resized.push(args);
    return answer;
  };
  const t = new SessionTerminal({
    exec: execSeen,
    router,
    run: { command: "printf 'hello from ktl\\n'; read line; echo \"got:$line\"; stty size", title: "e2e" },
    confirm: async () => true,
    resizeDebounceMs: 10,
  });
  let out = "";
  t.onDidWrite((d) => (out += d));
  const states: string[] = [];
  t.onDidChangeState((p) => states.push(p.state));
  t.open({ columns: 90, rows: 25 });
  const sid = await t.started;
  await until("hello", () => out.includes("hello from ktl"));
  t.setDimensions({ columns: 101, rows: 33 });
  await until("the resize applied", () => resized.some((a: any) => a.cols === 101 && a.rows === 33));
  t.handleInput("typed\r");
  await until("the session's end", () => states.includes("done"));
  assert.match(out, /got:typed/);
  assert.match(out, /33 101/, "stty size saw the resize");
  assert.match(out, /\[ktl\] session done \(exit 0\)/);
  const { sessions } = await exec<{ sessions: Session[] }>("ktl.sessions.list", {});
  assert.ok(sessions.some((s) => s.sessionId === sid && s.state === "done"));
  await t.close();
  t.dispose();
});

test("closing a running terminal cancels its session", async () => {
  const t = new SessionTerminal({ exec, router, run: { command: "echo started; sleep 60" }, confirm: async () => true });
  let out = "";
  t.onDidWrite((d) => (out += d));
  t.open({ columns: 80, rows: 24 });
  const sid = await t.started;
  await until("started", () => out.includes("started"));
  const finalState = new Promise<string>((resolve) => t.onDidChangeState((p) => p.state !== "running" && resolve(p.state)));
  await t.close();
  assert.equal(await finalState, "cancelled");
  const s = await exec<Session>("ktl.session.get", { sessionId: sid });
  assert.equal(s.state, "cancelled");
});

test("attaching to a recorded session shows its output", async () => {
  const { sessions } = await exec<{ sessions: Session[] }>("ktl.sessions.list", { state: "done" });
  const s = sessions[0];
  assert.ok(s);
  const t = new SessionTerminal({ exec, router, attach: s, confirm: async () => false });
  let out = "";
  t.onDidWrite((d) => (out += d));
  t.open(undefined);
  await until("recorded output", () => out.includes("[ktl] session done"));
  assert.match(out, /hello from ktl/);
  t.dispose();
});

test("diagnostics arrive for a broken manifest", async () => {
  assert.ok(init.capabilities.textDocumentSync, "the server takes documents");
  const file = path.join(tmp, "bad.yaml");
  const text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: [1, 2\n";
  fs.writeFileSync(file, text);
  const uri = `file://${file}`;
  await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: "yaml", version: 1, text } });
  const d = await until("diagnostics", () => ((diagnostics.get(uri)?.diagnostics.length ?? 0) > 0 ? diagnostics.get(uri) : undefined), 15000);
  assert.equal(d.diagnostics[0].source, "ktl");
  assert.equal(d.diagnostics[0].code, "yaml-syntax");
});

// The language features as VS Code asks for them (vscode-languageclient's capabilities above).

const DEPLOYMENT = ["apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: web", "spec:", "  replica: 3", "  template:", "    spec:", "      containers:", "      - name: web", "        image: nginx", ""].join("\n");

/** `edits` applied to `text` as an editor applies a WorkspaceEdit's TextEdits (UTF-16 positions). */
function applyEdits(text: string, edits: TextEdit[]): string {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") starts.push(i + 1);
  const offset = (p: { line: number; character: number }) => Math.min((starts[p.line] ?? text.length) + p.character, text.length);
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start));
  for (const e of sorted) text = text.slice(0, offset(e.range.start)) + e.newText + text.slice(offset(e.range.end));
  return text;
}

async function openManifest(name: string, text: string): Promise<string> {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  const uri = `file://${file}`;
  await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: "yaml", version: 1, text } });
  return uri;
}

test("completion: a container's keys (not the ones present), snippets, documentation on resolve", async () => {
  assert.ok(init.capabilities.completionProvider?.resolveProvider);
  const uri = await openManifest("complete.yaml", DEPLOYMENT);
  const answer = (await conn.sendRequest(CompletionRequest.type, {
    textDocument: { uri },
    position: { line: 10, character: 9 }, // on `image`
    context: { triggerKind: 1 },
  })) as CompletionList | CompletionItem[] | null;
  const items = Array.isArray(answer) ? answer : answer?.items ?? [];
  const labels = items.map((i) => i.label);
  assert.ok(labels.includes("imagePullPolicy") && labels.includes("ports"), labels.join(", "));
  assert.ok(!labels.includes("name"), "present keys are not offered again");
  const pull = items.find((i) => i.label === "imagePullPolicy")!;
  assert.ok(pull.textEdit && "range" in pull.textEdit, "an edit VS Code applies as is");
  const resolved = await conn.sendRequest(CompletionResolveRequest.type, pull);
  const doc = resolved.documentation;
  assert.ok(typeof doc === "object" && doc.kind === "markdown" && doc.value.includes("**imagePullPolicy**"), JSON.stringify(doc));
});

test("quick fix: the misspelled `replica:` becomes `replicas:` (WorkspaceEdit applied), and its diagnostic goes", async () => {
  const uri = await openManifest("fix.yaml", DEPLOYMENT);
  const misspelled = (d: Diagnostic) => d.message.includes('"spec.replica"');
  const published = await until("the unknown key", () => diagnostics.get(uri)?.diagnostics.find(misspelled), 15000);
  const actions = ((await conn.sendRequest(CodeActionRequest.type, {
    textDocument: { uri },
    range: published.range,
    context: { diagnostics: [published], only: ["quickfix"], triggerKind: 1 },
  })) ?? []) as (CodeAction | Command)[];
  const fix = actions.find((a): a is CodeAction => "kind" in a && a.kind === "quickfix" && a.isPreferred === true);
  assert.ok(fix, JSON.stringify(actions));
  assert.equal(fix.title, 'Change "replica" to "replicas"');
  assert.deepEqual(fix.diagnostics?.map((d) => d.message), [published.message]);
  const fixed = applyEdits(DEPLOYMENT, fix.edit!.changes![uri]);
  assert.equal(fixed, DEPLOYMENT.replace("  replica: 3", "  replicas: 3"));
  await conn.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version: 2 }, contentChanges: [{ text: fixed }] });
  await until("republished without it", () => diagnostics.get(uri)?.version === 2 && !diagnostics.get(uri)!.diagnostics.some(misspelled), 15000);
});

test("with sessionData on, log messages carry summaries, not the raw stream", () => {
  assert.ok(!logs.some((l) => l.includes("hello from ktl")), logs.join("\n"));
});

// The session store commands the Sessions view's context menu uses, against the real server.

async function recorded(command: string, state = "done"): Promise<Session> {
  const r = await exec<{ sessionId: string; state: string; replayUrl?: string }>("ktl.run", { command, title: command });
  assert.equal(r.state, state);
  return exec<Session>("ktl.session.get", { sessionId: r.sessionId });
}

test("replay: every SessionResult carries replayUrl; ktl.session.replay gives a one-time link", async () => {
  const r = await exec<{ sessionId: string; replayUrl?: string }>("ktl.run", { command: "echo replay-me" });
  assert.match(r.replayUrl ?? "", /^http:\/\/127\.0\.0\.1:\d+\//);
  const { url } = await exec<{ url: string }>("ktl.session.replay", { sessionId: r.sessionId });
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\//);
  assert.ok(url.includes(r.sessionId), url);
  // the link signs the browser in once (the editor hands it to openExternal)
  const res = await fetch(url, { redirect: "manual" });
  assert.ok(res.status >= 200 && res.status < 400, String(res.status));
});

test("export: asciicast, html and ndjson to the path the save dialog chose", async () => {
  const s = await recorded("printf 'exported line\\n'");
  for (const [format, check] of [
    ["asciicast", (t: string) => JSON.parse(t.split("\n")[0]).version === 2 && t.includes("exported line")],
    ["html", (t: string) => /<html/i.test(t)],
    ["ndjson", (t: string) => t.trim().split("\n").every((l) => typeof JSON.parse(l) === "object")],
  ] as const) {
    const target = path.join(tmp, `out.${format}`);
    const r = await exec<{ path: string }>("ktl.session.export", { sessionId: s.sessionId, format, path: target });
    assert.equal(r.path, target);
    assert.ok(check(fs.readFileSync(target, "utf8")), format);
  }
});

test("pin and unpin; pinned shows in the list", async () => {
  const s = await recorded("echo pin-me");
  const pinned = await exec<Session>("ktl.session.pin", { sessionId: s.sessionId, pinned: true });
  assert.equal(pinned.pinned, true);
  const { sessions } = await exec<{ sessions: Session[] }>("ktl.sessions.list", {});
  assert.equal(sessions.find((x) => x.sessionId === s.sessionId)?.pinned, true);
  const unpinned = await exec<Session>("ktl.session.pin", { sessionId: s.sessionId, pinned: false });
  assert.equal(unpinned.pinned, false);
});

test("compare two sessions: outputDiff, exit codes, the document the extension shows", async () => {
  const a = await recorded("echo same; echo before");
  const b = await recorded("echo same; echo after; exit 3", "error");
  const r = await exec<SessionsDiff>("ktl.sessions.diff", { a: a.sessionId, b: b.sessionId });
  assert.deepEqual(r.exitCodes, [0, 3]);
  assert.match(r.outputDiff, /^-before$/m);
  assert.match(r.outputDiff, /^\+after$/m);
  const doc = compareDocument(r);
  assert.match(doc, /# exit codes: 0 -> 3/);
  assert.match(doc, /^\+after$/m);
});

test("plan run: a plan session whose nodes are child sessions (parentId), shown under it", async () => {
  const file = path.join(tmp, "ci.plan.yaml");
  fs.writeFileSync(
    file,
    ["name: ci", "nodes:", "  - id: build", "    run: echo built", "  - id: test", "    run: echo tested; exit 2", "    deps: [build]", "  - id: ship", "    run: 'true'", "    deps: [test]", ""].join("\n"),
  );
  const started = await exec<PlanResult>("ktl.plan.run", { uri: `file://${file}`, detach: true });
  assert.equal(started.state, "running");
  const end = await exec<PlanResult>("ktl.session.wait", { sessionId: started.sessionId, timeoutS: 30 });
  assert.equal(end.state, "error");
  const model = new SessionsModel();
  model.replace((await exec<{ sessions: Session[] }>("ktl.sessions.list", {})).sessions);
  const plan = model.get(started.sessionId)!;
  assert.equal(plan.kind, "plan");
  assert.equal(sessionItem(plan).collapsible, true);
  assert.ok(model.roots().every((s) => s.parentId !== started.sessionId), "nodes are not at the top");
  const kids = await loadChildren(exec, model, started.sessionId);
  assert.deepEqual(
    kids.map((k) => [nodeOf(k), k.state]),
    [
      ["build", "done"],
      ["test", "error"],
    ],
    "ship was skipped: no session",
  );
  assert.match(sessionItem(kids[0]).contextValue, /node/);
  // the plan's own output is a terminal like any session's
  const out = await exec<{ frames: { type: string; data: string }[] }>("ktl.session.output", { sessionId: started.sessionId, plain: true });
  assert.ok(out.frames.length > 0);
});

test("kubernetes contexts: the status bar's text, the pickers' items, ktl.k8s.use and its reset", async () => {
  const commands = init.capabilities.executeCommandProvider?.commands ?? [];
  for (const c of ["ktl.k8s.contexts", "ktl.k8s.use"]) assert.ok(commands.includes(c), c);
  const first = await exec<ContextsAnswer>("ktl.k8s.contexts", {});
  assert.equal(first.current, "fake");
  assert.deepEqual(k8sStatusOf(first), { context: "fake", cluster: "fake", namespace: "default" });
  assert.deepEqual(
    contextPickItems(first).map((i) => [i.label, i.context]),
    [
      ["$(check) fake", "fake"],
      ["$(blank) staging", "staging"],
    ],
  );
  // what the context picker sends: another context, back to its own namespace
  assert.deepEqual(await exec<UseAnswer>("ktl.k8s.use", { context: "staging", namespace: "" }), { context: "staging", namespace: null });
  assert.deepEqual(await exec<UseAnswer>("ktl.k8s.use", { namespace: "shop" }), { context: "staging", namespace: "shop" });
  const picked = await exec<ContextsAnswer>("ktl.k8s.contexts", {});
  assert.deepEqual(k8sStatusOf(picked), { context: "staging", cluster: "staging", namespace: "shop" });
  assert.equal(contextPickItems(picked, { context: "staging" }).at(-1)?.context, "", "the reset item");
  assert.equal(namespacePickItems(picked).at(-1)?.namespace, "", "the namespace reset item");
  await assert.rejects(exec("ktl.k8s.use", { context: "nope" }), /field 'context'.*nope/);
  // the resets the pickers offer
  assert.deepEqual(await exec<UseAnswer>("ktl.k8s.use", { context: "", namespace: "" }), { context: null, namespace: null });
  assert.deepEqual(k8sStatusOf(await exec<ContextsAnswer>("ktl.k8s.contexts", {})), { context: "fake", cluster: "fake", namespace: "default" });
});

// Kubernetes exec and port-forward against the loopback cluster of the pytest side
// (tests/editors/conftest.py): pod web-1 in namespace default; an exec'd command is a real local
// process in a real terminal with HOSTNAME=web-1, and the pod answers HTTP on port 80 with
// header X-Pod: web-1.

test("kubernetes exec: a detached ktl.exec into pod web-1 streams sessionData, takes input, is cancelled", async (t) => {
  const why = noCluster();
  if (why) return t.skip(why);
  const started = await exec<SessionResult>("ktl.exec", {
    pod: "web-1",
    namespace: "default",
    command: ["sh", "-c", "echo hello-from-$HOSTNAME; exec sh"],
    cols: 80,
    rows: 24,
    detach: true,
  });
  assert.equal(started.state, "running", JSON.stringify(started));
  const sid = started.sessionId;
  let out = "";
  const seqs: number[] = [];
  const states: string[] = [];
  // ktl/sessionData (initializationOptions.sessionData: true), through the extension's router
  const unsubscribe = router.subscribe(sid, {
    data: (p) => {
      seqs.push(p.seq);
      out += p.data;
    },
    state: (p) => states.push(p.state),
  });
  try {
    await until("the command's output", () => out.includes("hello-from-web-1"), 30000);
    await exec("ktl.session.input", { sessionId: sid, data: "echo typed-$((2+3))\r" });
    await until("the typed command's output", () => out.includes("typed-5"), 30000);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      "sessionData in order",
    );
    const end = await exec<SessionResult>("ktl.session.cancel", { sessionId: sid });
    assert.equal(end.state, "cancelled", JSON.stringify(end));
    await until("ktl/sessionState cancelled", () => states.includes("cancelled"), 30000);
  } finally {
    unsubscribe();
  }
  const s = await exec<Session>("ktl.session.get", { sessionId: sid });
  assert.equal(s.kind, "exec");
  assert.equal(s.state, "cancelled");
  assert.equal(s.meta?.pod, "web-1");
  assert.equal(s.meta?.namespace, "default");
  const recorded = await exec<{ frames: { type: string; data: string }[] }>("ktl.session.output", { sessionId: sid, plain: true });
  const inputs = recorded.frames.filter((f) => f.type === "input").map((f) => f.data).join("");
  assert.ok(inputs.includes("echo typed-$((2+3))"), inputs);
  assert.ok(recorded.frames.some((f) => f.type === "output" && f.data.includes("typed-5")));
});

test("kubernetes exec: the extension's terminal (SessionTerminal execInto) on pod web-1: output, input, resize, close cancels", async (t) => {
  const why = noCluster();
  if (why) return t.skip(why);
  const term = new SessionTerminal({
    exec,
    router,
    execInto: { pod: "web-1", namespace: "default", command: ["sh", "-c", "echo term-in-$HOSTNAME; exec sh"] },
    confirm: async () => true,
    resizeDebounceMs: 10,
  });
  let out = "";
  term.onDidWrite((d) => (out += d));
  term.open({ columns: 90, rows: 25 });
  const sid = await term.started;
  try {
    await until("the command's output", () => out.includes("term-in-web-1"), 30000);
    term.handleInput("stty size\r");
    await until("the terminal's size inside the container", () => out.includes("25 90"), 30000);
    term.setDimensions({ columns: 101, rows: 33 });
    // the resize is debounced, then sent (and recorded): ask the shell once the server has it
    await untilAsync("the resize recorded", async () => {
      const o = await exec<{ frames: { type: string; data: string }[] }>("ktl.session.output", { sessionId: sid });
      return o.frames.some((f) => f.type === "resize" && f.data.includes("101") && f.data.includes("33"));
    });
    term.handleInput("stty size\r");
    await until("the resize inside the container", () => out.includes("33 101"), 30000);
    await term.close();
  } finally {
    term.dispose();
  }
  const s = await exec<SessionResult>("ktl.session.wait", { sessionId: sid, timeoutS: 30 });
  assert.equal(s.state, "cancelled", JSON.stringify(s));
});

test("kubernetes port-forward: ktl.portForward to pod web-1 port 80 answers over node:http, then is cancelled", async (t) => {
  const why = noCluster();
  if (why) return t.skip(why);
  const r = await exec<PortForwardResult>("ktl.portForward", { pod: "web-1", namespace: "default", ports: [":80"] });
  assert.equal(r.state, "running", JSON.stringify(r));
  const forwards = r.forwards ?? [];
  assert.equal(forwards.length, 1, JSON.stringify(r));
  const [f] = forwards;
  assert.equal(f.remote, 80);
  assert.equal(f.url, `http://127.0.0.1:${f.local}`);
  try {
    const answer = await httpGet(`${f.url}/`);
    assert.equal(answer.status, 200, answer.body);
    assert.equal(answer.headers["x-pod"], "web-1");
    assert.match(answer.body, /web-1/);
    // the running forward is listed with its URL (what the extension's Forwards pick shows)
    const { sessions } = await exec<{ sessions: Session[] }>("ktl.sessions.list", { kind: "port-forward", state: "running" });
    const listed = sessions.find((s) => s.sessionId === r.sessionId);
    assert.ok(listed, JSON.stringify(sessions));
    assert.deepEqual(forwardsOf(listed), [f]);
  } finally {
    const end = await exec<SessionResult>("ktl.session.cancel", { sessionId: r.sessionId });
    assert.equal(end.state, "cancelled", JSON.stringify(end));
  }
  // the local port is closed with the session
  await assert.rejects(httpGet(`${f.url}/`));
  const { sessions } = await exec<{ sessions: Session[] }>("ktl.sessions.list", { kind: "port-forward", state: "running" });
  assert.ok(!sessions.some((s) => s.sessionId === r.sessionId));
});

test("kubernetes list: ktl.k8s.list gives pod web-1 (target pod/web-1) and Service web (ports [80]) for the pickers", async (t) => {
  const why = noCluster();
  if (why) return t.skip(why);
  const commands = init.capabilities.executeCommandProvider?.commands ?? [];
  assert.ok(commands.includes("ktl.k8s.list"), "ktl.k8s.list advertised");
  // what the port-forward picker asks for (the namespace given: another test may have picked one)
  const r = await exec<ListAnswer>("ktl.k8s.list", { kinds: LIST_KINDS.portForward, namespace: "default" });
  assert.equal(r.context, "fake");
  assert.equal(r.namespace, "default");
  const pod = r.items.find((i) => i.kind === "Pod" && i.name === "web-1");
  assert.ok(pod, JSON.stringify(r.items));
  assert.equal(pod.target, "pod/web-1");
  assert.equal(pod.namespace, "default");
  assert.equal(pod.ready, true);
  assert.equal(pod.status, "Running");
  assert.deepEqual(pod.containers, ["app"]);
  const svc = r.items.find((i) => i.kind === "Service" && i.name === "web");
  assert.ok(svc, JSON.stringify(r.items));
  assert.equal(svc.target, "service/web");
  assert.deepEqual(svc.ports, [80]);
  // the quick picks built from it, and what the commands then send
  const labels = targetPickItems(r, "portForward").map((i) => i.label);
  assert.ok(labels.includes("$(vm) pod/web-1") && labels.includes("$(globe) service/web"), labels.join(", "));
  assert.equal(labels.at(-1), "$(edit) Type a name…");
  assert.deepEqual(itemTarget(pod, r), { pod: "web-1", namespace: "default" });
  assert.deepEqual(itemTarget(svc, r), { service: "web", namespace: "default" });
  assert.deepEqual(portPickItems(svc).map((p) => p.label), [":80", "$(edit) Other…"]);
  // exec's kinds: no Services
  const forExec = await exec<ListAnswer>("ktl.k8s.list", { kinds: LIST_KINDS.exec, namespace: "default" });
  assert.ok(!forExec.items.some((i) => i.kind === "Service"), JSON.stringify(forExec.items));
  assert.ok(targetPickItems(forExec, "exec").some((i) => i.item?.target === "pod/web-1"));
  // the namespace picker's list
  const ns = namespacesOf(await exec<ListAnswer>("ktl.k8s.list", { kinds: ["namespaces"] }));
  assert.ok(ns.includes("default") && ns.includes("kube-system"), ns.join(", "));
  // errors are JSON-RPC errors with a message (the pickers fall back to the input box)
  await assert.rejects(exec("ktl.k8s.list", { context: "nope" }), (e: Error) => /nope/.test(e.message));
  await assert.rejects(exec("ktl.k8s.list", { kinds: ["secrets"] }), /kinds/);
});

test("cluster explorer: ktl/resources builds the Cluster view; a Deployment appears with its pod, scales and goes", async (t) => {
  const why = noCluster();
  if (why) return t.skip(why);
  const w = await exec<{ watchId: string; context: string; state: string }>("ktl.k8s.watch", { namespace: "default", context: "fake" });
  assert.equal(w.state, "running");
  const labelsUnder = (kind: string): string[] => {
    const [ctx] = cluster.children().filter((e) => e.type === "context" && e.context === "fake");
    if (!ctx) return [];
    const ns = cluster.children(ctx).find((e) => e.type === "namespace" && e.namespace === "default");
    const k = ns && cluster.children(ns).find((e) => e.type === "kind" && e.kind === kind);
    return k ? cluster.children(k).map((e) => `${entryView(e).label} ${entryView(e).description}`) : [];
  };
  await until("pod web-1 in the tree", () => labelsUnder("Pod").some((l) => l.startsWith("web-1 1/1 · Running")));
  const manifest = path.join(tmp, "tree-demo.yaml");
  fs.writeFileSync(
    manifest,
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: tree-demo, namespace: default}\nspec:\n  replicas: 1\n" +
      "  selector: {matchLabels: {app: tree-demo}}\n  template:\n    metadata: {labels: {app: tree-demo}}\n" +
      "    spec: {containers: [{name: app, image: busybox}]}\n",
  );
  const applied = await exec<SessionResult>("ktl.apply", { uri: `file://${manifest}`, context: "fake" });
  assert.equal(applied.state, "done");
  await until("the Deployment, ready", () => labelsUnder("Deployment").some((l) => l.startsWith("tree-demo 1/1")));
  const [ctx] = cluster.children().filter((e) => e.type === "context" && e.context === "fake");
  const ns = cluster.children(ctx).find((e) => e.type === "namespace" && e.namespace === "default")!;
  const deployEntry = () => cluster.children(cluster.children(ns).find((e) => e.type === "kind" && e.kind === "Deployment")!).find((e) => e.type === "object" && e.node.name === "tree-demo");
  await until("its pod under it", () => {
    const d = deployEntry();
    return d && cluster.children(d).some((e) => e.type === "object" && e.node.kind === "Pod");
  });
  const scaled = await exec<SessionResult>("ktl.k8s.scale", { kind: "Deployment", name: "tree-demo", namespace: "default", context: "fake", replicas: 2 });
  assert.equal(scaled.state, "done");
  await until("scaled to 2/2", () => labelsUnder("Deployment").some((l) => l.startsWith("tree-demo 2/2")));
  const deleted = await exec<SessionResult>("ktl.k8s.delete", { kind: "Deployment", name: "tree-demo", namespace: "default", context: "fake" });
  assert.equal(deleted.state, "done");
  await until("gone", () => !labelsUnder("Deployment").some((l) => l.startsWith("tree-demo")) || undefined);
  await exec("ktl.session.cancel", { sessionId: w.watchId });
});
