/**
 * Command blocks of shell sessions (`ktl.shell`): each command the shell's integration marked,
 * with its exit code and duration (`ktl.session.blocks`, kept current by `ktl/block`).
 */
import { formatDuration, SessionItemView } from "./sessions";
import { Exec, Session } from "./types";

/** A block as `ktl.session.blocks` and `ktl/block` give it (no endedAt while it runs; an ended
 * block without exitCode ended with its shell, its exit code unknown). */
export interface Block {
  index: number;
  command: string;
  cwd?: string | null;
  startedAt: string;
  endedAt?: string;
  durationMs: number;
  exitCode?: number;
  fromSeq: number;
  toSeq?: number;
}

export interface BlockParams extends Block {
  sessionId: string;
}

/** A block in the Sessions view: the session it belongs to and the block. */
export interface BlockNode {
  session: Session;
  block: Block;
}

export function isShell(s: Session): boolean {
  return s.kind === "shell";
}

/** `SESSION#blockN`: how `ktl.sessions.diff` (and the CLI) name a block. */
export function blockRef(sessionId: string, index: number): string {
  return `${sessionId}#block${index}`;
}

export function blockIcon(b: Block): string {
  if (!b.endedAt) return "sync~spin";
  if (b.exitCode === undefined || b.exitCode === null) return "question";
  return b.exitCode === 0 ? "pass" : "error";
}

/** What a tree item shows for a block (a session's, less the plan's children). */
export type BlockItemView = Omit<SessionItemView, "collapsible">;

export function blockItem(sessionId: string, b: Block): BlockItemView {
  const exit = !b.endedAt ? "running" : b.exitCode === undefined || b.exitCode === null ? "exit ?" : `exit ${b.exitCode}`;
  const command = b.command.replace(/\s+/g, " ").trim() || `block ${b.index}`;
  return {
    id: blockRef(sessionId, b.index),
    label: command,
    description: `${exit} · ${formatDuration(b.durationMs)}`,
    tooltip: `${blockRef(sessionId, b.index)}\n${command}${b.cwd ? `\nin ${b.cwd}` : ""}\nstarted ${b.startedAt}${b.endedAt ? `\nended ${b.endedAt}` : ""}`,
    icon: blockIcon(b),
    contextValue: `ktlBlock ${b.endedAt ? "ended" : "running"}`,
  };
}

/** The blocks of the shell sessions the view has shown: loaded once, then kept by `ktl/block`. */
export class BlocksModel {
  private readonly blocks = new Map<string, Block[]>();
  /** Blocks `ktl/block` said ended before their session's were loaded: a load answered after
   * (its list read before they ended) does not undo them. */
  private readonly early = new Map<string, Block[]>();

  set(sessionId: string, blocks: Block[]): Block[] {
    const byIndex = new Map(blocks.map((b) => [b.index, b]));
    for (const b of this.early.get(sessionId) ?? []) byIndex.set(b.index, b);
    this.early.delete(sessionId);
    const sorted = [...byIndex.values()].sort((x, y) => x.index - y.index);
    this.blocks.set(sessionId, sorted);
    return sorted;
  }

  get(sessionId: string): Block[] | undefined {
    return this.blocks.get(sessionId);
  }

  /** A `ktl/block` notification; true when the session's blocks are loaded (the view changes). */
  apply(p: BlockParams): boolean {
    const list = this.blocks.get(p.sessionId);
    const { sessionId: _, ...block } = p;
    if (!list) {
      if (block.endedAt) this.early.set(p.sessionId, [...(this.early.get(p.sessionId) ?? []), block]);
      return false;
    }
    const at = list.findIndex((b) => b.index === block.index);
    if (at >= 0) list[at] = block;
    else this.set(p.sessionId, [...list, block]);
    return true;
  }

  forget(sessionId: string): void {
    this.blocks.delete(sessionId);
    this.early.delete(sessionId);
  }
}

/** A shell session's blocks, from the model or the server. */
export async function loadBlocks(exec: Exec, model: BlocksModel, sessionId: string): Promise<Block[]> {
  const r = await exec<{ blocks: Block[] }>("ktl.session.blocks", { sessionId });
  return model.set(sessionId, r.blocks);
}

/** The argument a block command gets from the Sessions view (a BlockNode), if it is one. */
export function blockArg(arg: unknown): BlockNode | undefined {
  if (!arg || typeof arg !== "object" || !("block" in arg) || !("session" in arg)) return undefined;
  const n = arg as BlockNode;
  return typeof n.block?.index === "number" && typeof n.session?.sessionId === "string" ? n : undefined;
}
