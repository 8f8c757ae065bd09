/**
 * Terminals that come back after the window does (`sessions.persist`): the sessions this
 * workspace's terminals showed are remembered in its workspaceState while they run, and when the
 * extension starts again each one still running in the session host gets its terminal back
 * (attached, its screen replayed, then live), as VS Code's own persistent terminals do.
 */
import { SessionTerminal } from "./terminal";
import { Exec, FINAL_STATES, Session, SessionResult } from "./types";

/** The part of vscode.Memento (workspaceState) used here. */
export interface Memento {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): PromiseLike<void>;
}

/** workspaceState key: the ids of the running sessions this workspace's terminals show. */
export const SHOWN_SESSIONS = "ktl.sessions.shown";

export class ShownSessions {
  constructor(private readonly state: Memento) {}

  ids(): string[] {
    return this.state.get<string[]>(SHOWN_SESSIONS) ?? [];
  }

  async remember(sessionId: string): Promise<void> {
    const ids = this.ids();
    if (!ids.includes(sessionId)) await this.state.update(SHOWN_SESSIONS, [...ids, sessionId]);
  }

  async forget(sessionId: string): Promise<void> {
    const ids = this.ids();
    if (ids.includes(sessionId)) await this.state.update(SHOWN_SESSIONS, ids.filter((id) => id !== sessionId));
  }

  /**
   * Remembers the session `terminal` shows while it runs; forgets it when it ends, or when the
   * user closes the terminal and answers (cancel or keep: either way they let it go). A window
   * that goes away without asking keeps it, to be reopened.
   */
  track(terminal: SessionTerminal): void {
    terminal.started.then(
      (sid) => {
        if (terminal.running) void this.remember(sid);
      },
      () => undefined,
    );
    terminal.onDidChangeState((p) => {
      if (FINAL_STATES.has(p.state)) void this.forget(p.sessionId);
    });
    terminal.onDidDismiss((sid) => void this.forget(sid));
  }

  /**
   * Opens (with `open`) a terminal on each remembered session the server can attach: one still
   * running in the session host. The others (ended meanwhile, unknown, another window's) are
   * forgotten. Returns the sessions reopened.
   */
  async reopen(exec: Exec, open: (session: Session) => void): Promise<Session[]> {
    const reopened: Session[] = [];
    for (const sessionId of this.ids()) {
      let session: Session;
      try {
        session = await exec<Session>("ktl.session.get", { sessionId });
        if (FINAL_STATES.has(session.state)) throw new Error(`session ${sessionId} is ${session.state}`);
        await exec<SessionResult>("ktl.session.attach", { sessionId, detach: true });
      } catch {
        await this.forget(sessionId);
        continue;
      }
      open(session);
      reopened.push(session);
    }
    return reopened;
  }
}
