import {
  ClusterItem,
  ContextsAnswer,
  contextPickItems,
  ExecSpec,
  execSpecOf,
  execTitle,
  Forward,
  forwardMessage,
  forwardsOf,
  itemTarget,
  K8sSelection,
  LIST_KINDS,
  ListAnswer,
  namespacePickItems,
  namespacesOf,
  parsePorts,
  parseTargetLine,
  PortForwardResult,
  PortForwardSpec,
  portForwardSpecOf,
  portPickItems,
  PURPOSE_WHAT,
  selectionOf,
  targetLabel,
  targetPickItems,
  TargetPurpose,
  UseAnswer,
} from "./k8s";
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
  /** A terminal on a new `ktl.run` / `ktl.exec` session, or on an existing one. */
  openTerminal(arg: { run?: RunSpec; exec?: ExecSpec; attach?: Session; title: string }): void;
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
  /** A (non-modal) information message with buttons; the chosen one, if any. */
  ask(message: string, actions: string[]): Promise<string | undefined>;
  /** The workspace's Kubernetes pick (kept across server restarts). */
  k8sSelection(): K8sSelection | undefined;
  /** After `ktl.k8s.use`: remember the pick (undefined: none) and refresh the status bar. */
  k8sChanged(selection: K8sSelection | undefined): Promise<void>;
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

/**
 * Runs a plan (`ktl.plan.run` detached): a terminal on the plan session, then a summary naming
 * the nodes that did not finish. `args`: the command's (`uri`, `nodes`, ...; the "Run" lens's).
 */
