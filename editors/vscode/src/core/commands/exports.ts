/** Export Session: a recording saved as asciicast, a player page or NDJSON. */
import { Session } from "../types";
import { pickSession, UiCommand } from "./context";

/** Default file name for an export: title slug + id prefix + the format's extension. */
export function exportFileName(s: Session, format: string): string {
  const ext = format === "asciicast" ? "cast" : format === "ndjson" ? "ndjson" : "html";
  const slug = (s.title || "session")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  return `${slug || "session"}-${s.sessionId.slice(0, 8)}.${ext}`;
}

export const EXPORT_COMMANDS: UiCommand[] = [
  {
    id: "ktl.ui.session.export",
    title: "Export Session…",
    server: "ktl.session.export",
    gated: true,
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (!s) return;
      const format = await ctx.ui.pick(
        [
          { label: "asciicast", description: "asciinema v2 (.cast)" },
          { label: "html", description: "a self-contained player page" },
          { label: "ndjson", description: "every frame, one JSON object a line" },
        ],
        "Export format",
      );
      if (!format) return;
      const path = await ctx.ui.saveUri(exportFileName(s, format.label));
      if (!path) return; // the save dialog was cancelled
      const r = await ctx.exec<{ path: string }>("ktl.session.export", { sessionId: s.sessionId, format: format.label, path });
      ctx.ui.info(`ktl: exported ${s.sessionId.slice(0, 8)} to ${r.path}`);
    },
  },
];
