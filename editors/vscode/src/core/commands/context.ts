/** What every command gets (the editor `Ui`, the server's `exec`) and the helpers they share. */
import { ExecSpec, K8sSelection } from "../k8s";
import { quickPickLabel } from "../sessions";
import { RunSpec, ShellSpec } from "../terminal";
import { Exec, Session, SessionResult } from "../types";

/** The editor UI the commands need (implemented over the vscode API in extension.ts). */
export interface Ui {
  input(prompt: string, opts?: { value?: string; placeHolder?: string; password?: boolean }): Promise<string | undefined>;
  pick<T extends { label: string }>(items: T[], placeHolder: string): Promise<T | undefined>;
  info(message: string): void;
  error(message: string): void;
  showDocument(content: string, language: string): Promise<void>;
  /** A read-only document named `name` (a virtual `ktl-render:` document in VS Code). */
  showReadOnly(name: string, content: string, language: string): Promise<void>;
  /** A terminal on a new `ktl.run` / `ktl.exec` / `ktl.shell` session, or on an existing one. */
  openTerminal(arg: { run?: RunSpec; exec?: ExecSpec; shell?: ShellSpec; attach?: Session; title: string }): void;
  /** Puts text on the clipboard. */
  copy(text: string): Promise<void>;
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

/** The session a tree item or argument stands for (a Session, or an item holding one). */
export function sessionArg(arg: unknown): Session | undefined {
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

/** `ktl TITLE: STATE (exit N): ERROR`, the one-line message of a finished command. */
export function resultText(title: string, r: SessionResult): string {
  const exit = r.exitCode !== undefined && r.exitCode !== null ? ` (exit ${r.exitCode})` : "";
  return `ktl ${title}: ${r.state}${exit}${r.error ? `: ${r.error}` : ""}`;
}
