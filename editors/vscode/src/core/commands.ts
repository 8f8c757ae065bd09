import { quickPickLabel } from "./sessions";
import { RunSpec } from "./terminal";
import { Exec, Session, SessionResult } from "./types";

/** The editor UI the commands need (implemented over the vscode API in extension.ts). */
export interface Ui {
  input(prompt: string, opts?: { value?: string; placeHolder?: string }): Promise<string | undefined>;
  pick<T extends { label: string }>(items: T[], placeHolder: string): Promise<T | undefined>;
  info(message: string): void;
  error(message: string): void;
  showDocument(content: string, language: string): Promise<void>;
  openTerminal(arg: { run?: RunSpec; attach?: Session; title: string }): void;
  openExternal(url: string): void;
  activeUri(): string | undefined;
  saveUri(defaultName: string): Promise<string | undefined>;
  refreshSessions(): void;
}

export interface CommandContext {
  ui: Ui;
  exec: Exec;
}

export interface UiCommand {
  /** The VS Code command id (`ktl.ui.*`: the server's `ktl.*` ids are registered by the client). */
  id: string;
  title: string;
  /** The server command it needs; gated ones are hidden until the server advertises them. */
  server: string;
  gated?: boolean;
  run(ctx: CommandContext, arg?: unknown): Promise<void>;
}

function sessionArg(arg: unknown): Session | undefined {
  if (arg && typeof arg === "object" && "sessionId" in arg) return arg as Session;
  if (arg && typeof arg === "object" && "session" in arg) return (arg as { session: Session }).session;
  return undefined;
}

/** The session a command acts on: the tree item it was invoked on, else a quick pick. */
export async function pickSession(
  ctx: CommandContext,
  arg: unknown,
  filter: { state?: string } = {},
  placeHolder = "Pick a ktl session",
): Promise<Session | undefined> {
  const given = sessionArg(arg);
  if (given) return given;
  const { sessions } = await ctx.exec<{ sessions: Session[] }>("ktl.sessions.list", { ...filter, limit: 200 });
  if (sessions.length === 0) {
    ctx.ui.info(filter.state ? `No ${filter.state} ktl sessions.` : "No ktl sessions yet.");
    return undefined;
  }
  const picked = await ctx.ui.pick(
    sessions.map((s) => ({ ...quickPickLabel(s), session: s })),
    placeHolder,
  );
  return picked?.session;
}

function resultText(title: string, r: SessionResult): string {
  const exit = r.exitCode !== undefined && r.exitCode !== null ? ` (exit ${r.exitCode})` : "";
  return `ktl ${title}: ${r.state}${exit}${r.error ? `: ${r.error}` : ""}`;
}

const SIGNALS = ["INT", "TERM", "KILL", "HUP", "EOF"];

async function uriCommand(ctx: CommandContext, command: string, title: string, extra: object = {}): Promise<void> {
  const uri = ctx.ui.activeUri();
  if (!uri) {
    ctx.ui.error(`ktl ${title}: open a manifest first`);
    return;
  }
  const r = await ctx.exec<SessionResult & { diff?: string }>(command, { uri, ...extra });
  if (typeof r.diff === "string" && r.diff) await ctx.ui.showDocument(r.diff, "diff");
  else ctx.ui.info(resultText(title, r));
  ctx.ui.refreshSessions();
}

