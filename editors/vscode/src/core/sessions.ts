import { forwardsOf, K8sStatus } from "./k8s";
import { describeEnd } from "./terminal";
import { Exec, FINAL_STATES, Session, SessionStateParams } from "./types";

/** Codicon id per state (the Sessions view's icons). */
export const STATE_ICONS: Record<string, string> = {
  running: "sync~spin",
  done: "pass",
  error: "error",
  cancelled: "circle-slash",
  interrupted: "debug-disconnect",
};

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

export function durationMs(s: Session, now: number = Date.now()): number {
  const start = Date.parse(s.createdAt);
  const end = s.endedAt ? Date.parse(s.endedAt) : now;
  return Number.isFinite(start) && Number.isFinite(end) ? Math.max(0, end - start) : 0;
}

/** What a tree item shows for a session. */
export interface SessionItemView {
  id: string;
  label: string;
  description: string;
  tooltip: string;
  icon: string;
  contextValue: string;
  /** Plans expand to their node sessions. */
  collapsible: boolean;
}

export function isPlan(s: Session): boolean {
  return s.kind === "plan";
}

/** The node a plan's child session ran (`meta.node`), if any. */
export function nodeOf(s: Session): string | undefined {
  const node = s.meta?.node;
  return typeof node === "string" && node ? node : undefined;
}

export function sessionItem(s: Session, now: number = Date.now()): SessionItemView {
  const parts = [s.state, formatDuration(durationMs(s, now))];
  if (s.exitCode !== undefined && s.exitCode !== null) parts.push(`exit ${s.exitCode}`);
  if (s.pinned) parts.push("pinned");
  if (s.remote) parts.push("remote");
  // loaded from a .ktlbundle: replay only, the server refuses to drive it
  const imported = Boolean(s.meta?.imported);
  if (imported) parts.push("imported");
  // a running port-forward shows where to connect
  const urls = s.state === "running" ? forwardsOf(s).map((f) => f.url) : [];
  if (urls.length) parts.push(urls.join(", "));
  const flags = [FINAL_STATES.has(s.state) ? "ended" : "running"];
  if (s.pinned) flags.push("pinned");
  if (isPlan(s)) flags.push("plan");
  if (s.kind === "shell") flags.push("shell");
  const node = nodeOf(s);
  if (s.parentId) flags.push(node ? "node" : "child");
  if (s.remote) flags.push("remote");
  if (imported) flags.push("imported");
  if (urls.length) flags.push("forward");
  return {
    id: s.sessionId,
    label: node ? `${node}${s.title && s.title !== node ? `: ${s.title}` : ""}` : s.title || s.sessionId,
    description: parts.join(" · "),
    tooltip: `${s.sessionId}\n${describeEnd(s)}\nstarted ${s.createdAt}${s.endedAt ? `\nended ${s.endedAt}` : ""}`,
    icon: STATE_ICONS[s.state] ?? "circle-outline",
    // e.g. "ktlSession running" / "ktlSession ended pinned plan": menus match with =~ /running/
    contextValue: ["ktlSession", ...flags].join(" "),
    collapsible: isPlan(s),
  };
}

export function quickPickLabel(s: Session): { label: string; description: string; detail: string } {
  const v = sessionItem(s);
  return { label: v.label, description: v.description, detail: `${s.sessionId} · ${s.createdAt}` };
}

/**
 * The sessions the view shows: the newest from ktl.sessions.list, updated by ktl/sessionState.
 * A plan's node sessions (`parentId`) are shown under the plan, not at the top.
 */
export class SessionsModel {
  private sessions = new Map<string, Session>();
  private order: string[] = [];
  private childOrder = new Map<string, string[]>();
  /** States heard while a list request is in flight: the answer may predate them. */
  private heard: SessionStateParams[] | undefined;

  /** Call as a ktl.sessions.list request is sent; `replace` then keeps what was heard since. */
  listing(): void {
    this.heard = [];
  }

  /** The list request failed: stop keeping states for it. */
  listFailed(): void {
    this.heard = undefined;
  }

