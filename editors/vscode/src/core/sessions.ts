import { describeEnd } from "./terminal";
import { FINAL_STATES, Session, SessionStateParams } from "./types";

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
}

export function sessionItem(s: Session, now: number = Date.now()): SessionItemView {
  const parts = [s.state, formatDuration(durationMs(s, now))];
  if (s.exitCode !== undefined && s.exitCode !== null) parts.push(`exit ${s.exitCode}`);
  const flags = [FINAL_STATES.has(s.state) ? "ended" : "running"];
  if (s.pinned) flags.push("pinned");
  return {
    id: s.sessionId,
    label: s.title || s.sessionId,
    description: parts.join(" · "),
    tooltip: `${s.sessionId}\n${describeEnd(s)}\nstarted ${s.createdAt}${s.endedAt ? `\nended ${s.endedAt}` : ""}`,
    icon: STATE_ICONS[s.state] ?? "circle-outline",
    // e.g. "ktlSession running" / "ktlSession ended pinned": menus match with =~ /running/
    contextValue: ["ktlSession", ...flags].join(" "),
  };
}

export function quickPickLabel(s: Session): { label: string; description: string; detail: string } {
  const v = sessionItem(s);
  return { label: v.label, description: v.description, detail: `${s.sessionId} · ${s.createdAt}` };
}

/** The sessions the view shows: the newest from ktl.sessions.list, updated by ktl/sessionState. */
export class SessionsModel {
  private sessions = new Map<string, Session>();
  private order: string[] = [];

  replace(list: Session[]): void {
    this.sessions = new Map(list.map((s) => [s.sessionId, s]));
    this.order = list.map((s) => s.sessionId);
  }

  /** Returns true when the session was unknown (the caller refreshes the list). */
  applyState(p: SessionStateParams): boolean {
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

  runningCount(): number {
    return this.list().filter((s) => s.state === "running").length;
  }
}

export function statusText(running: number): string {
  return running > 0 ? `$(terminal) ktl: ${running} running` : "$(terminal) ktl";
}