export async function runPlan(ctx: CommandContext, args: { uri: string } & Record<string, unknown>): Promise<void> {
  const started = await ctx.exec<PlanResult>("ktl.plan.run", { ...args, detach: true });
  const name = args.uri.replace(/^.*\//, "");
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
}

/** Follows logs (`ktl.logs` detached) in a terminal on the log session. */
export async function followLogs(ctx: CommandContext, args: Record<string, unknown>, title?: string): Promise<void> {
  const r = await ctx.exec<SessionResult>("ktl.logs", { ...args, detach: true });
  const s = await ctx.exec<Session>("ktl.session.get", { sessionId: r.sessionId });
  ctx.ui.openTerminal({ attach: s, title: title ?? `ktl logs: ${targetLabel(args)}` });
  ctx.ui.refreshSessions();
}

let lastExec: string | undefined;

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** `ktl.exec` arguments given as an object (a CodeLens, another extension), else undefined. */
export function execArg(arg: unknown): ExecSpec | undefined {
  if (!arg || typeof arg !== "object") return undefined;
  const a = arg as Record<string, unknown>;
  if (!str(a.pod) && !str(a.workload)) return undefined;
  const spec: ExecSpec = {};
  for (const k of ["pod", "workload", "namespace", "container", "context", "title"] as const) if (str(a[k])) spec[k] = a[k] as string;
  if (Array.isArray(a.command) && a.command.every((c) => typeof c === "string")) spec.command = a.command as string[];
  if (typeof a.tty === "boolean") spec.tty = a.tty;
  return spec;
}

/** `ktl.portForward` arguments given as an object; `ports` may be empty (then asked). */
export function portForwardArg(arg: unknown): PortForwardSpec | undefined {
  if (!arg || typeof arg !== "object") return undefined;
  const a = arg as Record<string, unknown>;
  if (!str(a.pod) && !str(a.service) && !str(a.workload)) return undefined;
  const spec: PortForwardSpec = { ports: Array.isArray(a.ports) ? a.ports.map(String) : [] };
  for (const k of ["pod", "service", "workload", "namespace", "context"] as const) if (str(a[k])) spec[k] = a[k] as string;
  return spec;
}

/** A terminal on a new `ktl.exec` session (SessionTerminal starts it with the terminal's size). */
export function openExec(ctx: CommandContext, spec: ExecSpec): void {
  ctx.ui.openTerminal({ exec: spec, title: execTitle(spec) });
}

/** Opens a forward in the browser (asks which when there are several). */
export async function openForward(ctx: CommandContext, forwards: Forward[]): Promise<void> {
  let url: string | undefined = forwards[0]?.url;
  if (forwards.length > 1) {
    const picked = await ctx.ui.pick(
      forwards.map((f) => ({ label: f.url, description: `remote port ${f.remote}` })),
      "Open which port?",
    );
    url = picked?.label;
  }
  if (url) ctx.ui.openExternal(url);
}

export const OPEN_IN_BROWSER = "Open in Browser";
export const STOP = "Stop";

/**
 * Starts a port-forward (`ktl.portForward`: it answers once the ports listen) and says where:
 * "Forwarding http://127.0.0.1:PORT -> service/web:80" with Open in Browser / Stop.
 */
export async function startPortForward(ctx: CommandContext, spec: PortForwardSpec): Promise<PortForwardResult> {
  const label = targetLabel(spec);
  const r = await ctx.exec<PortForwardResult>("ktl.portForward", { ...spec });
  ctx.ui.refreshSessions();
  const forwards = r.forwards ?? [];
  if (forwards.length === 0) {
    ctx.ui.error(resultText(`port-forward ${label}`, r));
    return r;
  }
  const choice = await ctx.ui.ask(forwardMessage(forwards, label), [OPEN_IN_BROWSER, STOP]);
  if (choice === OPEN_IN_BROWSER) {
    await openForward(ctx, forwards);
  } else if (choice === STOP) {
    await ctx.exec<SessionResult>("ktl.session.cancel", { sessionId: r.sessionId });
    ctx.ui.refreshSessions();
  }
  return r;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A listed resource picked for a command, or "ask with the input box" (`why`: no list). */
export type TargetChoice = { item: ClusterItem; answer: ListAnswer } | { typed: true; why?: string };

/**
 * Picks what `purpose` acts on from `ktl.k8s.list` (the workspace's context and namespace).
 * `{typed}` when the user chose "Type a name…", or there is no list to pick from (no cluster,
 * RBAC, nothing running: `why` says so); undefined when the pick was dismissed.
 */
export async function pickClusterTarget(ctx: CommandContext, purpose: TargetPurpose, title: string): Promise<TargetChoice | undefined> {
  let answer: ListAnswer;
  try {
    answer = await ctx.exec<ListAnswer>("ktl.k8s.list", { kinds: LIST_KINDS[purpose] });
  } catch (e) {
    return { typed: true, why: `could not list the cluster: ${errorText(e)}` };
  }
  const items = targetPickItems(answer, purpose);
  if (items.length <= 1) return { typed: true, why: `no ${PURPOSE_WHAT[purpose]} in namespace ${answer?.namespace ?? "?"}` };
  const picked = await ctx.ui.pick(items, `${title} (context ${answer.context}, namespace ${answer.namespace})`);
  if (!picked) return undefined;
  return picked.item ? { item: picked.item, answer } : { typed: true };
}

/** The input box's prompt, with why there was no list to pick from. */
export function promptWithWhy(prompt: string, why?: string): string {
  return why ? `${why.charAt(0).toUpperCase()}${why.slice(1)}. ${prompt}` : prompt;
}

const PORTS_PROMPT = "Ports: LOCAL:REMOTE, or :REMOTE for any free local port";

async function askPorts(ctx: CommandContext, value: string): Promise<string[] | undefined> {
  const text = (await ctx.ui.input(PORTS_PROMPT, { placeHolder: "8080:80 :443", value }))?.trim();
  if (!text) return undefined;
  const parsed = parsePorts(text);
  if (typeof parsed === "string") {
    ctx.ui.error(`ktl port-forward: ${parsed}`);
    return undefined;
  }
  return parsed;
}

/** The ports to forward to a listed resource: `:PORT` of one of its ports, all, or "Other…". */
export async function pickPorts(ctx: CommandContext, item: ClusterItem, label: string): Promise<string[] | undefined> {
  const items = portPickItems(item);
  const first = items[0]?.ports?.[0]?.slice(1);
  if (items.length > 1) {
    const picked = await ctx.ui.pick(items, `Ports to forward to ${label}`);
    if (!picked) return undefined;
    if (picked.ports) return picked.ports;
  }
  return askPorts(ctx, first ? `${first}:${first}` : ":80");
}

/** The container of a pod with several (the first is the default). */
async function pickContainer(ctx: CommandContext, item: ClusterItem, label: string): Promise<string | undefined | null> {
  const containers = (Array.isArray(item.containers) ? item.containers : []).filter((c) => typeof c === "string" && c !== "");
  if (containers.length < 2) return null;
  const picked = await ctx.ui.pick(
    containers.map((c, i) => ({ label: c, description: i === 0 ? "the pod's first" : undefined })),
    `Container in ${label}`,
  );
  return picked?.label;
}

/** ktl.exec arguments for a listed pod or workload (a pod with several containers: which). */
async function execSpecOfPick(ctx: CommandContext, item: ClusterItem, answer: ListAnswer): Promise<ExecSpec | undefined> {
  const target = itemTarget(item, answer);
  if (!target || "service" in target) return undefined;
  const spec: ExecSpec = { ...target };
  if ("pod" in target) {
    const container = await pickContainer(ctx, item, targetLabel(target));
    if (container === undefined) return undefined;
    if (container) spec.container = container;
  }
  return spec;
}

/** ktl.exec arguments typed in the input box (the previous line offered again). */
async function askExecSpec(ctx: CommandContext, why?: string): Promise<ExecSpec | undefined> {
  const line = await ctx.ui.input(promptWithWhy("Pod or workload to exec into: TARGET [-n NAMESPACE] [-c CONTAINER] [-- COMMAND]", why), {
    placeHolder: "deployment/web -n shop -- sh",
    value: lastExec,
  });
  if (!line) return undefined;
  const parsed = execSpecOf(line);
  if (typeof parsed === "string") {
    ctx.ui.error(`ktl exec: ${parsed}`);
    return undefined;
  }
  lastExec = line;
  return parsed;
}

/** Server commands whose CodeLens the extension handles itself (language client middleware). */
export const LENS_COMMANDS: ReadonlySet<string> = new Set(["ktl.exec", "ktl.portForward", "ktl.logs", "ktl.plan.run"]);

/**
 * A server command run through VS Code (a CodeLens click: the lens's command id is the server's).
 * Ones that start an interactive or endless session get the UI the palette commands give:
 * `ktl.exec` a terminal, `ktl.logs` and `ktl.plan.run` a terminal on the detached session,
 * `ktl.portForward` the "Forwarding ..." message. Calls that ask for `detach` themselves, and
 * every other command, go to the server as they are (`next`).
 */
export async function lensCommand(
  ctx: CommandContext,
  command: string,
  args: unknown[],
  next: (command: string, args: unknown[]) => Promise<unknown>,
): Promise<unknown> {
  const a = args[0];
  if (!LENS_COMMANDS.has(command) || !a || typeof a !== "object" || "detach" in a) return next(command, args);
  const obj = a as Record<string, unknown>;
  if (command === "ktl.exec") {
    const spec = execArg(obj);
    if (!spec) return next(command, args);
    openExec(ctx, spec);
    return undefined;
  }
  if (command === "ktl.portForward") {
    const spec = portForwardArg(obj);
    if (!spec) return next(command, args);
    return startPortForward(ctx, spec);
  }
  if (command === "ktl.logs") return followLogs(ctx, obj);
  if (typeof obj.uri !== "string") return next(command, args);
  return runPlan(ctx, obj as { uri: string } & Record<string, unknown>);
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
      await runPlan(ctx, { uri });
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
      const choice = await pickClusterTarget(ctx, "logs", "Follow the logs of");
      if (!choice) return;
      if ("item" in choice) {
        const target = itemTarget(choice.item, choice.answer);
        if (!target || "service" in target) return;
        return followLogs(ctx, target, `ktl logs: ${targetLabel(target)}`);
      }
      const t = (await ctx.ui.input(promptWithWhy("Pod, kind/name or label selector", choice.why), { placeHolder: "deployment/web" }))?.trim();
      if (!t) return;
      const target = t.includes("/") ? { workload: t } : t.includes("=") ? { selector: t } : { pod: t };
      await followLogs(ctx, target, `ktl logs: ${t}`);
    },
  },
  {
    id: "ktl.ui.k8s.context",
    title: "Switch Kubernetes Context",
    server: "ktl.k8s.contexts",
    gated: true,
    async run(ctx, arg) {
      const a = await ctx.exec<ContextsAnswer>("ktl.k8s.contexts", {});
      let name = typeof arg === "string" ? arg : undefined;
      if (name === undefined) {
        if (!a.contexts?.length) return ctx.ui.error(`ktl: no Kubernetes contexts${a.error ? `: ${a.error}` : " in the kubeconfig"}`);
        const picked = await ctx.ui.pick(contextPickItems(a, ctx.ui.k8sSelection()), `Kubernetes context for this workspace (active: ${a.current ?? "none"})`);
        if (!picked) return;
        name = picked.context;
      }
      // another context starts from its own namespace; re-picking the active one keeps it
      const args = name !== "" && name === a.current ? { context: name } : { context: name, namespace: "" };
      const r = await ctx.exec<UseAnswer>("ktl.k8s.use", args);
      await ctx.ui.k8sChanged(selectionOf(r));
    },
  },
  {
    id: "ktl.ui.k8s.namespace",
    title: "Switch Namespace",
    server: "ktl.k8s.use",
    gated: true,
    async run(ctx, arg) {
      let ns = typeof arg === "string" ? arg.trim() : undefined;
      if (ns === undefined) {
        const a = await ctx.exec<ContextsAnswer>("ktl.k8s.contexts", {});
        if (!a.current) return ctx.ui.error(`ktl: no Kubernetes context${a.error ? `: ${a.error}` : ""}`);
        // the cluster's namespaces too, when it can be listed (else the known ones, as before)
        const listed = await ctx.exec<ListAnswer>("ktl.k8s.list", { kinds: ["namespaces"] }).then(namespacesOf, () => [] as string[]);
        const items = namespacePickItems({ ...a, namespaces: [...(a.namespaces ?? []), ...listed] });
        const picked = await ctx.ui.pick(items, `Namespace for this workspace (context ${a.current})`);
        if (!picked) return;
        ns = picked.namespace;
        if (ns === undefined) {
          ns = (await ctx.ui.input("Namespace", { placeHolder: "kube-system" }))?.trim();
          if (!ns) return;
        }
      }
      const r = await ctx.exec<UseAnswer>("ktl.k8s.use", { namespace: ns });
      await ctx.ui.k8sChanged(selectionOf(r));
    },
  },
  {
    id: "ktl.ui.exec",
    title: "Exec into Pod/Workload",
    server: "ktl.exec",
    gated: true,
    async run(ctx, arg) {
      let spec = execArg(arg);
      if (!spec) {
        const choice = await pickClusterTarget(ctx, "exec", "Exec into");
        if (!choice) return;
        spec = "item" in choice ? await execSpecOfPick(ctx, choice.item, choice.answer) : await askExecSpec(ctx, choice.why);
        if (!spec) return;
      }
      openExec(ctx, spec);
    },
  },
  {
    id: "ktl.ui.portForward",
    title: "Port-forward",
    server: "ktl.portForward",
    gated: true,
    async run(ctx, arg) {
      let spec = portForwardArg(arg);
      if (!spec) {
        const choice = await pickClusterTarget(ctx, "portForward", "Port-forward to");
        if (!choice) return;
        if ("item" in choice) {
          const target = itemTarget(choice.item, choice.answer);
          if (!target) return;
          const ports = await pickPorts(ctx, choice.item, targetLabel(target));
          if (!ports) return;
          spec = { ...target, ports };
        } else {
          const line = await ctx.ui.input(promptWithWhy("Pod, Service or workload to forward to: TARGET [-n NAMESPACE] [PORTS]", choice.why), {
            placeHolder: "svc/web -n shop",
          });
          if (!line) return;
          const words = parseTargetLine(line);
          if (words.error) return ctx.ui.error(`ktl port-forward: ${words.error}`);
          let ports = "";
          if (!words.rest.length) {
            ports = (await ctx.ui.input(PORTS_PROMPT, { placeHolder: "8080:80 :443", value: ":80" }))?.trim() ?? "";
            if (!ports) return;
          }
          const parsed = portForwardSpecOf(line, ports);
          if (typeof parsed === "string") return ctx.ui.error(`ktl port-forward: ${parsed}`);
          spec = parsed;
        }
      } else if (spec.ports.length === 0) {
        const ports = await askPorts(ctx, ":80");
        if (!ports) return;
        spec = { ...spec, ports };
      }
      await startPortForward(ctx, spec);
    },
  },
  {
    id: "ktl.ui.portForward.open",
    title: "Open Port-forward in Browser…",
    server: "ktl.portForward",
    gated: true,
    async run(ctx, arg) {
      let s = sessionArg(arg);
      if (!s) {
        const { sessions } = await ctx.exec<{ sessions: Session[] }>("ktl.sessions.list", { kind: "port-forward", state: "running", limit: 200, remote: false });
        const live = sessions.filter((x) => forwardsOf(x).length > 0);
        if (live.length === 0) return ctx.ui.info("ktl: no running port-forwards");
        const picked = await ctx.ui.pick(
          live.map((x) => ({ label: x.title || x.sessionId, description: forwardsOf(x).map((f) => f.url).join(", "), session: x })),
          "Open which port-forward?",
        );
        if (!picked) return;
        s = picked.session;
      }
      const forwards = forwardsOf(s);
      if (forwards.length === 0) return ctx.ui.error(`ktl: ${s.title || s.sessionId} forwards no ports`);
      await openForward(ctx, forwards);
    },
  },
];
