import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { Block, blockItem, BlocksModel } from "../../src/core/blocks";
import { COMMANDS, CommandContext, Ui } from "../../src/core/commands";
import { compareDocument } from "../../src/core/commands/compare";
import { uriArg } from "../../src/core/commands/context";
import { exportFileName } from "../../src/core/commands/exports";
import { planSummary } from "../../src/core/commands/plans";
import { SessionRouter } from "../../src/core/router";
import {
  AGENT_TOKEN_SECRET,
  contextKey,
  contextKeys,
  initializationOptions,
  needsRestart,
  resolveServer,
  RestartPolicy,
  SERVER_SETTINGS,
  settingsToInitializationOptions,
} from "../../src/core/server";
import { formatDuration, loadChildren, sessionItem, SessionsModel, statusText } from "../../src/core/sessions";
import { SessionTerminal } from "../../src/core/terminal";
import { Exec, Session } from "../../src/core/types";
import { fakeExec } from "../support/fakes";

const ROOT = path.resolve(__dirname, "..", "..", "..");


const tick = () => new Promise((r) => setTimeout(r, 0));

function session(id: string, state: Session["state"] = "running", extra: Partial<Session> = {}): Session {
  return { sessionId: id, kind: "pty", title: `t-${id}`, state, createdAt: "2026-01-01T00:00:00Z", lastSeq: 0, ...extra };
}

test("router keeps data that arrives before anyone subscribes, then replays it", () => {
  const r = new SessionRouter();
  r.onData({ sessionId: "a", seq: 1, data: "early " });
  r.onState({ sessionId: "a", state: "done", exitCode: 0 });
  const got: string[] = [];
  r.subscribe("a", { data: (p) => got.push(p.data), state: (p) => got.push(`[${p.state}]`) });
  r.onData({ sessionId: "b", seq: 1, data: "other" });
  assert.deepEqual(got, ["early ", "[done]"]);
  assert.equal(r.pendingCount(), 1);
});

test("router unsubscribe stops delivery; any-state listeners see everything", () => {
  const r = new SessionRouter();
  const got: string[] = [];
  const states: string[] = [];
  r.onAnyState((p) => states.push(`${p.sessionId}:${p.state}`));
  const off = r.subscribe("a", { data: (p) => got.push(p.data), state: () => undefined });
  r.onData({ sessionId: "a", seq: 1, data: "x" });
  off();
  r.onData({ sessionId: "a", seq: 2, data: "y" });
  r.onState({ sessionId: "a", state: "done" });
  assert.deepEqual(got, ["x"]);
  assert.deepEqual(states, ["a:done"]);
});

test("terminal runs detached with the terminal's size, streams, sends input, and ends", async () => {
  const r = new SessionRouter();
  const { exec, calls } = fakeExec({ "ktl.run": () => ({ sessionId: "s1", state: "running" }) });
  const t = new SessionTerminal({ exec, router: r, run: { command: "echo hi" }, confirm: async () => true, resizeDebounceMs: 1 });
  const out: string[] = [];
  t.onDidWrite((d) => out.push(d));
  t.handleInput("queued");
  t.open({ columns: 100, rows: 20 });
  r.onData({ sessionId: "s1", seq: 1, data: "before the answer\r\n" });
  assert.equal(await t.started, "s1");
  assert.deepEqual(calls[0], { command: "ktl.run", args: { command: "echo hi", detach: true, cols: 100, rows: 20 } });
  assert.deepEqual(calls[1], { command: "ktl.session.input", args: { sessionId: "s1", data: "queued" } });
  r.onData({ sessionId: "s1", seq: 2, data: "hi\r\n" });
  t.handleInput("x");
  t.setDimensions({ columns: 80, rows: 24 });
  await new Promise((res) => setTimeout(res, 20));
  assert.ok(calls.some((c) => c.command === "ktl.session.resize" && c.args.cols === 80 && c.args.rows === 24));
  assert.ok(calls.some((c) => c.command === "ktl.session.input" && c.args.data === "x"));
  r.onState({ sessionId: "s1", state: "done", exitCode: 0 });
  assert.equal(out.join(""), "before the answer\r\nhi\r\n\r\n\x1b[2m[ktl] session done (exit 0)\x1b[0m\r\n");
  t.handleInput("late");
  assert.ok(!calls.some((c) => c.args.data === "late"), "no input after the end");
  await t.close();
  assert.ok(!calls.some((c) => c.command === "ktl.session.cancel"), "an ended session is not cancelled");
});

