/** Kubernetes commands: follow logs, switch context and namespace. */
import {
  ContextsAnswer,
  contextPickItems,
  itemTarget,
  ListAnswer,
  namespacePickItems,
  namespacesOf,
  selectionOf,
  targetLabel,
  UseAnswer,
} from "../k8s";
import { Session, SessionResult } from "../types";
import { CommandContext, UiCommand } from "./context";
import { pickClusterTarget, promptWithWhy } from "./targets";

/** Follows logs (`ktl.logs` detached) in a terminal on the log session. */
export async function followLogs(ctx: CommandContext, args: Record<string, unknown>, title?: string): Promise<void> {
  const r = await ctx.exec<SessionResult>("ktl.logs", { ...args, detach: true });
  const s = await ctx.exec<Session>("ktl.session.get", { sessionId: r.sessionId });
  ctx.ui.openTerminal({ attach: s, title: title ?? `ktl logs: ${targetLabel(args)}` });
  ctx.ui.refreshSessions();
}

export const K8S_COMMANDS: UiCommand[] = [
  {
    id: "ktl.ui.logs",
    title: "Follow Logs…",
    server: "ktl.logs",
    gated: true,
    async run(ctx) {
      const choice = await pickClusterTarget(ctx, "logs", "Follow the logs of");
      if (!choice) return;
      if ("item" in choice) {
        const target = itemTarget(choice.item, choice.answer);
        if (!target || "service" in target) return;
        return followLogs(ctx, target, `ktl logs: ${targetLabel(target)}`);
      }
      const t = (await ctx.ui.input(promptWithWhy("Pod, kind/name or label selector", choice.why), { placeHolder: "deployment/web" }))?.trim();
      if (!t) return;
      const target = t.includes("/") ? { workload: t } : t.includes("=") ? { selector: t } : { pod: t };
      await followLogs(ctx, target, `ktl logs: ${t}`);
    },
  },
  {
    id: "ktl.ui.k8s.context",
    title: "Switch Kubernetes Context",
    server: "ktl.k8s.contexts",
    gated: true,
    async run(ctx, arg) {
      const a = await ctx.exec<ContextsAnswer>("ktl.k8s.contexts", {});
      let name = typeof arg === "string" ? arg : undefined;
      if (name === undefined) {
        if (!a.contexts?.length) return ctx.ui.error(`ktl: no Kubernetes contexts${a.error ? `: ${a.error}` : " in the kubeconfig"}`);
        const picked = await ctx.ui.pick(contextPickItems(a, ctx.ui.k8sSelection()), `Kubernetes context for this workspace (active: ${a.current ?? "none"})`);
        if (!picked) return;
        name = picked.context;
      }
      // another context starts from its own namespace; re-picking the active one keeps it
      const args = name !== "" && name === a.current ? { context: name } : { context: name, namespace: "" };
      const r = await ctx.exec<UseAnswer>("ktl.k8s.use", args);
      await ctx.ui.k8sChanged(selectionOf(r));
    },
  },
  {
    id: "ktl.ui.k8s.namespace",
    title: "Switch Namespace",
    server: "ktl.k8s.use",
    gated: true,
    async run(ctx, arg) {
      let ns = typeof arg === "string" ? arg.trim() : undefined;
      if (ns === undefined) {
        const a = await ctx.exec<ContextsAnswer>("ktl.k8s.contexts", {});
        if (!a.current) return ctx.ui.error(`ktl: no Kubernetes context${a.error ? `: ${a.error}` : ""}`);
        // the cluster's namespaces too, when it can be listed
        const listed = await ctx.exec<ListAnswer>("ktl.k8s.list", { kinds: ["namespaces"] }).then(namespacesOf, () => [] as string[]);
        const items = namespacePickItems({ ...a, namespaces: [...(a.namespaces ?? []), ...listed] });
        const picked = await ctx.ui.pick(items, `Namespace for this workspace (context ${a.current})`);
        if (!picked) return;
        ns = picked.namespace;
        if (ns === undefined) {
          ns = (await ctx.ui.input("Namespace", { placeHolder: "kube-system" }))?.trim();
          if (!ns) return;
        }
      }
      const r = await ctx.exec<UseAnswer>("ktl.k8s.use", { namespace: ns });
      await ctx.ui.k8sChanged(selectionOf(r));
    },
  },
];
