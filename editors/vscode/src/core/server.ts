import * as fs from "node:fs";
import * as path from "node:path";

export interface ServerSettings {
  /** ktl.server.path: the ktl-lsp executable (empty: `ktl-lsp` on PATH). */
  path?: string;
  /** ktl.server.python: a Python with ktl_lsp installed (used when ktl-lsp is not found). */
  python?: string;
  /** ktl.server.args: extra global options, e.g. ["--log-file", "/tmp/ktl.log"]. */
  args?: string[];
  /** ktl.store: the session store (ktl-lsp --store). */
  store?: string;
}

export interface ServerCommand {
  command: string;
  args: string[];
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export function which(name: string, envPath: string | undefined = process.env.PATH): string | undefined {
  const exts = process.platform === "win32" ? ["", ".exe", ".cmd"] : [""];
  for (const dir of (envPath ?? "").split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** How to start the server: the configured path, else ktl-lsp on PATH, else python -m ktl_lsp. */
export function resolveServer(s: ServerSettings, lookup: (name: string) => string | undefined = which): ServerCommand {
  const globals = [...(s.store ? ["--store", s.store] : []), ...(s.args ?? [])];
  if (s.path && s.path.trim()) return { command: s.path.trim(), args: globals };
  const onPath = lookup("ktl-lsp");
  if (onPath) return { command: onPath, args: globals };
  const python = s.python && s.python.trim() ? s.python.trim() : process.platform === "win32" ? "python" : "python3";
  return { command: python, args: ["-m", "ktl_lsp", ...globals] };
}

/** What the extension sends as initializationOptions. */
export function initializationOptions(extra: Record<string, unknown> = {}): Record<string, unknown> {
  // resources: the Cluster view's ktl/resources notifications
  return { ...extra, sessionData: true, resources: true };
}

/**
 * The server settings the extension contributes (`ktl.<key>`), as dotted initializationOptions
 * keys. `null` / empty means "the server's default" and is not sent.
 */
export const SERVER_SETTINGS = [
  "logMessageLimit",
  "k8sVersion",
  "retention.maxSessions",
  "retention.maxFramesPerSession",
  "retention.maxStoreBytes",
  "retention.maxAgeDays",
  "retention.intervalS",
  "gateway.enabled",
  "gateway.host",
  "gateway.port",
  "agent.url",
  "agent.caFile",
  "agent.certFile",
  "agent.keyFile",
  "agent.serverName",
  "sessions.persist",
  "sessions.hostIdleTimeout",
] as const;

/** Groups that also hold settings of the extension's own (`ktl.sessions.limit`): a change there
 * restarts the server only when it touches one of the server's keys. */
const SHARED_GROUPS = new Set(["sessions"]);

/**
 * The language feature switches (`ktl.<name>.enabled`, server setting `<name>.enabled`): sent at
 * initialize, and to the running server with workspace/didChangeConfiguration (no restart).
 */
export const FEATURE_SWITCHES = ["completion", "hover", "symbols", "codeActions", "codeLens", "definition", "references", "diagnostics"] as const;

/** `{completion: {enabled}, ...}` for each switch that has a boolean value. */
export function featureSwitches(get: (key: string) => unknown): Record<string, { enabled: boolean }> {
  const out: Record<string, { enabled: boolean }> = {};
  for (const name of FEATURE_SWITCHES) {
    const value = get(`${name}.enabled`);
    if (typeof value === "boolean") out[name] = { enabled: value };
  }
  return out;
}

/** Whether a configuration change touches a feature switch (the running server is told). */
export function switchesChanged(affects: (section: string) => boolean): boolean {
  return FEATURE_SWITCHES.some((name) => affects(`ktl.${name}`));
}

/** The SecretStorage key of the remote agent's token. */
export const AGENT_TOKEN_SECRET = "ktl.agent.token";

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * initializationOptions from the extension's settings: `ktl.server.initializationOptions`
 * (extra, lowest precedence), then each contributed server setting that is set and the
 * feature switches, then the agent token from SecretStorage; `sessionData` is always true.
 */
export function settingsToInitializationOptions(
  get: (key: string) => unknown,
  agentToken?: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extra)) out[k] = isPlainObject(v) ? { ...v } : v;
  for (const key of SERVER_SETTINGS) {
    const value = get(key);
    if (value === undefined || value === null || value === "") continue;
    const [head, leaf] = key.split(".");
    if (leaf === undefined) {
      out[head] = value;
    } else {
      const group = isPlainObject(out[head]) ? (out[head] as Record<string, unknown>) : {};
      group[leaf] = value;
      out[head] = group;
    }
  }
  Object.assign(out, featureSwitches(get));
  if (agentToken) {
    const agent = isPlainObject(out.agent) ? (out.agent as Record<string, unknown>) : {};
    out.agent = { ...agent, token: agentToken };
  }
  return initializationOptions(out);
}

/** Whether a configuration change needs a server restart (settings are read at initialize). */
export function needsRestart(affects: (section: string) => boolean): boolean {
  const sections = SERVER_SETTINGS.map((k) => (SHARED_GROUPS.has(k.split(".")[0]) ? `ktl.${k}` : `ktl.${k.split(".")[0]}`));
  return ["ktl.server", "ktl.store", ...new Set(sections)].some(affects);
}

/**
 * Restarts after a crash, debounced: wait `delayMs` (doubling per crash in `windowMs`), give up
 * after `maxCrashes` crashes in that window.
 */
export class RestartPolicy {
  private crashes: number[] = [];
  constructor(
    readonly delayMs = 1000,
    readonly maxCrashes = 5,
    readonly windowMs = 3 * 60 * 1000,
  ) {}

  /** The delay before restarting, or undefined to give up. */
  onCrash(now: number = Date.now()): number | undefined {
    this.crashes = this.crashes.filter((t) => now - t < this.windowMs);
    this.crashes.push(now);
    if (this.crashes.length > this.maxCrashes) return undefined;
    return this.delayMs * 2 ** (this.crashes.length - 1);
  }

  reset(): void {
    this.crashes = [];
  }
}

/** The commands the server offers that the UI gates with `when` clauses (context keys). */
export const GATED_COMMANDS = [
  "ktl.session.replay",
  "ktl.session.export",
  "ktl.session.pin",
  "ktl.session.delete",
  "ktl.sessions.diff",
  "ktl.sessions.prune",
  "ktl.apply",
  "ktl.diff",
  "ktl.delete",
  "ktl.logs",
  "ktl.verify",
  "ktl.k8s.contexts",
  "ktl.k8s.watch",
  "ktl.k8s.get",
  "ktl.k8s.describe",
  "ktl.k8s.scale",
  "ktl.k8s.restart",
  "ktl.k8s.delete",
  "ktl.k8s.edit",
  "ktl.k8s.source",
  "ktl.k8s.use",
  "ktl.exec",
  "ktl.portForward",
  "ktl.plan.run",
  "ktl.plan.cancelNode",
] as const;

/** Context keys: `ktl.server.has.<command>` (dots as underscores) true when advertised. */
export function contextKeys(advertised: readonly string[]): Record<string, boolean> {
  const have = new Set(advertised);
  const out: Record<string, boolean> = {};
  for (const c of GATED_COMMANDS) out[contextKey(c)] = have.has(c);
  return out;
}

export function contextKey(command: string): string {
  return `ktl.server.has.${command.replace(/^ktl\./, "").replace(/\./g, "_")}`;
}