test("closing a running terminal asks, and cancels only on yes", async () => {
  for (const answer of [true, false]) {
    const r = new SessionRouter();
    const { exec, calls } = fakeExec({ "ktl.run": () => ({ sessionId: "s2", state: "running" }) });
    const asked: string[] = [];
    const t = new SessionTerminal({ exec, router: r, run: { command: "sleep 9" }, confirm: async (m) => (asked.push(m), answer) });
    t.open(undefined);
    await t.started;
    await t.close();
    assert.equal(asked.length, 1);
    assert.equal(calls.some((c) => c.command === "ktl.session.cancel"), answer);
  }
});

test("attaching writes recorded output, then only newer live data", async () => {
  const r = new SessionRouter();
  let release!: () => void;
  const gate = new Promise<void>((res) => (release = res));
  const { exec } = fakeExec({
    "ktl.session.output": async () => {
      await gate;
      return { frames: [{ seq: 1, type: "output", data: "one " }, { seq: 2, type: "input", data: "x" }, { seq: 3, type: "output", data: "two " }], lastSeq: 3 };
    },
  });
  const t = new SessionTerminal({ exec, router: r, attach: session("s3"), confirm: async () => false });
  const out: string[] = [];
  t.onDidWrite((d) => out.push(d));
  t.open(undefined);
  r.onData({ sessionId: "s3", seq: 3, data: "two " }); // already in the backfill
  r.onData({ sessionId: "s3", seq: 4, data: "three " });
  release();
  await tick();
  await tick();
  r.onData({ sessionId: "s3", seq: 5, data: "four" });
  assert.equal(out.join(""), "one two three four");
});

test("a failed start is shown in the terminal", async () => {
  const r = new SessionRouter();
  const exec = (async () => {
    throw new Error("field 'command': must not be empty");
  }) as Exec;
  const t = new SessionTerminal({ exec, router: r, run: { command: " " }, confirm: async () => true });
  const out: string[] = [];
  t.onDidWrite((d) => out.push(d));
  t.open(undefined);
  await assert.rejects(t.started);
  assert.match(out.join(""), /could not start: field 'command'/);
});

test("the Cluster view's own watches are not counted as running work", () => {
  const m = new SessionsModel();
  const watch = session("w", "running", { kind: "k8s", meta: { command: "ktl watch" } });
  const apply = session("x", "running", { kind: "k8s", meta: { command: "ktl apply" } });
  m.replace([watch, apply]);
  assert.equal(m.runningCount(), 1);
});

test("a list answered after a state notification does not bring back the old state", () => {
  const m = new SessionsModel();
  m.replace([session("a")]);
  m.listing(); // ktl.sessions.list sent
  m.applyState({ sessionId: "a", state: "cancelled", exitCode: 130 }); // heard before its answer
  m.replace([session("a", "running")]); // the answer, computed before the cancel
  assert.equal(m.get("a")!.state, "cancelled");
  assert.equal(m.runningCount(), 0);
  // a later list is taken as it is
  m.listing();
  m.replace([session("a", "done")]);
  assert.equal(m.get("a")!.state, "done");
});

