/** Exec into a pod or workload: a terminal on a `ktl.exec` session. */
import { ClusterItem, ExecSpec, execSpecOf, execTitle, itemTarget, ListAnswer, targetLabel } from "../k8s";
import { CommandContext, UiCommand } from "./context";
import { pickClusterTarget, promptWithWhy, str } from "./targets";

/** The last exec line typed, offered again next time. */
let lastExec: string | undefined;

/** `ktl.exec` arguments given as an object (a CodeLens, another extension), else undefined. */
export function execArg(arg: unknown): ExecSpec | undefined {
  if (!arg || typeof arg !== "object") return undefined;
  const a = arg as Record<string, unknown>;
  if (!str(a.pod) && !str(a.workload)) return undefined;
  const spec: ExecSpec = {};
  for (const k of ["pod", "workload", "namespace", "container", "context", "title"] as const) if (str(a[k])) spec[k] = a[k] as string;
  if (Array.isArray(a.command) && a.command.every((c) => typeof c === "string")) spec.command = a.command as string[];
  if (typeof a.tty === "boolean") spec.tty = a.tty;
  return spec;
}

/** A terminal on a new `ktl.exec` session (SessionTerminal starts it with the terminal's size). */
export function openExec(ctx: CommandContext, spec: ExecSpec): void {
  ctx.ui.openTerminal({ exec: spec, title: execTitle(spec) });
}

/** The container of a pod with several (the first is the default). */
async function pickContainer(ctx: CommandContext, item: ClusterItem, label: string): Promise<string | undefined | null> {
  const containers = (Array.isArray(item.containers) ? item.containers : []).filter((c) => typeof c === "string" && c !== "");
  if (containers.length < 2) return null;
  const picked = await ctx.ui.pick(
    containers.map((c, i) => ({ label: c, description: i === 0 ? "the pod's first" : undefined })),
    `Container in ${label}`,
  );
  return picked?.label;
}

/** ktl.exec arguments for a listed pod or workload (a pod with several containers: which). */
async function execSpecOfPick(ctx: CommandContext, item: ClusterItem, answer: ListAnswer): Promise<ExecSpec | undefined> {
  const target = itemTarget(item, answer);
  if (!target || "service" in target) return undefined;
  const spec: ExecSpec = { ...target };
  if ("pod" in target) {
    const container = await pickContainer(ctx, item, targetLabel(target));
    if (container === undefined) return undefined;
    if (container) spec.container = container;
  }
  return spec;
}

/** ktl.exec arguments typed in the input box (the previous line offered again). */
async function askExecSpec(ctx: CommandContext, why?: string): Promise<ExecSpec | undefined> {
  const line = await ctx.ui.input(promptWithWhy("Pod or workload to exec into: TARGET [-n NAMESPACE] [-c CONTAINER] [-- COMMAND]", why), {
    placeHolder: "deployment/web -n shop -- sh",
    value: lastExec,
  });
  if (!line) return undefined;
  const parsed = execSpecOf(line);
  if (typeof parsed === "string") {
    ctx.ui.error(`ktl exec: ${parsed}`);
    return undefined;
  }
  lastExec = line;
  return parsed;
}

export const EXEC_COMMANDS: UiCommand[] = [
  {
    id: "ktl.ui.exec",
    title: "Exec into Pod/Workload",
    server: "ktl.exec",
    gated: true,
    async run(ctx, arg) {
      let spec = execArg(arg);
      if (!spec) {
        const choice = await pickClusterTarget(ctx, "exec", "Exec into");
        if (!choice) return;
        spec = "item" in choice ? await execSpecOfPick(ctx, choice.item, choice.answer) : await askExecSpec(ctx, choice.why);
        if (!spec) return;
      }
      openExec(ctx, spec);
    },
  },
];
