/**
 * The registry of the extension's commands (`ktl.ui.*`, one module per area under commands/)
 * and the CodeLens commands the extension runs itself. Host-independent: extension.ts registers
 * them over the vscode API and implements `Ui`.
 */
import { BLOCK_COMMANDS } from "./commands/blocks";
import { CLUSTER_COMMANDS } from "./commands/cluster";
import { COMPARE_COMMANDS } from "./commands/compare";
import { CommandContext, UiCommand } from "./commands/context";
import { EXEC_COMMANDS, execArg, openExec } from "./commands/exec";
import { EXPORT_COMMANDS } from "./commands/exports";
import { openRender } from "./commands/helm";
import { FORWARD_COMMANDS, portForwardArg, startPortForward } from "./commands/forwards";
import { followLogs, K8S_COMMANDS } from "./commands/k8s";
import { MANIFEST_COMMANDS } from "./commands/manifests";
import { PLAN_COMMANDS, runPlan } from "./commands/plans";
import { SESSION_COMMANDS } from "./commands/sessions";

export type { CommandContext, Ui, UiCommand } from "./commands/context";

/** Server commands whose CodeLens the extension handles itself (language client middleware). */
export const LENS_COMMANDS: ReadonlySet<string> = new Set(["ktl.exec", "ktl.portForward", "ktl.logs", "ktl.plan.run", "ktl.helm.render"]);

/**
 * A server command run through VS Code (a CodeLens click: the lens's command id is the server's).
 * Ones that start an interactive or endless session get the UI the palette commands give:
 * `ktl.exec` a terminal, `ktl.logs` and `ktl.plan.run` a terminal on the detached session,
 * `ktl.portForward` the "Forwarding ..." message; `ktl.helm.render` opens the rendered manifests
 * read-only. Calls that ask for `detach` themselves, and
 * every other command, go to the server as they are (`next`).
 */
export async function lensCommand(
  ctx: CommandContext,
  command: string,
  args: unknown[],
  next: (command: string, args: unknown[]) => Promise<unknown>,
): Promise<unknown> {
  const a = args[0];
  if (!LENS_COMMANDS.has(command) || !a || typeof a !== "object" || "detach" in a) return next(command, args);
  const obj = a as Record<string, unknown>;
  if (command === "ktl.exec") {
    const spec = execArg(obj);
    if (!spec) return next(command, args);
    openExec(ctx, spec);
    return undefined;
  }
  if (command === "ktl.portForward") {
    const spec = portForwardArg(obj);
    if (!spec) return next(command, args);
    return startPortForward(ctx, spec);
  }
  if (command === "ktl.logs") return followLogs(ctx, obj);
  if (command === "ktl.helm.render") return openRender(ctx, args, next);
  if (typeof obj.uri !== "string") return next(command, args);
  return runPlan(ctx, obj as { uri: string } & Record<string, unknown>);
}

/** Every UI command; the gated ones are hidden until the server advertises their server command. */
export const COMMANDS: UiCommand[] = [
  ...SESSION_COMMANDS,
  ...BLOCK_COMMANDS,
  ...EXPORT_COMMANDS,
  ...COMPARE_COMMANDS,
  ...PLAN_COMMANDS,
  ...MANIFEST_COMMANDS,
  ...K8S_COMMANDS,
  ...EXEC_COMMANDS,
  ...FORWARD_COMMANDS,
  ...CLUSTER_COMMANDS,
];