test("sessions model, tree items and status text", () => {
  const m = new SessionsModel();
  m.replace([session("a"), session("b", "error", { exitCode: 2, endedAt: "2026-01-01T00:01:05Z" })]);
  assert.equal(m.runningCount(), 1);
  assert.equal(m.applyState({ sessionId: "a", state: "cancelled", exitCode: 130 }), false);
  assert.equal(m.applyState({ sessionId: "zzz", state: "running" }), true);
  assert.equal(m.runningCount(), 0);
  const b = sessionItem(m.get("b")!);
  assert.equal(b.icon, "error");
  assert.equal(b.description, "error · 1m05s · exit 2");
  assert.equal(b.contextValue, "ktlSession ended");
  assert.equal(sessionItem(session("c")).contextValue, "ktlSession running");
  const meta = { imported: { from: "ci.ktlbundle" } };
  const imported = sessionItem(session("d", "interrupted", { meta, endedAt: "2026-01-01T00:00:02Z" }));
  assert.equal(imported.description, "interrupted · 2.0s · imported");
  assert.equal(imported.contextValue, "ktlSession ended imported");
  assert.equal(statusText(2), "$(terminal) ktl: 2 running");
  assert.equal(formatDuration(1500), "1.5s");
  assert.equal(formatDuration(42), "42ms");
});

test("server command: setting, then PATH, then python -m ktl_lsp", () => {
  assert.deepEqual(resolveServer({ path: "/x/ktl-lsp", store: "/tmp/s.db" }, () => "/usr/bin/ktl-lsp"), {
    command: "/x/ktl-lsp",
    args: ["--store", "/tmp/s.db"],
  });
  assert.deepEqual(resolveServer({}, () => "/usr/bin/ktl-lsp"), { command: "/usr/bin/ktl-lsp", args: [] });
  assert.deepEqual(resolveServer({ python: "/venv/bin/python", args: ["--log-file", "f"] }, () => undefined), {
    command: "/venv/bin/python",
    args: ["-m", "ktl_lsp", "--log-file", "f"],
  });
  assert.deepEqual(initializationOptions({ sessionData: false, x: 1 }), { x: 1, sessionData: true, resources: true });
});

test("restart policy backs off and gives up", () => {
  const p = new RestartPolicy(100, 3, 1000);
  assert.deepEqual([p.onCrash(0), p.onCrash(1), p.onCrash(2), p.onCrash(3)], [100, 200, 400, undefined]);
  assert.equal(p.onCrash(5000), 100, "old crashes are forgotten");
});

test("context keys follow the advertised commands", () => {
  const keys = contextKeys(["ktl.run", "ktl.session.replay"]);
  assert.equal(keys[contextKey("ktl.session.replay")], true);
  assert.equal(keys[contextKey("ktl.apply")], false);
  assert.equal(contextKey("ktl.sessions.diff"), "ktl.server.has.sessions_diff");
});

function fakeUi(over: Partial<Ui> = {}): Ui & { infos: string[]; opened: unknown[] } {
  const infos: string[] = [];
  const opened: unknown[] = [];
  return {
    infos,
    opened,
    input: async () => undefined,
    pick: async (items) => items[0],
    info: (m) => infos.push(m),
    error: (m) => infos.push(`error: ${m}`),
    showDocument: async () => undefined,
    showReadOnly: async () => undefined,
    openTerminal: (a) => opened.push(a),
    copy: async () => undefined,
    openExternal: () => undefined,
    activeUri: () => undefined,
    saveUri: async () => undefined,
    refreshSessions: () => undefined,
    confirm: async () => true,
    storeSecret: async () => undefined,
    restartServer: async () => undefined,
    ask: async () => undefined,
    k8sSelection: () => undefined,
    k8sChanged: async () => undefined,
    ...over,
  };
}

test("commands: cancel picks a running session, run prompts for a command", async () => {
  const { exec, calls } = fakeExec({
    "ktl.sessions.list": () => ({ sessions: [session("r1")] }),
    "ktl.session.cancel": (a) => ({ sessionId: a.sessionId, state: "cancelled", exitCode: 130 }),
  });
  const ui = fakeUi({ input: async () => "make test" });
  const ctx: CommandContext = { ui, exec };
  const byId = (id: string) => COMMANDS.find((c) => c.id === id)!;
  await byId("ktl.ui.session.cancel").run(ctx);
  assert.deepEqual(calls[0], { command: "ktl.sessions.list", args: { state: "running", limit: 200 } });
  assert.deepEqual(calls[1], { command: "ktl.session.cancel", args: { sessionId: "r1" } });
  assert.deepEqual(ui.infos, ["ktl cancel: cancelled (exit 130)"]);
  await byId("ktl.ui.run").run(ctx);
  assert.deepEqual(ui.opened, [{ run: { command: "make test", title: "make test" }, title: "ktl: make test" }]);
  // a tree item's session is used as is
  await byId("ktl.ui.session.signal").run(ctx, session("t1"));
  assert.deepEqual(calls.at(-1), { command: "ktl.session.signal", args: { sessionId: "t1", signal: "INT" } });
});

