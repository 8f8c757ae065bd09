/** Picking what a Kubernetes command acts on: from `ktl.k8s.list`, else typed in an input box. */
import { ClusterItem, LIST_KINDS, ListAnswer, PURPOSE_WHAT, targetPickItems, TargetPurpose } from "../k8s";
import { CommandContext } from "./context";

/** A non-empty string argument, else undefined. */
export function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A listed resource picked for a command, or "ask with the input box" (`why`: no list). */
export type TargetChoice = { item: ClusterItem; answer: ListAnswer } | { typed: true; why?: string };

/**
 * Picks what `purpose` acts on from `ktl.k8s.list` (the workspace's context and namespace).
 * `{typed}` when the user chose "Type a name…", or there is no list to pick from (no cluster,
 * RBAC, nothing running: `why` says so); undefined when the pick was dismissed.
 */
export async function pickClusterTarget(ctx: CommandContext, purpose: TargetPurpose, title: string): Promise<TargetChoice | undefined> {
  let answer: ListAnswer;
  try {
    answer = await ctx.exec<ListAnswer>("ktl.k8s.list", { kinds: LIST_KINDS[purpose] });
  } catch (e) {
    return { typed: true, why: `could not list the cluster: ${errorText(e)}` };
  }
  const items = targetPickItems(answer, purpose);
  if (items.length <= 1) return { typed: true, why: `no ${PURPOSE_WHAT[purpose]} in namespace ${answer?.namespace ?? "?"}` };
  const picked = await ctx.ui.pick(items, `${title} (context ${answer.context}, namespace ${answer.namespace})`);
  if (!picked) return undefined;
  return picked.item ? { item: picked.item, answer } : { typed: true };
}

/** The input box's prompt, with why there was no list to pick from. */
export function promptWithWhy(prompt: string, why?: string): string {
  return why ? `${why.charAt(0).toUpperCase()}${why.slice(1)}. ${prompt}` : prompt;
}
