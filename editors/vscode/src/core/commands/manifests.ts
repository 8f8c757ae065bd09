/** Apply / diff / delete / verify the manifest in the active editor. */
import { SessionResult } from "../types";
import { CommandContext, resultText, UiCommand } from "./context";

/** Runs `command` on the active editor's manifest; a diff opens as a document, else a one-line result. */
async function uriCommand(ctx: CommandContext, command: string, title: string): Promise<void> {
  const uri = ctx.ui.activeUri();
  if (!uri) {
    ctx.ui.error(`ktl ${title}: open a manifest first`);
    return;
  }
  const r = await ctx.exec<SessionResult & { diff?: string }>(command, { uri });
  if (typeof r.diff === "string" && r.diff) await ctx.ui.showDocument(r.diff, "diff");
  else ctx.ui.info(resultText(title, r));
  ctx.ui.refreshSessions();
}

export const MANIFEST_COMMANDS: UiCommand[] = [
  {
    id: "ktl.ui.apply",
    title: "Apply This Manifest",
    server: "ktl.apply",
    gated: true,
    run: (ctx) => uriCommand(ctx, "ktl.apply", "apply"),
  },
  {
    id: "ktl.ui.diff",
    title: "Diff This Manifest Against the Cluster",
    server: "ktl.diff",
    gated: true,
    run: (ctx) => uriCommand(ctx, "ktl.diff", "diff"),
  },
  {
    id: "ktl.ui.delete",
    title: "Delete This Manifest's Resources",
    server: "ktl.delete",
    gated: true,
    run: (ctx) => uriCommand(ctx, "ktl.delete", "delete"),
  },
  {
    id: "ktl.ui.verify",
    title: "Verify This Manifest's Resources",
    server: "ktl.verify",
    gated: true,
    run: (ctx) => uriCommand(ctx, "ktl.verify", "verify"),
  },
];