test("package.json contributes every command, gated ones behind the server's context keys", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
  const contributed = new Map<string, { enablement?: string }>(pkg.contributes.commands.map((c: { command: string }) => [c.command, c]));
  const palette = new Map<string, string>(pkg.contributes.menus.commandPalette.map((m: { command: string; when: string }) => [m.command, m.when]));
  for (const c of COMMANDS) {
    assert.ok(contributed.has(c.id), `${c.id} contributed`);
    if (c.gated) {
      assert.equal(contributed.get(c.id)?.enablement, contextKey(c.server));
      assert.match(palette.get(c.id) ?? "", new RegExp(contextKey(c.server).replace(/\./g, "\\.")));
    }
  }
  // every session command of the server has a UI command
  for (const s of ["ktl.run", "ktl.session.input", "ktl.session.resize", "ktl.session.signal", "ktl.session.cancel", "ktl.session.wait", "ktl.session.get", "ktl.session.output", "ktl.sessions.list"]) {
    assert.ok(COMMANDS.some((c) => c.server === s && !c.gated), s);
  }
  assert.equal(pkg.main, "./dist/extension.js");
});

const byId = (id: string) => COMMANDS.find((c) => c.id === id)!;

test("settings become initializationOptions: nested, unset ones left to the server, token from SecretStorage", () => {
  const values: Record<string, unknown> = {
    logMessageLimit: 1024,
    k8sVersion: "",
    "retention.maxSessions": 10,
    "retention.maxAgeDays": null,
    "gateway.enabled": false,
    "gateway.port": 8099,
    "agent.url": "https://agent.example:8081",
  };
  const opts = settingsToInitializationOptions((k) => values[k], "s3cret", { retention: { intervalS: 0 }, sessionData: false, other: 1 });
  assert.deepEqual(opts, {
    other: 1,
    logMessageLimit: 1024,
    retention: { intervalS: 0, maxSessions: 10 },
    gateway: { enabled: false, port: 8099 },
    agent: { url: "https://agent.example:8081", token: "s3cret" },
    sessionData: true,
    resources: true,
  });
  assert.deepEqual(settingsToInitializationOptions(() => undefined), { sessionData: true, resources: true });
  assert.equal(AGENT_TOKEN_SECRET, "ktl.agent.token");
  assert.ok(needsRestart((s) => s === "ktl.retention"));
  assert.ok(needsRestart((s) => s === "ktl.agent"));
  assert.ok(!needsRestart((s) => s === "ktl.sessions"));
  assert.ok(needsRestart((s) => s === "ktl.sessions.persist"));
});

test("package.json contributes a setting for every server setting, none for the token", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
  const props = pkg.contributes.configuration.properties as Record<string, unknown>;
  for (const key of SERVER_SETTINGS) assert.ok(`ktl.${key}` in props, key);
  assert.ok(!("ktl.agent.token" in props), "the token lives in SecretStorage");
  assert.ok(pkg.contributes.commands.some((c: { command: string }) => c.command === "ktl.ui.agent.setToken"));
});

