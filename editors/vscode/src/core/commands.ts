import { AGENT_TOKEN_SECRET } from "./server";
import { formatDuration, nodeOf, quickPickLabel } from "./sessions";
import { describeEnd, RunSpec } from "./terminal";
import { Exec, FINAL_STATES, PlanResult, Session, SessionResult, SessionsDiff } from "./types";

/** The editor UI the commands need (implemented over the vscode API in extension.ts). */
export interface Ui {
  input(prompt: string, opts?: { value?: string; placeHolder?: string; password?: boolean }): Promise<string | undefined>;
  pick<T extends { label: string }>(items: T[], placeHolder: string): Promise<T | undefined>;
  info(message: string): void;
  error(message: string): void;
  showDocument(content: string, language: string): Promise<void>;
  openTerminal(arg: { run?: RunSpec; attach?: Session; title: string }): void;
  openExternal(url: string): void;
  activeUri(): string | undefined;
  saveUri(defaultName: string): Promise<string | undefined>;
  refreshSessions(): void;
  /** A modal question; true when the user chose `action`. */
  confirm(message: string, action: string): Promise<boolean>;
  /** SecretStorage: stores `value`, or deletes the key when undefined. */
  storeSecret(key: string, value: string | undefined): Promise<void>;
  /** Restarts the server (settings are read at initialize). */
  restartServer(): Promise<void>;
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
  /** `arg`: the tree item / argument; `selected`: every selected tree item (multi-select). */
  run(ctx: CommandContext, arg?: unknown, selected?: unknown): Promise<void>;
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

/** The URI a command was given (an explorer/editor menu passes a vscode.Uri), else the editor's. */
export function uriArg(ctx: CommandContext, arg: unknown): string | undefined {
  if (typeof arg === "string" && arg.includes(":")) return arg;
  if (arg && typeof arg === "object" && "scheme" in arg && "path" in arg) return String(arg);
  return ctx.ui.activeUri();
}

/** Default file name for an export: title slug + id prefix + the format's extension. */
export function exportFileName(s: Session, format: string): string {
  const ext = format === "asciicast" ? "cast" : format === "ndjson" ? "ndjson" : "html";
  const slug = (s.title || "session")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  return `${slug || "session"}-${s.sessionId.slice(0, 8)}.${ext}`;
}

function exitText(code: number | null | undefined): string {
  return code === undefined || code === null ? "none" : String(code);
}

/** The text of a comparison (a unified diff the "diff" language colours, with a header). */
export function compareDocument(r: SessionsDiff): string {
  const side = (s: Session) => `${s.title || s.sessionId} (${s.sessionId}, ${describeEnd(s)}, ${s.createdAt})`;
  const delta = r.durationDeltaMs;
  const lines = [
    `# ktl: compare two sessions`,
    `# a: ${side(r.a)}`,
    `# b: ${side(r.b)}`,
    `# exit codes: ${exitText(r.exitCodes[0])} -> ${exitText(r.exitCodes[1])}${r.exitCodes[0] === r.exitCodes[1] ? " (same)" : ""}`,
    `# duration: ${delta >= 0 ? "+" : "-"}${formatDuration(Math.abs(delta))} (b - a)`,
  ];
  if (r.truncated) lines.push("# output truncated: only the first lines were compared");
  lines.push("");
  lines.push(r.outputDiff ? r.outputDiff.replace(/\n$/, "") : "(the output is the same, volatile tokens aside)");
  return `${lines.join("\n")}\n`;
}

/** Two sessions given by a multi-selection in the Sessions view, if exactly two are selected. */
function selectedPair(selected: unknown): [Session, Session] | undefined {
  if (!Array.isArray(selected)) return undefined;
  const sessions = selected.map(sessionArg).filter((s): s is Session => s !== undefined);
  if (sessions.length !== 2) return undefined;
  // the older one first, so the diff reads "what changed since"
  const [x, y] = sessions;
  return x.createdAt <= y.createdAt ? [x, y] : [y, x];
}

/**
 * Shows a session in a terminal. A remote one (agent.url) is attached first: the server mirrors
 * it into a local session (`ktl.session.attach`, detached) that streams like any other.
 */
export async function openSession(ctx: CommandContext, s: Session): Promise<void> {
  let local = s;
  if (s.remote) {
    const r = await ctx.exec<SessionResult>("ktl.session.attach", { sessionId: s.sessionId, detach: true });
    local = await ctx.exec<Session>("ktl.session.get", { sessionId: r.sessionId });
    ctx.ui.refreshSessions();
  }
  ctx.ui.openTerminal({ attach: local, title: `ktl: ${s.title || s.sessionId}${s.remote ? " (remote)" : ""}` });
}

export function planSummary(r: PlanResult): string {
  const counts = new Map<string, number>();
  for (const n of r.nodes ?? []) counts.set(n.state, (counts.get(n.state) ?? 0) + 1);
  const parts = [...counts].map(([state, n]) => `${n} ${state}`);
  return `${resultText("plan", r)}${parts.length ? ` · ${parts.join(", ")}` : ""}`;
}

function resultText(title: string, r: SessionResult): string {
  const exit = r.exitCode !== undefined && r.exitCode !== null ? ` (exit ${r.exitCode})` : "";
  return `ktl ${title}: ${r.state}${exit}${r.error ? `: ${r.error}` : ""}`;
}

const SIGNALS = ["INT", "TERM", "KILL", "HUP", "EOF"];

export { sessionArg };

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
      if (s) await openSession(ctx, s);
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
      if (s) await openSession(ctx, s);
    },
  },
  // Commands gated on the server advertising them (context keys ktl.server.has.*).
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
      const format = await ctx.ui.pick(
        [
          { label: "asciicast", description: "asciinema v2 (.cast)" },
          { label: "html", description: "a self-contained player page" },
          { label: "ndjson", description: "every frame, one JSON object a line" },
        ],
        "Export format",
      );
      if (!format) return;
      const path = await ctx.ui.saveUri(exportFileName(s, format.label));
      if (!path) return; // the save dialog was cancelled
      const r = await ctx.exec<{ path: string }>("ktl.session.export", { sessionId: s.sessionId, format: format.label, path });
      ctx.ui.info(`ktl: exported ${s.sessionId.slice(0, 8)} to ${r.path}`);
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
      const r = await ctx.exec<Session>("ktl.session.pin", { sessionId: s.sessionId, pinned: !s.pinned });
      ctx.ui.info(`ktl: ${r.pinned ? "pinned" : "unpinned"} ${s.title || s.sessionId}${r.pinned ? " (kept by retention)" : ""}`);
      ctx.ui.refreshSessions();
    },
  },
  {
    id: "ktl.ui.session.delete",
    title: "Delete Session…",
    server: "ktl.session.delete",
    gated: true,
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, {}, "Pick a session to delete");
      if (!s) return;
      if (!FINAL_STATES.has(s.state)) return ctx.ui.error(`ktl: ${s.title || s.sessionId} is running; cancel it first`);
      const what = s.kind === "plan" ? "plan session and its node sessions" : "session and its recording";
      if (!(await ctx.ui.confirm(`Delete the ${what} "${s.title || s.sessionId}"?`, "Delete"))) return;
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
    async run(ctx, arg, selected) {
      let pair = selectedPair(selected);
      if (!pair) {
        const a = await pickSession(ctx, arg, {}, "First session (the earlier run)");
        if (!a) return;
        const { sessions } = await ctx.exec<{ sessions: Session[] }>("ktl.sessions.list", { limit: 200 });
        const others = sessions.filter((s) => s.sessionId !== a.sessionId);
        if (others.length === 0) return ctx.ui.info("ktl: no other session to compare with");
        const picked = await ctx.ui.pick(
          others.map((s) => ({ ...quickPickLabel(s), session: s })),
          `Compare ${a.title || a.sessionId} with…`,
        );
        if (!picked) return;
        pair = [a, picked.session];
      }
      const r = await ctx.exec<SessionsDiff>("ktl.sessions.diff", { a: pair[0].sessionId, b: pair[1].sessionId });
      await ctx.ui.showDocument(compareDocument(r), "diff");
    },
  },
  {
    id: "ktl.ui.plan.run",
    title: "Run Plan / Stack…",
    server: "ktl.plan.run",
    gated: true,
    async run(ctx, arg) {
      const uri = uriArg(ctx, arg);
      if (!uri) return ctx.ui.error("ktl: open a plan (*.plan.yaml, ktl-plan.yaml) or a stack.yaml first");
      const started = await ctx.exec<PlanResult>("ktl.plan.run", { uri, detach: true });
      const name = uri.replace(/^.*\//, "");
      const plan = await ctx.exec<Session>("ktl.session.get", { sessionId: started.sessionId });
      ctx.ui.openTerminal({ attach: plan, title: `ktl plan: ${name}` });
      ctx.ui.refreshSessions();
      if (FINAL_STATES.has(started.state)) return ctx.ui.info(planSummary(started));
      const end = await ctx.exec<SessionResult>("ktl.session.wait", { sessionId: started.sessionId });
      ctx.ui.refreshSessions();
      const nodes = await ctx.exec<{ sessions: Session[] }>("ktl.sessions.list", { parentId: started.sessionId, limit: 500, remote: false }).then(
        (r) => r.sessions,
        () => [] as Session[],
      );
      const failed = nodes.filter((n) => n.state !== "done" && FINAL_STATES.has(n.state)).map((n) => nodeOf(n) ?? n.sessionId);
      const msg = resultText(`plan ${name}`, end) + (failed.length ? ` · not done: ${[...new Set(failed)].join(", ")}` : "");
      if (end.state === "done") ctx.ui.info(msg);
      else ctx.ui.error(msg);
    },
  },
  {
    id: "ktl.ui.plan.cancelNode",
    title: "Cancel Plan Node",
    server: "ktl.plan.cancelNode",
    gated: true,
    async run(ctx, arg) {
      const s = sessionArg(arg);
      const node = s && nodeOf(s);
      if (!s || !s.parentId || !node) return ctx.ui.error("ktl: pick a running plan node in the Sessions view");
      await ctx.exec("ktl.plan.cancelNode", { sessionId: s.parentId, node });
      ctx.ui.refreshSessions();
    },
  },
  {
    id: "ktl.ui.agent.setToken",
    title: "Set Remote Agent Token",
    server: "ktl.sessions.list",
    async run(ctx) {
      const token = await ctx.ui.input("Token of the remote gateway (ktl.agent.url); empty to remove it", { password: true });
      if (token === undefined) return;
      await ctx.ui.storeSecret(AGENT_TOKEN_SECRET, token.trim() || undefined);
      ctx.ui.info(token.trim() ? "ktl: agent token saved in SecretStorage; restarting the server" : "ktl: agent token removed; restarting the server");
      await ctx.ui.restartServer();
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
];
