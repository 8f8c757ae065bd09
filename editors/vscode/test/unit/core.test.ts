import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { COMMANDS, CommandContext, Ui } from "../../src/core/commands";
import { SessionRouter } from "../../src/core/router";
import { contextKey, contextKeys, initializationOptions, resolveServer, RestartPolicy } from "../../src/core/server";
import { formatDuration, sessionItem, SessionsModel, statusText } from "../../src/core/sessions";
import { SessionTerminal } from "../../src/core/terminal";
import { Exec, Session } from "../../src/core/types";

const ROOT = path.resolve(__dirname, "..", "..", "..");

type Call = { command: string; args: Record<string, unknown> };

function fakeExec(answers: Record<string, (args: Record<string, unknown>) => unknown> = {}): { exec: Exec; calls: Call[] } {
  const calls: Call[] = [];
  const exec = (async (command: string, args: object = {}) => {
    calls.push({ command, args: args as Record<string, unknown> });
    const fn = answers[command];
    return fn ? fn(args as Record<string, unknown>) : {};
  }) as Exec;
  return { exec, calls };
}

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
  assert.deepEqual(initializationOptions({ sessionData: false, x: 1 }), { x: 1, sessionData: true });
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
    openTerminal: (a) => opened.push(a),
    openExternal: () => undefined,
    activeUri: () => undefined,
    saveUri: async () => undefined,
    refreshSessions: () => undefined,
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