test("plans expand to their nodes; children stay out of the top level", async () => {
  const m = new SessionsModel();
  const plan = session("p", "running", { kind: "plan", title: "plan ci" });
  const build = session("c1", "done", { parentId: "p", meta: { node: "build" }, title: "echo built", createdAt: "2026-01-01T00:00:01Z" });
  const test2 = session("c2", "running", { parentId: "p", meta: { node: "test" }, createdAt: "2026-01-01T00:00:02Z" });
  const orphan = session("c9", "done", { parentId: "gone" });
  m.replace([test2, build, plan, orphan]);
  assert.deepEqual(m.roots().map((s) => s.sessionId), ["p", "c9"]);
  assert.deepEqual(m.children("p").map((s) => s.sessionId), ["c1", "c2"], "fallback: from the list, oldest first");
  const { exec, calls } = fakeExec({ "ktl.sessions.list": () => ({ sessions: [test2, build] }) });
  const kids = await loadChildren(exec, m, "p");
  assert.deepEqual(calls[0], { command: "ktl.sessions.list", args: { parentId: "p", limit: 500, remote: false } });
  assert.deepEqual(kids.map((s) => s.sessionId), ["c1", "c2"]);
  const p = sessionItem(plan);
  assert.equal(p.collapsible, true);
  assert.equal(p.contextValue, "ktlSession running plan");
  const b = sessionItem(build);
  assert.equal(b.label, "build: echo built");
  assert.equal(b.contextValue, "ktlSession ended node");
  assert.equal(b.collapsible, false);
  assert.equal(m.runningCount(), 2);
  // children survive a refresh of the top level and still get state updates
  m.replace([plan]);
  assert.equal(m.applyState({ sessionId: "c2", state: "done", exitCode: 0 }), false);
  assert.deepEqual(m.children("p").map((s) => s.state), ["done", "done"]);
  // a server without the parentId filter: the children already listed
  const failing = (async () => {
    throw new Error("InvalidParams: unknown field 'parentId'");
  }) as Exec;
  const m2 = new SessionsModel();
  m2.replace([plan, build]);
  assert.deepEqual((await loadChildren(failing, m2, "p")).map((s) => s.sessionId), ["c1"]);
  assert.equal(statusText(1, { context: "kind-dev", namespace: "web" }), "$(terminal) ktl: 1 running $(cloud) kind-dev/web");
  assert.equal(sessionItem(session("r", "done", { pinned: true, remote: true })).contextValue, "ktlSession ended pinned remote");
});

test("replay opens the server's one-time link in the browser", async () => {
  const opened: string[] = [];
  const { exec, calls } = fakeExec({ "ktl.session.replay": (a) => ({ url: `http://127.0.0.1:1/ui/#${String(a.sessionId)}` }) });
  await byId("ktl.ui.session.replay").run({ ui: fakeUi({ openExternal: (u) => opened.push(u) }), exec }, session("s1", "done"));
  assert.deepEqual(calls, [{ command: "ktl.session.replay", args: { sessionId: "s1" } }]);
  assert.deepEqual(opened, ["http://127.0.0.1:1/ui/#s1"]);
});

