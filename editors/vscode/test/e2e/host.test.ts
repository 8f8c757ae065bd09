/**
 * End to end: sessions that outlive the editor (`sessions.persist`). A window's server runs a
 * session in the session host and is killed (SIGKILL, as a crashed window's); a new server
 * lists it running, and the extension's SessionTerminal attached to it shows the screen as it
 * is now, then live output, and takes input.
 *
 * KTL_LSP: the server executable (default: ../../.venv/bin/ktl-lsp from the repository root).
 */
import { strict as assert } from "node:assert";
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { createMessageConnection, MessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import { ExecuteCommandRequest, InitializedNotification, InitializeRequest } from "vscode-languageserver-protocol";
import { SessionRouter } from "../../src/core/router";
import { initializationOptions, resolveServer } from "../../src/core/server";
import { ShownSessions } from "../../src/core/reopen";
import { SessionTerminal } from "../../src/core/terminal";
import { Exec, Session, SessionDataParams, SessionResult, SessionStateParams } from "../../src/core/types";
import { memento } from "../support/fakes";

const REPO = path.resolve(__dirname, "..", "..", "..", "..", "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ktl-host-e2e-"));
const store = path.join(tmp, "sessions.db");
const env = { ...process.env, XDG_STATE_HOME: tmp, KTL_LSP_HOST_DIR: path.join(tmp, "host") };
const server = resolveServer({ path: process.env.KTL_LSP || path.join(REPO, ".venv", "bin", "ktl-lsp"), store });

interface Window {
  proc: ChildProcess;
  conn: MessageConnection;
  router: SessionRouter;
  exec: Exec;
}

async function openWindow(): Promise<Window> {
  const proc = spawn(server.command, server.args, { cwd: tmp, stdio: ["pipe", "pipe", "ignore"], env });
  const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
  const router = new SessionRouter();
  conn.onNotification("ktl/sessionData", (p: SessionDataParams) => router.onData(p));
  conn.onNotification("ktl/sessionState", (p: SessionStateParams) => router.onState(p));
  conn.onRequest("window/workDoneProgress/create", () => null);
  conn.onNotification("$/progress", () => undefined);
  conn.onRequest("workspace/configuration", (p: { items: unknown[] }) => p.items.map(() => null));
  conn.onRequest("client/registerCapability", () => null);
  conn.listen();
  await conn.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: `file://${tmp}`,
    capabilities: { window: { workDoneProgress: true } },
    initializationOptions: initializationOptions({ sessions: { persist: true, hostIdleTimeout: 30 } }),
  });
  await conn.sendNotification(InitializedNotification.type, {});
  const exec: Exec = async <T>(command: string, args: object = {}) =>
    (await conn.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args] })) as T;
  return { proc, conn, router, exec };
}