export const COMMANDS: UiCommand[] = [
  {
    id: "ktl.ui.run",
    title: "Run Command as Session…",
    server: "ktl.run",
    async run(ctx, arg) {
      const command =
        typeof arg === "string" ? arg : await ctx.ui.input("Command to run (through your shell)", { placeHolder: "kubectl get pods -A" });
      if (!command) return;
      ctx.ui.openTerminal({ run: { command, title: command }, title: `ktl: ${command}` });
    },
  },
  {
    id: "ktl.ui.session.open",
    title: "Open Session Terminal…",
    server: "ktl.session.output",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (s) ctx.ui.openTerminal({ attach: s, title: `ktl: ${s.title || s.sessionId}` });
    },
  },
  {
    id: "ktl.ui.session.input",
    title: "Send Input to Session…",
    server: "ktl.session.input",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, { state: "running" });
      if (!s) return;
      const data = await ctx.ui.input("Text to send (a newline is added)");
      if (data === undefined) return;
      await ctx.exec("ktl.session.input", { sessionId: s.sessionId, data: `${data}\r` });
    },
  },
  {
    id: "ktl.ui.session.resize",
    title: "Resize Session…",
    server: "ktl.session.resize",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, { state: "running" });
      if (!s) return;
      const size = await ctx.ui.input("Columns x rows", { value: "120x30" });
      const m = size?.match(/^\s*(\d+)\s*[x, ]\s*(\d+)\s*$/);
      if (!m) return;
      await ctx.exec("ktl.session.resize", { sessionId: s.sessionId, cols: Number(m[1]), rows: Number(m[2]) });
    },
  },
  {
    id: "ktl.ui.session.signal",
    title: "Send Signal to Session…",
    server: "ktl.session.signal",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, { state: "running" });
      if (!s) return;
      const sig = await ctx.ui.pick(SIGNALS.map((label) => ({ label })), "Signal");
      if (sig) await ctx.exec("ktl.session.signal", { sessionId: s.sessionId, signal: sig.label });
    },
  },
  {
    id: "ktl.ui.session.cancel",
    title: "Cancel Session…",
    server: "ktl.session.cancel",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, { state: "running" }, "Pick a running session to cancel");
      if (!s) return;
      const r = await ctx.exec<SessionResult>("ktl.session.cancel", { sessionId: s.sessionId });
      ctx.ui.info(resultText("cancel", r));
      ctx.ui.refreshSessions();
    },
  },
  {
    id: "ktl.ui.session.wait",
    title: "Wait for Session…",
    server: "ktl.session.wait",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, { state: "running" });
      if (!s) return;
      const r = await ctx.exec<SessionResult>("ktl.session.wait", { sessionId: s.sessionId });
      ctx.ui.info(resultText("wait", r));
    },
  },
  {
    id: "ktl.ui.session.get",
    title: "Show Session Details…",
    server: "ktl.session.get",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (!s) return;
      const full = await ctx.exec<Session>("ktl.session.get", { sessionId: s.sessionId });
      await ctx.ui.showDocument(JSON.stringify(full, null, 2), "json");
    },
  },
  {
    id: "ktl.ui.session.output",
    title: "Show Session Output as Text…",
    server: "ktl.session.output",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (!s) return;
      const out = await ctx.exec<{ frames: { type: string; data: string }[] }>("ktl.session.output", {
        sessionId: s.sessionId,
        plain: true,
      });
      const text = out.frames.filter((f) => f.type === "output").map((f) => f.data).join("").replace(/\r\n/g, "\n");
      await ctx.ui.showDocument(text, "log");
    },
  },
  {
    id: "ktl.ui.sessions.list",
    title: "Sessions…",
    server: "ktl.sessions.list",
    async run(ctx) {
      ctx.ui.refreshSessions();
      const s = await pickSession(ctx, undefined);
      if (s) ctx.ui.openTerminal({ attach: s, title: `ktl: ${s.title || s.sessionId}` });
    },
  },
  // Commands the server will offer later: hidden until it advertises them.
  {
    id: "ktl.ui.session.replay",
    title: "Open Session Replay in Browser…",
    server: "ktl.session.replay",
    gated: true,
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (!s) return;
      const r = await ctx.exec<{ url: string }>("ktl.session.replay", { sessionId: s.sessionId });
      ctx.ui.openExternal(r.url);
    },
  },
  {
    id: "ktl.ui.session.export",
    title: "Export Session…",
    server: "ktl.session.export",
    gated: true,
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (!s) return;
      const format = await ctx.ui.pick(["asciicast", "html", "ndjson"].map((label) => ({ label })), "Format");
      if (!format) return;
      const ext = format.label === "asciicast" ? "cast" : format.label;
      const path = await ctx.ui.saveUri(`${s.sessionId}.${ext}`);
      const r = await ctx.exec<{ path: string }>("ktl.session.export", {
        sessionId: s.sessionId,
        format: format.label,
        ...(path ? { path } : {}),
      });
      ctx.ui.info(`ktl: exported to ${r.path}`);
    },
  },
  {
    id: "ktl.ui.session.pin",
    title: "Pin / Unpin Session…",
    server: "ktl.session.pin",
    gated: true,
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (!s) return;
      await ctx.exec("ktl.session.pin", { sessionId: s.sessionId, pinned: !s.pinned });
      ctx.ui.refreshSessions();
    },
  },
  {
    id: "ktl.ui.session.delete",
    title: "Delete Session…",
    server: "ktl.session.delete",
    gated: true,
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (!s) return;
      await ctx.exec("ktl.session.delete", { sessionId: s.sessionId });
      ctx.ui.refreshSessions();
    },
  },
  {
    id: "ktl.ui.sessions.prune",
    title: "Prune Old Sessions",
    server: "ktl.sessions.prune",
    gated: true,
    async run(ctx) {
      const r = await ctx.exec<{ deleted: number }>("ktl.sessions.prune", {});
      ctx.ui.info(`ktl: pruned ${r.deleted} sessions`);
      ctx.ui.refreshSessions();
    },
  },
  {
    id: "ktl.ui.sessions.diff",
    title: "Compare Two Sessions…",
    server: "ktl.sessions.diff",
    gated: true,
    async run(ctx, arg) {
      const a = await pickSession(ctx, arg, {}, "First session");
      if (!a) return;
      const b = await pickSession(ctx, undefined, {}, "Second session");
      if (!b) return;
      const r = await ctx.exec<{ outputDiff: string }>("ktl.sessions.diff", { a: a.sessionId, b: b.sessionId });
      await ctx.ui.showDocument(r.outputDiff, "diff");
    },
  },
  {
    id: "ktl.ui.apply",
    title: "Apply This Manifest",
    server: "ktl.apply",
    gated: true,
    run: (ctx) => uriCommand(ctx, "ktl.apply", "apply"),
  },
  {
    id: "ktl.ui.diff",
    title: "Diff This Manifest Against the Cluster",
    server: "ktl.diff",
    gated: true,
    run: (ctx) => uriCommand(ctx, "ktl.diff", "diff"),
  },
  {
    id: "ktl.ui.delete",
    title: "Delete This Manifest's Resources",
    server: "ktl.delete",
    gated: true,
    run: (ctx) => uriCommand(ctx, "ktl.delete", "delete"),
  },
  {
    id: "ktl.ui.verify",
    title: "Verify This Manifest's Resources",
    server: "ktl.verify",
    gated: true,
    run: (ctx) => uriCommand(ctx, "ktl.verify", "verify"),
  },
  {
    id: "ktl.ui.logs",
    title: "Follow Logs…",
    server: "ktl.logs",
    gated: true,
    async run(ctx) {
      const t = await ctx.ui.input("Pod, kind/name or label selector", { placeHolder: "deployment/web" });
      if (!t) return;
      const target = t.includes("/") ? { workload: t } : t.includes("=") ? { selector: t } : { pod: t };
      const r = await ctx.exec<SessionResult>("ktl.logs", { ...target, detach: true });
      const s = await ctx.exec<Session>("ktl.session.get", { sessionId: r.sessionId });
      ctx.ui.openTerminal({ attach: s, title: `ktl logs: ${t}` });
    },
  },
  {
    id: "ktl.ui.plan.run",
    title: "Run Plan / Stack…",
    server: "ktl.plan.run",
    gated: true,
    async run(ctx) {
      const uri = ctx.ui.activeUri();
      if (!uri) return ctx.ui.error("ktl: open a plan or stack.yaml first");
      const r = await ctx.exec<SessionResult>("ktl.plan.run", { uri, detach: true });
      ctx.ui.info(resultText("plan", r));
      ctx.ui.refreshSessions();
    },
  },
];
