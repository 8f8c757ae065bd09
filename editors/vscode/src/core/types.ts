/** Shapes of ktl-lsp's protocol (docs/protocol.md) the extension uses. */

export type SessionState = "running" | "done" | "error" | "cancelled" | "interrupted";

export const FINAL_STATES: ReadonlySet<string> = new Set(["done", "error", "cancelled", "interrupted"]);

export interface Session {
  sessionId: string;
  kind: string;
  title: string;
  state: SessionState;
  exitCode?: number | null;
  error?: string | null;
  createdAt: string;
  endedAt?: string | null;
  lastSeq: number;
  pinned?: boolean;
  meta?: Record<string, unknown>;
  tags?: Record<string, string>;
  parentId?: string | null;
  /** A session of the remote gateway (agent.url), listed by ktl.sessions.list. */
  remote?: boolean;
}

export interface SessionResult {
  sessionId: string;
  state: SessionState;
  exitCode?: number | null;
  signal?: string | null;
  error?: string | null;
  durationMs?: number;
  /** A link to the browser replay (may be absent when the gateway is off). */
  replayUrl?: string | null;
}

export type PlanNodeState = "pending" | "running" | "done" | "failed" | "skipped" | "cancelled";

/** One node of a plan run (`ktl.plan.run`'s `nodes`). */
export interface PlanNode {
  id: string;
  state: PlanNodeState;
  sessionId?: string | null;
  exitCode?: number | null;
  attempts: number;
  reason?: string | null;
}

export interface PlanResult extends SessionResult {
  nodes?: PlanNode[];
}

/** `ktl.sessions.diff`'s answer. */
export interface SessionsDiff {
  a: Session;
  b: Session;
  durationDeltaMs: number;
  exitCodes: [number | null, number | null];
  outputDiff: string;
  truncated?: boolean;
}

export interface Frame {
  seq: number;
  ts: string;
  type: "output" | "input" | "resize" | "event" | "marker";
  data: string;
}

export interface SessionDataParams {
  sessionId: string;
  seq: number;
  data: string;
}

export interface SessionStateParams {
  sessionId: string;
  state: SessionState;
  exitCode?: number | null;
  error?: string | null;
}

/** Sends `workspace/executeCommand` with one argument object. */
export type Exec = <T = unknown>(command: string, args?: object) => Promise<T>;
