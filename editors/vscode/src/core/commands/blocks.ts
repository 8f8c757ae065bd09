/** Shells and their command blocks: Start Shell, Rerun, Copy Output, Compare with…, Go to Block. */
import { Block, BlockNode, blockArg, blockItem, blockRef, isShell, loadBlocks, BlocksModel } from "../blocks";
import { Session, SessionResult, SessionsDiff } from "../types";
import { compareDocument } from "./compare";
import { CommandContext, UiCommand } from "./context";
import { quickPickLabel } from "../sessions";

/** The block a command was given (from the Sessions view), else one the user picks. */
async function pickBlock(ctx: CommandContext, arg: unknown, placeHolder = "Pick a command block"): Promise<BlockNode | undefined> {
  const given = blockArg(arg);
  if (given) return given;
  const session = arg && typeof arg === "object" && "sessionId" in arg ? (arg as Session) : await pickShell(ctx);
  if (!session) return undefined;
  const blocks = await loadBlocks(ctx.exec, new BlocksModel(), session.sessionId);
  if (blocks.length === 0) {
    ctx.ui.info(`ktl: ${session.title || session.sessionId} has no command blocks`);
    return undefined;
  }
  const picked = await ctx.ui.pick(blockPicks(session, blocks), placeHolder);
  return picked && { session, block: picked.block };
}

/** Quick pick items for a session's blocks, newest first. */
export function blockPicks(session: Session, blocks: Block[]): { label: string; description: string; detail: string; block: Block }[] {
  return [...blocks].reverse().map((b) => {
    const v = blockItem(session.sessionId, b);
    return { label: `$(${v.icon}) ${v.label}`, description: v.description, detail: `${v.id}${b.cwd ? ` · ${b.cwd}` : ""}`, block: b };
  });
}

async function pickShell(ctx: CommandContext): Promise<Session | undefined> {
  const { sessions } = await ctx.exec<{ sessions: Session[] }>("ktl.sessions.list", { kind: "shell", limit: 200 });
  const shells = sessions.filter(isShell);
  if (shells.length === 0) {
    ctx.ui.info("ktl: no shell sessions yet (ktl: Start Shell)");
    return undefined;
  }
  const picked = await ctx.ui.pick(
    shells.map((s) => ({ ...quickPickLabel(s), session: s })),
    "Pick a shell session",
  );
  return picked?.session;
}

/** A block's output as plain text (`ktl.block.output`). */
async function blockOutput(ctx: CommandContext, n: BlockNode): Promise<string> {
  const { text } = await ctx.exec<{ text: string }>("ktl.block.output", { sessionId: n.session.sessionId, block: n.block.index });
  return text;
}

export const BLOCK_COMMANDS: UiCommand[] = [
  {
    id: "ktl.ui.shell",
    title: "Start Shell",
    server: "ktl.shell",
    async run(ctx) {
      ctx.ui.openTerminal({ shell: {}, title: "ktl: shell" });
    },
  },
  {
    id: "ktl.ui.block.rerun",
    title: "Rerun Command Block",
    server: "ktl.block.rerun",
    async run(ctx, arg) {
      const n = await pickBlock(ctx, arg, "Command block to run again");
      if (!n) return;
      const args = { sessionId: n.session.sessionId, block: n.block.index };
      if (n.session.state === "running") {
        await ctx.exec("ktl.block.rerun", { ...args, target: "shell" });
        return;
      }
      // The shell has ended: the command runs as its own session, in a terminal.
      const r = await ctx.exec<SessionResult>("ktl.block.rerun", { ...args, target: "run", detach: true });
      const s = await ctx.exec<Session>("ktl.session.get", { sessionId: r.sessionId });
      ctx.ui.refreshSessions();
      ctx.ui.openTerminal({ attach: s, title: `ktl: ${n.block.command}` });
    },
  },
  {
    id: "ktl.ui.block.copy",
    title: "Copy Command Block Output",
    server: "ktl.block.output",
    async run(ctx, arg) {
      const n = await pickBlock(ctx, arg, "Command block to copy the output of");
      if (!n) return;
      await ctx.ui.copy(await blockOutput(ctx, n));
      ctx.ui.info(`ktl: copied the output of ${n.block.command || blockRef(n.session.sessionId, n.block.index)}`);
    },
  },
  {
    id: "ktl.ui.block.compare",
    title: "Compare Command Block with…",
    server: "ktl.sessions.diff",
    async run(ctx, arg) {
      const a = await pickBlock(ctx, arg, "First command block (the earlier run)");
      if (!a) return;
      const b = await pickBlock(ctx, a.session, `Compare ${a.block.command} with…`);
      if (!b) return;
      const r = await ctx.exec<SessionsDiff>("ktl.sessions.diff", {
        a: blockRef(a.session.sessionId, a.block.index),
        b: blockRef(b.session.sessionId, b.block.index),
      });
      await ctx.ui.showDocument(compareDocument(r), "diff");
    },
  },
  {
    id: "ktl.ui.block.goto",
    title: "Go to Command Block…",
    server: "ktl.session.blocks",
    async run(ctx, arg) {
      const n = await pickBlock(ctx, arg, "Go to command block");
      if (!n) return;
      const v = blockItem(n.session.sessionId, n.block);
      await ctx.ui.showReadOnly(`${v.id}.log`, `$ ${n.block.command}\n${await blockOutput(ctx, n)}\n# ${v.description}\n`, "log");
    },
  },
];
