/** Compare Two Sessions: a unified diff of their output with exit codes and durations. */
import { formatDuration, quickPickLabel } from "../sessions";
import { describeEnd } from "../terminal";
import { Session, SessionsDiff } from "../types";
import { pickSession, sessionArg, UiCommand } from "./context";

function exitText(code: number | null | undefined): string {
  return code === undefined || code === null ? "none" : String(code);
}

/** The text of a comparison (a unified diff the "diff" language colours, with a header). */
export function compareDocument(r: SessionsDiff): string {
  const side = (s: Session) => `${s.title || s.sessionId} (${s.sessionId}, ${describeEnd(s)}, ${s.createdAt})`;
  const delta = r.durationDeltaMs;
  const lines = [
    `# ktl: compare two sessions`,
    `# a: ${side(r.a)}`,
    `# b: ${side(r.b)}`,
    `# exit codes: ${exitText(r.exitCodes[0])} -> ${exitText(r.exitCodes[1])}${r.exitCodes[0] === r.exitCodes[1] ? " (same)" : ""}`,
    `# duration: ${delta >= 0 ? "+" : "-"}${formatDuration(Math.abs(delta))} (b - a)`,
  ];
  if (r.truncated) lines.push("# output truncated: only the first lines were compared");
  lines.push("");
  lines.push(r.outputDiff ? r.outputDiff.replace(/\n$/, "") : "(the output is the same, volatile tokens aside)");
  return `${lines.join("\n")}\n`;
}

/** Two sessions given by a multi-selection in the Sessions view, if exactly two are selected. */
function selectedPair(selected: unknown): [Session, Session] | undefined {
  if (!Array.isArray(selected)) return undefined;
  const sessions = selected.map(sessionArg).filter((s): s is Session => s !== undefined);
  if (sessions.length !== 2) return undefined;
  // the older one first, so the diff reads "what changed since"
  const [x, y] = sessions;
  return x.createdAt <= y.createdAt ? [x, y] : [y, x];
}

export const COMPARE_COMMANDS: UiCommand[] = [
  {
    id: "ktl.ui.sessions.diff",
    title: "Compare Two Sessions…",
    server: "ktl.sessions.diff",
    gated: true,
    async run(ctx, arg, selected) {
      let pair = selectedPair(selected);
      if (!pair) {
        const a = await pickSession(ctx, arg, {}, "First session (the earlier run)");
        if (!a) return;
        const { sessions } = await ctx.exec<{ sessions: Session[] }>("ktl.sessions.list", { limit: 200 });
        const others = sessions.filter((s) => s.sessionId !== a.sessionId);
        if (others.length === 0) return ctx.ui.info("ktl: no other session to compare with");
        const picked = await ctx.ui.pick(
          others.map((s) => ({ ...quickPickLabel(s), session: s })),
          `Compare ${a.title || a.sessionId} with…`,
        );
        if (!picked) return;
        pair = [a, picked.session];
      }
      const r = await ctx.exec<SessionsDiff>("ktl.sessions.diff", { a: pair[0].sessionId, b: pair[1].sessionId });
      await ctx.ui.showDocument(compareDocument(r), "diff");
    },
  },
];
