import { SessionDataParams, SessionStateParams } from "./types";

export interface SessionSink {
  data(params: SessionDataParams): void;
  state(params: SessionStateParams): void;
}

const PENDING_MAX_BYTES = 1024 * 1024;
const PENDING_MAX_SESSIONS = 32;

interface Pending {
  chunks: SessionDataParams[];
  bytes: number;
  state?: SessionStateParams;
}

/**
 * Routes `ktl/sessionData` / `ktl/sessionState` to the terminal showing each session.
 *
 * A detached `ktl.run` answers after the process started, so output can arrive before the
 * editor knows the session id: notifications for sessions nobody watches yet are kept
 * (bounded) and replayed when a sink subscribes.
 */
export class SessionRouter {
  private sinks = new Map<string, Set<SessionSink>>();
  private pending = new Map<string, Pending>();
  private stateListeners = new Set<(p: SessionStateParams) => void>();

  onData(params: SessionDataParams): void {
    const sinks = this.sinks.get(params.sessionId);
    if (sinks && sinks.size > 0) {
      for (const s of sinks) s.data(params);
      return;
    }
    const p = this.pendingFor(params.sessionId);
    if (p.bytes + params.data.length <= PENDING_MAX_BYTES) {
      p.chunks.push(params);
      p.bytes += params.data.length;
    }
  }

  onState(params: SessionStateParams): void {
    for (const l of this.stateListeners) l(params);
    const sinks = this.sinks.get(params.sessionId);
    if (sinks && sinks.size > 0) {
      for (const s of sinks) s.state(params);
      return;
    }
    this.pendingFor(params.sessionId).state = params;
  }

  /** Every state change of every session (the Sessions view, the status bar). */
  onAnyState(listener: (p: SessionStateParams) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  subscribe(sessionId: string, sink: SessionSink): () => void {
    let set = this.sinks.get(sessionId);
    if (!set) {
      set = new Set();
      this.sinks.set(sessionId, set);
    }
    set.add(sink);
    const p = this.pending.get(sessionId);
    if (p) {
      this.pending.delete(sessionId);
      for (const chunk of p.chunks) sink.data(chunk);
      if (p.state) sink.state(p.state);
    }
    return () => {
      set?.delete(sink);
      if (set?.size === 0) this.sinks.delete(sessionId);
    };
  }

  pendingCount(): number {
    return this.pending.size;
  }

  private pendingFor(sessionId: string): Pending {
    let p = this.pending.get(sessionId);
    if (!p) {
      p = { chunks: [], bytes: 0 };
      this.pending.set(sessionId, p);
      while (this.pending.size > PENDING_MAX_SESSIONS) {
        const oldest = this.pending.keys().next().value as string;
        this.pending.delete(oldest);
      }
    }
    return p;
  }
}