  replace(list: Session[]): void {
    const children = new Map<string, Session>();
    for (const ids of this.childOrder.values()) {
      for (const id of ids) {
        const s = this.sessions.get(id);
        if (s) children.set(id, s);
      }
    }
    this.sessions = new Map([...children, ...list.map((s) => [s.sessionId, s] as const)]);
    this.order = list.map((s) => s.sessionId);
    // A list answered after a session's `cancelled` must not bring back its `running`.
    const heard = this.heard ?? [];
    this.heard = undefined;
    for (const p of heard) this.applyState(p);
  }

  /** The top level: sessions whose parent is not listed too (those show under their parent). */
  roots(): Session[] {
    return this.list().filter((s) => !s.parentId || !this.order.includes(s.parentId));
  }

  /** Stores a plan's children (from ktl.sessions.list {parentId}); shown oldest first. */
  setChildren(parentId: string, list: Session[]): Session[] {
    const sorted = [...list].sort((x, y) => x.createdAt.localeCompare(y.createdAt) || x.sessionId.localeCompare(y.sessionId));
    for (const s of sorted) this.sessions.set(s.sessionId, s);
    this.childOrder.set(
      parentId,
      sorted.map((s) => s.sessionId),
    );
    return sorted;
  }

  /** The children known for `parentId`: loaded ones, else those in the top-level list. */
  children(parentId: string): Session[] {
    const ids = this.childOrder.get(parentId);
    if (ids) return ids.map((id) => this.sessions.get(id)).filter((s): s is Session => s !== undefined);
    return this.list()
      .filter((s) => s.parentId === parentId)
      .sort((x, y) => x.createdAt.localeCompare(y.createdAt));
  }

  /** Returns true when the session was unknown (the caller refreshes the list). */
  applyState(p: SessionStateParams): boolean {
    this.heard?.push(p);
    const s = this.sessions.get(p.sessionId);
    if (!s) return true;
    s.state = p.state;
    if (p.exitCode !== undefined) s.exitCode = p.exitCode;
    if (p.error !== undefined) s.error = p.error;
    if (FINAL_STATES.has(p.state) && !s.endedAt) s.endedAt = new Date().toISOString();
    return false;
  }

  list(): Session[] {
    return this.order.map((id) => this.sessions.get(id)).filter((s): s is Session => s !== undefined);
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  /** Running sessions, plans' nodes included, each counted once; not the cluster watches that
   * feed the Cluster view (they run as long as it is open: not work the user started). */
  runningCount(): number {
    return [...this.sessions.values()].filter((s) => s.state === "running" && !isClusterWatch(s)).length;
  }
}

/**
 * Loads a plan's node sessions (`ktl.sessions.list` with `parentId`); a server without that
 * filter (InvalidParams) falls back to the children already in the top-level list.
 */
export async function loadChildren(exec: Exec, model: SessionsModel, parentId: string, limit = 500): Promise<Session[]> {
  try {
    const r = await exec<{ sessions: Session[] }>("ktl.sessions.list", { parentId, limit, remote: false });
    return model.setChildren(parentId, r.sessions.filter((s) => s.parentId === parentId));
  } catch {
    return model.children(parentId);
  }
}

/** The Kubernetes context/namespace shown in the status bar (from ktl.k8s.contexts, see k8s.ts). */
export type { K8sStatus };

/** A `ktl.k8s.watch` session (meta.command "ktl watch"). */
export function isClusterWatch(s: Session): boolean {
  return s.kind === "k8s" && (s.meta as { command?: unknown } | undefined)?.command === "ktl watch";
}

export function statusText(running: number, k8s?: K8sStatus): string {
  const icon = k8s?.protection === "protected" ? "$(shield)" : k8s?.protection === "read-only" ? "$(lock)" : "$(cloud)";
  const where = k8s?.context ? ` ${icon} ${k8s.context}${k8s.namespace ? `/${k8s.namespace}` : ""}` : "";
  return (running > 0 ? `$(terminal) ktl: ${running} running` : "$(terminal) ktl") + where;
}
