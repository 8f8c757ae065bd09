import { Emitter } from "./emitter";
import { ExecSpec } from "./k8s";
import { SessionRouter } from "./router";
import {
  Exec,
  FINAL_STATES,
  Frame,
  Session,
  SessionDataParams,
  SessionResult,
  SessionStateParams,
} from "./types";

export interface Dimensions {
  columns: number;
  rows: number;
}

export interface RunSpec {
  argv?: string[];
  command?: string;
  cwd?: string;
  env?: Record<string, string>;
  title?: string;
  meta?: Record<string, unknown>;
  tags?: Record<string, string>;
}

/** `ktl.shell`: the user's shell (`$SHELL` by default) with command blocks. */
export interface ShellSpec {
  shell?: string;
  cwd?: string;
  env?: Record<string, string>;
  title?: string;
}

export interface TerminalOptions {
  exec: Exec;
  router: SessionRouter;
  /** Asks the user (modal); true to go ahead. */
  confirm: (message: string) => Promise<boolean>;
  /** Start a new session (`ktl.run`), or show an existing one (live while it runs). */
  run?: RunSpec;
  /** Start a shell (or a command) in a container instead (`ktl.exec`, same streaming). */
  execInto?: ExecSpec;
  /** Start the user's interactive shell (`ktl.shell`), its commands recorded as blocks. */
  shell?: ShellSpec;
  attach?: Pick<Session, "sessionId" | "state" | "exitCode" | "error">;
  resizeDebounceMs?: number;
  onError?: (message: string) => void;
}

/** Text shown when a session ends (also used by the Sessions view). */
export function describeEnd(p: { state: string; exitCode?: number | null; error?: string | null }): string {
  let text = p.state;
  if (p.exitCode !== undefined && p.exitCode !== null) text += ` (exit ${p.exitCode})`;
  if (p.error) text += `: ${p.error}`;
  return text;
}

/**
 * The logic of a session's terminal, shaped like vscode.Pseudoterminal (onDidWrite, onDidClose,
 * open, close, handleInput, setDimensions) so extension.ts hands it to createTerminal as is.
 */
export class SessionTerminal {
  private readonly writeEmitter = new Emitter<string>();
  private readonly closeEmitter = new Emitter<number | void>();
  private readonly stateEmitter = new Emitter<SessionStateParams>();
  private readonly dismissEmitter = new Emitter<string>();
  readonly onDidWrite = this.writeEmitter.event;
  readonly onDidClose = this.closeEmitter.event;
  /** The session's state changes (after the terminal saw them). */
  readonly onDidChangeState = this.stateEmitter.event;
  /** The user closed the terminal (and answered whether to cancel a running session). */
  readonly onDidDismiss = this.dismissEmitter.event;

  sessionId: string | undefined;
  state: string = "starting";
  private lastSeq = 0;
  private backfilling = false;
  private held: SessionDataParams[] = [];
  private queuedInput: string[] = [];
  private unsubscribe: (() => void) | undefined;
  private dims: Dimensions | undefined;
  private sentDims: Dimensions | undefined;
  private resizeTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** Resolves with the session id once known (rejects when the session could not start). */
  readonly started: Promise<string>;
  private resolveStarted!: (id: string) => void;
  private rejectStarted!: (e: unknown) => void;

  constructor(private readonly opts: TerminalOptions) {
    this.started = new Promise((resolve, reject) => {
      this.resolveStarted = resolve;
      this.rejectStarted = reject;
    });
    this.started.catch(() => undefined);
  }

  get running(): boolean {
    return this.sessionId !== undefined && !FINAL_STATES.has(this.state);
  }

  open(initial: Dimensions | undefined): void {
    this.dims = initial;
    if (this.opts.attach) {
      void this.attach(this.opts.attach);
    } else if (this.opts.execInto) {
      void this.start("ktl.exec", this.opts.execInto);
    } else if (this.opts.shell) {
      void this.start("ktl.shell", this.opts.shell);
    } else {
      void this.start("ktl.run", this.opts.run ?? {});
    }
  }

  /** Starts the session detached (`ktl.run`, `ktl.exec` or `ktl.shell`) with the terminal's size. */
  private async start(command: "ktl.run" | "ktl.exec" | "ktl.shell", spec: RunSpec | ExecSpec | ShellSpec): Promise<void> {
    const args: Record<string, unknown> = { ...spec, detach: true };
    if (this.dims) {
      args.cols = this.dims.columns;
      args.rows = this.dims.rows;
      this.sentDims = this.dims;
    }
    let result: SessionResult;
    try {
      result = await this.opts.exec<SessionResult>(command, args);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.writeEmitter.fire(`\x1b[31m[ktl] could not start: ${message}\x1b[0m\r\n`);
      this.opts.onError?.(message);
      this.state = "error";
      this.rejectStarted(e);
      return;
    }
    this.bind(result.sessionId, result.state);
    if (FINAL_STATES.has(result.state)) this.onState(result);
  }