test("export asks a format and a file, and does nothing when the dialog is cancelled", async () => {
  const { exec, calls } = fakeExec({ "ktl.session.export": (a) => ({ path: a.path }) });
  const names: string[] = [];
  const ui = fakeUi({
    pick: async (items) => items.find((i) => i.label === "html") ?? items[0],
    saveUri: async (name) => (names.push(name), `/tmp/out/${name}`),
  });
  const s = session("0123456789abcdef", "done", { title: "kubectl get pods -A" });
  await byId("ktl.ui.session.export").run({ ui, exec }, s);
  assert.deepEqual(names, ["kubectl-get-pods-a-01234567.html"]);
  assert.deepEqual(calls, [
    { command: "ktl.session.export", args: { sessionId: s.sessionId, format: "html", path: "/tmp/out/kubectl-get-pods-a-01234567.html" } },
  ]);
  assert.match(ui.infos[0], /exported 01234567 to \/tmp\/out\//);
  await byId("ktl.ui.session.export").run({ ui: fakeUi({ saveUri: async () => undefined }), exec }, s);
  assert.equal(calls.length, 1, "cancelled: no export");
  assert.equal(exportFileName(session("abcdefgh12345678", "done", { title: "" }), "asciicast"), "session-abcdefgh.cast");
});

test("pin toggles, delete confirms and refuses running sessions", async () => {
  const { exec, calls } = fakeExec({ "ktl.session.pin": (a) => ({ ...session(String(a.sessionId), "done"), pinned: a.pinned }) });
  let refreshed = 0;
  const ui = fakeUi({ refreshSessions: () => refreshed++ });
  await byId("ktl.ui.session.pin").run({ ui, exec }, session("a", "done"));
  await byId("ktl.ui.session.pin").run({ ui, exec }, session("b", "done", { pinned: true }));
  assert.deepEqual(
    calls.map((c) => c.args),
    [
      { sessionId: "a", pinned: true },
      { sessionId: "b", pinned: false },
    ],
  );
  assert.match(ui.infos[0], /^ktl: pinned/);
  assert.match(ui.infos[1], /^ktl: unpinned/);
  calls.length = 0;
  let asked = "";
  const no = fakeUi({ confirm: async (m) => ((asked = m), false) });
  await byId("ktl.ui.session.delete").run({ ui: no, exec }, session("d", "done"));
  assert.match(asked, /Delete the session/);
  await byId("ktl.ui.session.delete").run({ ui: no, exec }, session("r", "running"));
  assert.deepEqual(no.infos, ["error: ktl: t-r is running; cancel it first"]);
  await byId("ktl.ui.session.delete").run({ ui, exec }, session("d", "done"));
  assert.deepEqual(calls, [{ command: "ktl.session.delete", args: { sessionId: "d" } }]);
  assert.ok(refreshed >= 3);
});

test("compare: two selected sessions (older first), else two picks; a diff document with a header", async () => {
  const diff = {
    a: session("old", "done", { exitCode: 0 }),
    b: session("new", "error", { exitCode: 2 }),
    durationDeltaMs: 1500,
    exitCodes: [0, 2] as [number, number],
    outputDiff: "--- a\n+++ b\n@@ -1 +1 @@\n-ok\n+fail\n",
  };
  const { exec, calls } = fakeExec({
    "ktl.sessions.diff": () => diff,
    "ktl.sessions.list": () => ({ sessions: [session("x", "done"), session("y", "done")] }),
  });
  const docs: [string, string][] = [];
  const ui = fakeUi({ showDocument: async (c, l) => void docs.push([c, l]) });
  const older = session("old", "done", { createdAt: "2026-01-01T00:00:00Z" });
  const newer = session("new", "done", { createdAt: "2026-01-02T00:00:00Z" });
  await byId("ktl.ui.sessions.diff").run({ ui, exec }, newer, [newer, older]);
  assert.deepEqual(calls, [{ command: "ktl.sessions.diff", args: { a: "old", b: "new" } }]);
  assert.equal(docs[0][1], "diff");
  assert.match(docs[0][0], /# exit codes: 0 -> 2\n# duration: \+1\.5s \(b - a\)\n\n--- a\n\+\+\+ b/);
  calls.length = 0;
  // no multi-selection: the first from the tree item, the second picked among the others
  await byId("ktl.ui.sessions.diff").run({ ui, exec }, session("x", "done"), [session("x", "done")]);
  assert.deepEqual(calls.at(-1), { command: "ktl.sessions.diff", args: { a: "x", b: "y" } });
  assert.match(compareDocument({ ...diff, outputDiff: "", exitCodes: [0, 0], durationDeltaMs: -20 }), /0 -> 0 \(same\)\n# duration: -20ms[\s\S]*the output is the same/);
});

test("run plan: the active file (or the menu's URI), a live terminal on the plan, a summary at the end", async () => {
  const { exec, calls } = fakeExec({
    "ktl.plan.run": () => ({ sessionId: "p1", state: "running", nodes: [{ id: "build", state: "pending", attempts: 0 }] }),
    "ktl.session.get": () => session("p1", "running", { kind: "plan" }),
    "ktl.session.wait": () => ({ sessionId: "p1", state: "error", exitCode: 1, error: "1 failed of 2 nodes" }),
    "ktl.sessions.list": () => ({
      sessions: [session("c1", "done", { parentId: "p1", meta: { node: "build" } }), session("c2", "error", { parentId: "p1", meta: { node: "test" } })],
    }),
  });
  const ui = fakeUi({ activeUri: () => "file:///w/ci.plan.yaml" });
  await byId("ktl.ui.plan.run").run({ ui, exec });
  assert.deepEqual(calls[0], { command: "ktl.plan.run", args: { uri: "file:///w/ci.plan.yaml", detach: true } });
  assert.deepEqual(ui.opened, [{ attach: session("p1", "running", { kind: "plan" }), title: "ktl plan: ci.plan.yaml" }]);
  assert.deepEqual(ui.infos, ["error: ktl plan ci.plan.yaml: error (exit 1): 1 failed of 2 nodes · not done: test"]);
  const menuUri = { scheme: "file", path: "/w/stack.yaml", toString: () => "file:///w/stack.yaml" };
  assert.equal(uriArg({ ui, exec }, menuUri), "file:///w/stack.yaml");
  assert.equal(uriArg({ ui, exec }, undefined), "file:///w/ci.plan.yaml");
  const none = fakeUi();
  await byId("ktl.ui.plan.run").run({ ui: none, exec });
  assert.match(none.infos[0], /open a plan/);
  assert.equal(
    planSummary({ sessionId: "p", state: "done", exitCode: 0, nodes: [{ id: "a", state: "done", attempts: 1 }, { id: "b", state: "done", attempts: 1 }] }),
    "ktl plan: done (exit 0) · 2 done",
  );
});

test("cancel node targets the plan; set token stores the secret and restarts", async () => {
  const { exec, calls } = fakeExec();
  await byId("ktl.ui.plan.cancelNode").run({ ui: fakeUi(), exec }, session("c2", "running", { parentId: "p1", meta: { node: "test" } }));
  assert.deepEqual(calls, [{ command: "ktl.plan.cancelNode", args: { sessionId: "p1", node: "test" } }]);
  const stored: [string, string | undefined][] = [];
  let restarts = 0;
  let password: boolean | undefined;
  const answers = ["  tok-123 ", ""];
  const ui = fakeUi({
    input: async (_p, o) => ((password = o?.password), answers.shift()),
    storeSecret: async (k, v) => void stored.push([k, v]),
    restartServer: async () => void restarts++,
  });
  await byId("ktl.ui.agent.setToken").run({ ui, exec });
  await byId("ktl.ui.agent.setToken").run({ ui, exec });
  assert.equal(password, true);
  assert.deepEqual(stored, [
    ["ktl.agent.token", "tok-123"],
    ["ktl.agent.token", undefined],
  ]);
  assert.equal(restarts, 2);
});

test("opening a remote session attaches it first, then shows the local mirror", async () => {
  const { exec, calls } = fakeExec({
    "ktl.session.attach": () => ({ sessionId: "local1", state: "running" }),
    "ktl.session.get": (a) => session(String(a.sessionId), "running"),
  });
  const ui = fakeUi();
  await byId("ktl.ui.session.open").run({ ui, exec }, session("rem1", "running", { remote: true, title: "deploy" }));
  assert.deepEqual(calls.map((c) => c.command), ["ktl.session.attach", "ktl.session.get"]);
  assert.deepEqual(calls[0].args, { sessionId: "rem1", detach: true });
  assert.deepEqual(ui.opened, [{ attach: session("local1", "running"), title: "ktl: deploy (remote)" }]);
  const local = fakeExec();
  await byId("ktl.ui.session.open").run({ ui: fakeUi(), exec: local.exec }, session("l2", "done"));
  assert.deepEqual(local.calls, [], "a local session opens as is");
});

function block(index: number, extra: Partial<Block> = {}): Block {
  return { index, command: `cmd${index}`, startedAt: "2026-01-01T00:00:00Z", durationMs: 1500, fromSeq: index * 10, ...extra };
}

test("blocks: the view shows exit codes and durations, and ktl/block keeps a loaded shell current", () => {
  const done = { endedAt: "2026-01-01T00:00:02Z", toSeq: 5 };
  assert.equal(blockItem("s1", block(0, { ...done, exitCode: 0 })).icon, "pass");
  assert.equal(blockItem("s1", block(0, { ...done, exitCode: 2 })).description, "exit 2 · 1.5s");
  assert.equal(blockItem("s1", block(0, { ...done, exitCode: 2 })).icon, "error");
  // ended with its shell: exit code unknown
  assert.equal(blockItem("s1", block(0, done)).description, "exit ? · 1.5s");
  assert.equal(blockItem("s1", block(1)).icon, "sync~spin");
  assert.equal(blockItem("s1", block(1)).id, "s1#block1");
  const m = new BlocksModel();
  assert.equal(m.apply({ sessionId: "s1", ...block(0) }), false); // not loaded: nothing to update
  m.set("s1", [block(0)]);
  // ended while a load was under way: the load's answer, read before, does not undo it
  assert.equal(m.apply({ sessionId: "s2", ...block(1, { ...done, exitCode: 3 }) }), false);
  assert.deepEqual(
    m.set("s2", [block(0, { ...done, exitCode: 0 }), block(1)]).map((b) => [b.index, b.exitCode]),
    [
      [0, 0],
      [1, 3],
    ],
  );
  assert.equal(m.apply({ sessionId: "s1", ...block(0, { ...done, exitCode: 1 }) }), true);
  assert.equal(m.apply({ sessionId: "s1", ...block(1) }), true);
  assert.deepEqual(
    m.get("s1")?.map((b) => [b.index, b.exitCode]),
    [
      [0, 1],
      [1, undefined],
    ],
  );
});

test("block commands: copy, rerun in the shell or as a session, compare by SESSION#blockN, go to", async () => {
  const shell = session("sh1", "running", { kind: "shell" });
  const ended = { ...shell, state: "done" as const };
  const b0 = block(0, { endedAt: "2026-01-01T00:00:02Z", exitCode: 0 });
  const b1 = block(1, { endedAt: "2026-01-01T00:00:03Z", exitCode: 1 });
  const { exec, calls } = fakeExec({
    "ktl.block.output": (a) => ({ text: `out of ${String(a.block)}` }),
    "ktl.session.blocks": () => ({ blocks: [b0, b1] }),
    "ktl.block.rerun": () => ({ sessionId: "new1", state: "running" }),
    "ktl.session.get": () => session("new1"),
    "ktl.sessions.diff": (a) => ({ a: shell, b: shell, exitCodes: [0, 1], durationDeltaMs: 0, outputDiff: `${String(a.a)} ${String(a.b)}\n`, truncated: false }),
  });
  const copied: string[] = [];
  const shown: string[] = [];
  const ui = fakeUi({ copy: async (t) => void copied.push(t), showDocument: async (c) => void shown.push(c), showReadOnly: async (_n, c) => void shown.push(c) });
  await byId("ktl.ui.block.copy").run({ ui, exec }, { session: shell, block: b1 });
  assert.deepEqual(copied, ["out of 1"]);
  await byId("ktl.ui.block.rerun").run({ ui, exec }, { session: shell, block: b1 });
  assert.deepEqual(calls.at(-1), { command: "ktl.block.rerun", args: { sessionId: "sh1", block: 1, target: "shell" } });
  await byId("ktl.ui.block.rerun").run({ ui, exec }, { session: ended, block: b1 });
  assert.equal(calls.filter((c) => c.command === "ktl.block.rerun").at(-1)?.args.target, "run");
  assert.equal((ui.opened.at(-1) as { attach: Session }).attach.sessionId, "new1");
  // the second block is picked from the session's blocks (newest first: block 1)
  await byId("ktl.ui.block.compare").run({ ui, exec }, { session: shell, block: b0 });
  assert.ok(shown.at(-1)?.includes("sh1#block0 sh1#block1"));
  await byId("ktl.ui.block.goto").run({ ui, exec }, shell);
  assert.ok(shown.at(-1)?.startsWith("$ cmd1\nout of 1"));
  await byId("ktl.ui.shell").run({ ui, exec });
  assert.deepEqual(ui.opened.at(-1), { shell: {}, title: "ktl: shell" });
});
