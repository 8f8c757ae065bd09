/** The Cluster view's context-menu actions on an object (tree entries of src/core/cluster.ts). */
import { ClusterNode, deletePrompt, Entry, objectArgs, targetOf } from "../cluster";
import { targetLabel } from "../k8s";
import { SessionResult } from "../types";
import { CommandContext, resultText, UiCommand } from "./context";
import { openExec } from "./exec";
import { startPortForward } from "./forwards";
import { followLogs } from "./k8s";

/** The object (and its context) a tree entry stands for; a container stands for its pod. */
export function objectOf(arg: unknown): { node: ClusterNode; context: string; container?: string } | undefined {
  const e = arg as Entry | undefined;
  if (!e || typeof e !== "object" || !("type" in e)) return undefined;
  if (e.type === "object" || e.type === "warning") return { node: e.node, context: e.context };
  if (e.type === "container") return { node: e.node, context: e.context, container: e.container.name };
  return undefined;
}

async function done(ctx: CommandContext, title: string, r: SessionResult): Promise<void> {
  if (r.state === "done") ctx.ui.info(`${title}: done`);
  else ctx.ui.error(resultText(title, r));
  ctx.ui.refreshSessions();
}

function label(n: ClusterNode, context: string): string {
  return `${n.kind} ${n.namespace ? `${n.namespace}/` : ""}${n.name} (context ${context})`;
}

export const CLUSTER_COMMANDS: UiCommand[] = [
  {
    id: "ktl.ui.cluster.describe",
    title: "Describe",
    server: "ktl.k8s.describe",
    gated: true,
    async run(ctx, arg) {
      const o = objectOf(arg);
      if (!o) return;
      const r = await ctx.exec<{ text: string }>("ktl.k8s.describe", objectArgs(o.node, o.context));
      await ctx.ui.showDocument(r.text, "plaintext");
    },
  },
  {
    id: "ktl.ui.cluster.yaml",
    title: "Show Live YAML",
    server: "ktl.k8s.get",
    gated: true,
    async run(ctx, arg) {
      const o = objectOf(arg);
      if (!o) return;
      const r = await ctx.exec<{ yaml: string }>("ktl.k8s.get", objectArgs(o.node, o.context));
      await ctx.ui.showDocument(r.yaml, "yaml");
    },
  },
  {
    id: "ktl.ui.cluster.scale",
    title: "Scale…",
    server: "ktl.k8s.scale",
    gated: true,
    async run(ctx, arg) {
      const o = objectOf(arg);
      if (!o) return;
      const current = o.node.ready?.split("/")[1] ?? "1";
      const text = await ctx.ui.input(`Replicas of ${label(o.node, o.context)}`, { value: current });
      if (text === undefined) return;
      const replicas = Number(text.trim());
      if (!Number.isInteger(replicas) || replicas < 0) return ctx.ui.error(`not a number of replicas: ${text}`);
      const r = await ctx.exec<SessionResult>("ktl.k8s.scale", { ...objectArgs(o.node, o.context), replicas });
      await done(ctx, `scale ${o.node.name} to ${replicas}`, r);
    },
  },
  {
    id: "ktl.ui.cluster.restart",
    title: "Rollout Restart",
    server: "ktl.k8s.restart",
    gated: true,
    async run(ctx, arg) {
      const o = objectOf(arg);
      if (!o || !(await ctx.ui.confirm(`Restart the pods of ${label(o.node, o.context)}?`, "Restart"))) return;
      const r = await ctx.exec<SessionResult>("ktl.k8s.restart", objectArgs(o.node, o.context));
      await done(ctx, `restart ${o.node.name}`, r);
    },
  },
  {
    id: "ktl.ui.cluster.delete",
    title: "Delete…",
    server: "ktl.k8s.delete",
    gated: true,
    async run(ctx, arg) {
      const o = objectOf(arg);
      if (!o || !(await ctx.ui.confirm(deletePrompt(o.node, o.context), "Delete"))) return;
      const r = await ctx.exec<SessionResult>("ktl.k8s.delete", { ...objectArgs(o.node, o.context), propagation: "Background" });
      await done(ctx, `delete ${o.node.name}`, r);
    },
  },
  {
    id: "ktl.ui.cluster.logs",
    title: "Follow Logs",
    server: "ktl.logs",
    gated: true,
    async run(ctx, arg) {
      const o = objectOf(arg);
      const target = o && targetOf(o.node);
      if (!o || !target || o.node.kind === "Service") return;
      await followLogs(ctx, { ...target, namespace: o.node.namespace, context: o.context, container: o.container }, `ktl logs: ${targetLabel(target)}`);
    },
  },
  {
    id: "ktl.ui.cluster.exec",
    title: "Exec",
    server: "ktl.exec",
    gated: true,
    async run(ctx, arg) {
      const o = objectOf(arg);
      const target = o && targetOf(o.node);
      if (!o || !target || o.node.kind === "Service") return;
      openExec(ctx, { ...target, namespace: o.node.namespace, context: o.context, container: o.container });
    },
  },
  {
    id: "ktl.ui.cluster.portForward",
    title: "Port-forward…",
    server: "ktl.portForward",
    gated: true,
    async run(ctx, arg) {
      const o = objectOf(arg);
      const target = o && targetOf(o.node);
      if (!o || !target) return;
      const ports = await ctx.ui.input(`Ports of ${label(o.node, o.context)} (local:remote or :remote)`, { placeHolder: ":8080" });
      if (!ports?.trim()) return;
      const spec = o.node.kind === "Service" ? { service: o.node.name } : target;
      await startPortForward(ctx, { ...spec, namespace: o.node.namespace, context: o.context, ports: ports.trim().split(/\s+/) });
    },
  },
];
