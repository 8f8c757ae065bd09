/**
 * End to end: a Node client on vscode-jsonrpc / vscode-languageserver-protocol drives the real
 * Python server the way the extension does: same server resolution, initializationOptions and
 * the capabilities that matter (workDoneProgress, executeCommand, diagnostics, CodeLens), the
 * extension's SessionRouter + SessionTerminal for the live terminal.
 *
 * KTL_LSP: the server executable (default: ../../.venv/bin/ktl-lsp from the repository root).
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
} from "vscode-languageserver-protocol";
import { SessionRouter } from "../../src/core/router";
import { contextKeys, initializationOptions, resolveServer } from "../../src/core/server";
import { SessionTerminal } from "../../src/core/terminal";
import { compareDocument } from "../../src/core/commands";
import { loadChildren, nodeOf, sessionItem, SessionsModel } from "../../src/core/sessions";
import { Exec, PlanResult, Session, SessionDataParams, SessionsDiff, SessionStateParams } from "../../src/core/types";

const REPO = path.resolve(__dirname, "..", "..", "..", "..", "..");

/** What vscode-languageclient 9 announces for the features the extension relies on. */
const CAPABILITIES: ClientCapabilities = {
  window: { workDoneProgress: true, showMessage: { messageActionItem: { additionalPropertiesSupport: true } }, showDocument: { support: true } },
  workspace: { executeCommand: { dynamicRegistration: true }, codeLens: { refreshSupport: true }, configuration: true, workspaceFolders: true },
  textDocument: {
    synchronization: { dynamicRegistration: true, didSave: true, willSave: true, willSaveWaitUntil: true },
    publishDiagnostics: { relatedInformation: true, versionSupport: false, codeDescriptionSupport: true, dataSupport: true, tagSupport: { valueSet: [1, 2] } },
    codeLens: { dynamicRegistration: true },
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

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ktl-e2e-"));
  const server = resolveServer({ path: process.env.KTL_LSP || path.join(REPO, ".venv", "bin", "ktl-lsp"), store: path.join(tmp, "sessions.db") });
  proc = spawn(server.command, server.args, { cwd: tmp, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, XDG_STATE_HOME: tmp } });
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
  await new Promise((r) => setTimeout(r, 200));
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
  assert.equal(typeof contextKeys(commands)["ktl.server.has.apply"], "boolean");
});

test("a live terminal: run detached, stream sessionData, type into it, resize, end", async () => {
  const t = new SessionTerminal({
    exec,
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
  await new Promise((r) => setTimeout(r, 300));
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

test("diagnostics arrive for a broken manifest (when the server checks documents)", async (t) => {
  if (!init.capabilities.textDocumentSync) return t.skip("the server does not take documents yet");
  const file = path.join(tmp, "bad.yaml");
  const text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: [1, 2\n";
  fs.writeFileSync(file, text);
  const uri = `file://${file}`;
  await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: "yaml", version: 1, text } });
  const d = await until("diagnostics", () => ((diagnostics.get(uri)?.diagnostics.length ?? 0) > 0 ? diagnostics.get(uri) : undefined), 15000);
  assert.equal(d.diagnostics[0].source, "ktl");
  assert.equal(d.diagnostics[0].code, "yaml-syntax");
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