async function until(what: string, fn: () => boolean, timeoutMs = 15000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Lines the screen is cleared of, then a tick every 0.1 s with what was typed.
 * Run by bash by name: `read -t` is not POSIX, and a CI runner's `$SHELL` may be unset (dash). */
const ticksScript = path.join(tmp, "ticks.sh");
fs.writeFileSync(
  ticksScript,
  "seq -f old-%g 80; sleep 0.3; printf '\\033[H\\033[2J'; i=0; while read -t 0.1 line || true; do echo \"tick $i $line\"; i=$((i+1)); done\n",
);
const CLEARS_THEN_TICKS = `bash ${ticksScript}`;

const lastTick = (out: string) => Math.max(-1, ...[...out.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));

after(() => {
  spawnSync(server.command, [...server.args, "host", "--stop"], { env, timeout: 30000 });
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("a session outlives its window's server and is shown again in a new one", async () => {
  const first = await openWindow();
  const t1 = new SessionTerminal({ exec: first.exec, router: first.router, run: { command: CLEARS_THEN_TICKS }, confirm: async () => true });
  let out1 = "";
  t1.onDidWrite((d) => (out1 += d));
  t1.open({ columns: 80, rows: 24 });
  const sid = await t1.started;
  await until("ticks", () => lastTick(out1) >= 3);
  first.proc.kill("SIGKILL");
  first.conn.dispose();
  await new Promise((r) => setTimeout(r, 1000));

  const second = await openWindow();
  try {
    const { sessions } = await second.exec<{ sessions: Session[] }>("ktl.sessions.list", { state: "running" });
    const s = sessions.find((x) => x.sessionId === sid);
    assert.ok(s, "listed running after its window's server died");
    const t2 = new SessionTerminal({ exec: second.exec, router: second.router, attach: s, confirm: async () => true });
    let out2 = "";
    t2.onDidWrite((d) => (out2 += d));
    t2.open({ columns: 80, rows: 24 });
    await until("new ticks", () => lastTick(out2) >= lastTick(out1) + 10);
    assert.ok(!out2.includes("old-"), "the screen is replayed from where it was cleared");
    assert.match(out2, /tick 0 /);
    t2.handleInput("typed-back\r");
    await until("input reached the session", () => /tick \d+ typed-back/.test(out2));
    const ended = new Promise<string>((resolve) => t2.onDidChangeState((p) => p.state !== "running" && resolve(p.state)));
    await second.exec<SessionResult>("ktl.session.cancel", { sessionId: sid });
    assert.equal(await ended, "cancelled");
    t2.dispose();
  } finally {
    second.proc.kill();
    second.conn.dispose();
  }
});

test("a window's terminals reopen on the sessions that outlived it", async () => {
  const workspaceState = memento(); // the workspace's, kept across its windows
  const first = await openWindow();
  const shownBefore = new ShownSessions(workspaceState);
  const terminal = (w: Window, opts: { run?: { command: string }; attach?: Session }, keep = false): { t: SessionTerminal; out: () => string } => {
    const t = new SessionTerminal({ exec: w.exec, router: w.router, ...opts, confirm: async () => !keep });
    let out = "";
    t.onDidWrite((d) => (out += d));
    return { t, out: () => out };
  };
  const ticks = terminal(first, { run: { command: CLEARS_THEN_TICKS } });
  const gate = path.join(tmp, "go");
  const waits = terminal(first, { run: { command: `while [ ! -e ${gate} ]; do sleep 0.05; done` } });
  const brief = terminal(first, { run: { command: "echo brief" } });
  for (const x of [ticks, waits, brief]) {
    shownBefore.track(x.t);
    x.t.open({ columns: 80, rows: 24 });
  }
  const sid = await ticks.t.started;
  const waitsId = await waits.t.started;
  await until("the brief session's end", () => brief.t.state === "done");
  await until("ticks", () => lastTick(ticks.out()) >= 3);
  assert.deepEqual(shownBefore.ids().sort(), [sid, waitsId].sort(), "running ones remembered, ended ones forgotten");
  first.proc.kill("SIGKILL");
  first.conn.dispose();
  fs.writeFileSync(gate, ""); // this one ends while no window shows it
  await new Promise((r) => setTimeout(r, 1000));

  const second = await openWindow();
  try {
    const shown = new ShownSessions(workspaceState);
    const opened: { t: SessionTerminal; out: () => string }[] = [];
    const reopened = await shown.reopen(second.exec, (s) => {
      const x = terminal(second, { attach: s }, true);
      shown.track(x.t);
      x.t.open({ columns: 80, rows: 24 });
      opened.push(x);
    });
    assert.deepEqual(reopened.map((s) => s.sessionId), [sid], "the one still running, not the one that ended");
    assert.deepEqual(shown.ids(), [sid]);
    const [back] = opened;
    await until("new ticks, live", () => lastTick(back.out()) >= lastTick(ticks.out()) + 10);
    assert.match(back.out(), /tick 0 /, "the screen as it was is drawn again");
    assert.ok(!back.out().includes("old-"), "replayed from where it was cleared");
    back.t.handleInput("typed-back\r");
    await until("input reached the session", () => /tick \d+ typed-back/.test(back.out()));

    // The user closes the terminal and keeps the session: it is no longer reopened.
    await back.t.close();
    assert.deepEqual(shown.ids(), []);
    assert.equal((await second.exec<Session>("ktl.session.get", { sessionId: sid })).state, "running");
    await second.exec<SessionResult>("ktl.session.cancel", { sessionId: sid });
    back.t.dispose();
  } finally {
    second.proc.kill();
    second.conn.dispose();
  }
});