  private async attach(session: NonNullable<TerminalOptions["attach"]>): Promise<void> {
    this.backfilling = true;
    this.bind(session.sessionId, session.state);
    try {
      const fromSeq = FINAL_STATES.has(session.state) ? 1 : await this.reattach(session.sessionId);
      const out = await this.opts.exec<{ frames: Frame[]; lastSeq: number }>("ktl.session.output", {
        sessionId: session.sessionId,
        fromSeq,
      });
      for (const f of out.frames) if (f.type === "output") this.writeEmitter.fire(f.data);
      this.lastSeq = out.lastSeq;
    } catch (e) {
      this.opts.onError?.(e instanceof Error ? e.message : String(e));
    }
    this.backfilling = false;
    const held = this.held;
    this.held = [];
    for (const p of held) this.onData(p);
    if (FINAL_STATES.has(session.state) && this.state === session.state) {
      this.state = "running";
      this.onState({ sessionId: session.sessionId, state: session.state, exitCode: session.exitCode, error: session.error });
    }
  }

  /**
   * A running session may have outlived an earlier window (`sessions.persist`): attaching makes
   * this server show it live again (input, resize, cancel). The answer is the frame that draws
   * its screen as it is now; a session running in another window's server is shown from its start.
   */
  private async reattach(sessionId: string): Promise<number> {
    try {
      const a = await this.opts.exec<SessionResult & { screenFromSeq?: number }>("ktl.session.attach", { sessionId, detach: true });
      return a.screenFromSeq ?? 1;
    } catch {
      return 1;
    }
  }

  private bind(sessionId: string, state: string): void {
    this.sessionId = sessionId;
    this.state = state;
    this.unsubscribe = this.opts.router.subscribe(sessionId, {
      data: (p) => this.onData(p),
      state: (p) => this.onState(p),
    });
    this.resolveStarted(sessionId);
    const queued = this.queuedInput;
    this.queuedInput = [];
    for (const data of queued) this.handleInput(data);
    if (this.dims) this.setDimensions(this.dims);
  }

  private onData(p: SessionDataParams): void {
    if (this.backfilling) {
      this.held.push(p);
      return;
    }
    if (p.seq <= this.lastSeq) return; // already written from ktl.session.output
    this.lastSeq = p.seq;
    this.writeEmitter.fire(p.data);
  }

  private onState(p: SessionStateParams): void {
    if (this.backfilling) return; // the final state is written after the backfill
    const wasFinal = FINAL_STATES.has(this.state);
    this.state = p.state;
    if (FINAL_STATES.has(p.state) && !wasFinal) {
      this.writeEmitter.fire(`\r\n\x1b[2m[ktl] session ${describeEnd(p)}\x1b[0m\r\n`);
      this.clearResize();
    }
    this.stateEmitter.fire(p);
  }

  handleInput(data: string): void {
    if (this.sessionId === undefined) {
      if (this.state === "starting") this.queuedInput.push(data);
      return;
    }
    if (!this.running) return;
    this.opts
      .exec("ktl.session.input", { sessionId: this.sessionId, data })
      .catch((e: unknown) => this.opts.onError?.(e instanceof Error ? e.message : String(e)));
  }

  setDimensions(dims: Dimensions): void {
    this.dims = dims;
    if (!this.running) return;
    this.clearResize();
    this.resizeTimer = setTimeout(() => {
      this.resizeTimer = undefined;
      const d = this.dims;
      if (!d || !this.running || !this.sessionId) return;
      if (this.sentDims && this.sentDims.columns === d.columns && this.sentDims.rows === d.rows) return;
      this.sentDims = d;
      this.opts
        .exec("ktl.session.resize", { sessionId: this.sessionId, cols: d.columns, rows: d.rows })
        .catch(() => undefined);
    }, this.opts.resizeDebounceMs ?? 100);
  }

  private clearResize(): void {
    if (this.resizeTimer !== undefined) clearTimeout(this.resizeTimer);
    this.resizeTimer = undefined;
  }

  /** The user closed the terminal: offer to cancel a session that still runs. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearResize();
    const sid = this.sessionId;
    if (sid !== undefined && this.running) {
      const yes = await this.opts.confirm(`Session ${sid.slice(0, 8)} is still running. Cancel it?`);
      if (yes) {
        try {
          await this.opts.exec("ktl.session.cancel", { sessionId: sid });
        } catch (e) {
          this.opts.onError?.(e instanceof Error ? e.message : String(e));
        }
      }
    }
    if (sid !== undefined) this.dismissEmitter.fire(sid);
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  dispose(): void {
    this.clearResize();
    this.unsubscribe?.();
    this.writeEmitter.dispose();
    this.closeEmitter.dispose();
    this.stateEmitter.dispose();
    this.dismissEmitter.dispose();
  }
}
