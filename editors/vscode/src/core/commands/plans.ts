/** Plans and stacks (`ktl.plan.run`) and cancelling one of their nodes. */
import { nodeOf } from "../sessions";
import { FINAL_STATES, PlanResult, Session, SessionResult } from "../types";
import { CommandContext, resultText, sessionArg, UiCommand, uriArg } from "./context";

/** The one-line result of a plan with its nodes counted by state. */
export function planSummary(r: PlanResult): string {
  const counts = new Map<string, number>();
  for (const n of r.nodes ?? []) counts.set(n.state, (counts.get(n.state) ?? 0) + 1);
  const parts = [...counts].map(([state, n]) => `${n} ${state}`);
  return `${resultText("plan", r)}${parts.length ? ` · ${parts.join(", ")}` : ""}`;
}

/**
 * Runs a plan (`ktl.plan.run` detached): a terminal on the plan session, then a summary naming
 * the nodes that did not finish. `args`: the command's (`uri`, `nodes`, ...; the "Run" lens's).
 */
export async function runPlan(ctx: CommandContext, args: { uri: string } & Record<string, unknown>): Promise<void> {
  const started = await ctx.exec<PlanResult>("ktl.plan.run", { ...args, detach: true });
  const name = args.uri.replace(/^.*\//, "");
  const plan = await ctx.exec<Session>("ktl.session.get", { sessionId: started.sessionId });
  ctx.ui.openTerminal({ attach: plan, title: `ktl plan: ${name}` });
  ctx.ui.refreshSessions();
  if (FINAL_STATES.has(started.state)) return ctx.ui.info(planSummary(started));
  const end = await ctx.exec<SessionResult>("ktl.session.wait", { sessionId: started.sessionId });
  ctx.ui.refreshSessions();
  const nodes = await ctx.exec<{ sessions: Session[] }>("ktl.sessions.list", { parentId: started.sessionId, limit: 500, remote: false }).then(
    (r) => r.sessions,
    () => [] as Session[],
  );
  const failed = nodes.filter((n) => n.state !== "done" && FINAL_STATES.has(n.state)).map((n) => nodeOf(n) ?? n.sessionId);
  const msg = resultText(`plan ${name}`, end) + (failed.length ? ` · not done: ${[...new Set(failed)].join(", ")}` : "");
  if (end.state === "done") ctx.ui.info(msg);
  else ctx.ui.error(msg);
}

export const PLAN_COMMANDS: UiCommand[] = [
  {
    id: "ktl.ui.plan.run",
    title: "Run Plan / Stack…",
    server: "ktl.plan.run",
    gated: true,
    async run(ctx, arg) {
      const uri = uriArg(ctx, arg);
      if (!uri) return ctx.ui.error("ktl: open a plan (*.plan.yaml, ktl-plan.yaml) or a stack.yaml first");
      await runPlan(ctx, { uri });
    },
  },
  {
    id: "ktl.ui.plan.cancelNode",
    title: "Cancel Plan Node",
    server: "ktl.plan.cancelNode",
    gated: true,
    async run(ctx, arg) {
      const s = sessionArg(arg);
      const node = s && nodeOf(s);
      if (!s || !s.parentId || !node) return ctx.ui.error("ktl: pick a running plan node in the Sessions view");
      await ctx.exec("ktl.plan.cancelNode", { sessionId: s.parentId, node });
      ctx.ui.refreshSessions();
    },
  },
];
