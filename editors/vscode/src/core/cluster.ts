/**
 * The Cluster view's model: what `ktl/resources` says (docs/protocol.md, section 15) kept as a
 * tree of context -> namespace -> kind -> object -> owned objects, containers and Warning
 * events, with a filter. Host-independent: extension.ts turns entries into TreeItems.
 */
import { Exec } from "./types";

export interface Container {
  name: string;
  image?: string;
  ready: boolean;
  restarts: number;
  state: string;
  reason?: string;
  lastReason?: string;
  exitCode?: number;
}

export interface Warning {
  reason?: string;
  message?: string;
  count: number;
  last?: string;
}

export interface ClusterNode {
  uid: string;
  kind: string;
  apiVersion: string;
  name: string;
  namespace?: string;
  created?: string;
  resourceVersion?: string;
  owner?: string;
  ownerKind?: string;
  status?: string;
  health?: "ok" | "pending" | "warn" | "error";
  ready?: string;
  restarts?: number;
  containers?: Container[];
  warnings?: Warning[];
  endpoints?: string;
  ports?: string[];
  keys?: string[];
  type?: string;
  deleting?: boolean;
}

export interface StreamState {
  kind: string;
  plural: string;
  namespace?: string;
  state: "listing" | "watching" | "retrying" | "forbidden" | "error";
  message?: string;
}

export interface ResourcesParams {
  watchId: string;
  context: string;
  event: "snapshot" | "delta";
  resources?: ClusterNode[];
  added?: ClusterNode[];
  updated?: ClusterNode[];
  deleted?: string[];
  streams?: StreamState[];
}

export type Entry =
  | { type: "context"; context: string }
  | { type: "namespace"; context: string; namespace: string }
  | { type: "kind"; context: string; namespace: string; kind: string }
  | { type: "object"; context: string; node: ClusterNode }
  | { type: "container"; context: string; node: ClusterNode; container: Container }
  | { type: "warning"; context: string; node: ClusterNode; warning: Warning; index: number }
  | { type: "stream"; context: string; stream: StreamState };

/** Cluster-scoped objects (nodes, CRDs' cluster kinds) sit under this pseudo-namespace. */
export const CLUSTER_SCOPE = "(cluster)";

interface Watched {
  watchId: string;
  nodes: Map<string, ClusterNode>;
  streams: StreamState[];
}

export class ClusterModel {
  private readonly watched = new Map<string, Watched>();
  filter = "";

  /** Applies one notification; returns the contexts it changed. */
  apply(p: ResourcesParams): void {
    let w = this.watched.get(p.context);
    if (!w || w.watchId !== p.watchId || p.event === "snapshot") {
      w = { watchId: p.watchId, nodes: new Map(), streams: [] };
      this.watched.set(p.context, w);
    }
    for (const n of [...(p.resources ?? []), ...(p.added ?? []), ...(p.updated ?? [])]) w.nodes.set(n.uid, n);
    for (const uid of p.deleted ?? []) w.nodes.delete(uid);
    if (p.streams) w.streams = p.streams;
  }

  /** The context's watch ended: its objects go from the view. */
  forget(context: string): void {
    this.watched.delete(context);
  }

  watchOf(context: string): string | undefined {
    return this.watched.get(context)?.watchId;
  }

  node(context: string, uid: string): ClusterNode | undefined {
    return this.watched.get(context)?.nodes.get(uid);
  }

  children(entry?: Entry): Entry[] {
    if (!entry) return [...this.watched.keys()].sort().map((context) => ({ type: "context", context }));
    const w = this.watched.get(entry.context);
    if (!w) return [];
    const all = [...w.nodes.values()];
    const context = entry.context;
    switch (entry.type) {
      case "context": {
        const names = new Set<string>();
        for (const n of all) {
          if (n.kind === "Namespace") names.add(n.name);
          else names.add(n.namespace ?? CLUSTER_SCOPE);
        }
        for (const s of w.streams) if (s.namespace) names.add(s.namespace);
        const out: Entry[] = [...names]
          .filter((ns) => this.namespaceMatches(all, ns))
          .sort((a, b) => (a === CLUSTER_SCOPE ? 1 : b === CLUSTER_SCOPE ? -1 : a.localeCompare(b)))
          .map((namespace) => ({ type: "namespace", context, namespace }));
        const refused = w.streams.filter((s) => !s.namespace && s.state !== "watching" && s.state !== "listing");
        return [...refused.map((stream): Entry => ({ type: "stream", context, stream })), ...out];
      }
      case "namespace": {
        const kinds = new Set(this.tops(all, entry.namespace).map((n) => n.kind));
        const refused = w.streams.filter(
          (s) => s.namespace === entry.namespace && s.state !== "watching" && s.state !== "listing",
        );
        return [
          ...refused.map((stream): Entry => ({ type: "stream", context, stream })),
          ...[...kinds].sort(kindOrder).map((kind): Entry => ({ type: "kind", context, namespace: entry.namespace, kind })),
        ];
      }
      case "kind":
        return this.tops(all, entry.namespace)
          .filter((n) => n.kind === entry.kind)
          .sort((a, b) => a.name.localeCompare(b.name))
          .map((node) => ({ type: "object", context, node }));
      case "object": {
        const owned = all
          .filter((n) => n.owner === entry.node.uid && this.matches(all, n))
          .sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name))
          .map((node): Entry => ({ type: "object", context, node }));
        const containers = (entry.node.containers ?? []).map(
          (container): Entry => ({ type: "container", context, node: entry.node, container }),
        );
        const warnings = (entry.node.warnings ?? []).map(
          (warning, index): Entry => ({ type: "warning", context, node: entry.node, warning, index }),
        );
        return [...warnings, ...owned, ...containers];
      }
      default:
        return [];
    }
  }

  /** Objects shown at the kind level: those whose owner is not in the view (or none). */
  private tops(all: ClusterNode[], namespace: string): ClusterNode[] {
    const uids = new Set(all.map((n) => n.uid));
    return all.filter(
      (n) =>
        n.kind !== "Namespace" &&
        (n.namespace ?? CLUSTER_SCOPE) === namespace &&
        !(n.owner && uids.has(n.owner)) &&
        this.matches(all, n),
    );
  }

  private namespaceMatches(all: ClusterNode[], namespace: string): boolean {
    return !this.filter || this.tops(all, namespace).length > 0;
  }

  /** An object matches the filter when it or something it owns does. */
  matches(all: ClusterNode[], n: ClusterNode, depth = 0): boolean {
    if (!this.filter) return true;
    const f = this.filter.toLowerCase();
    const text = `${n.kind} ${n.name} ${n.status ?? ""}`.toLowerCase();
    if (text.includes(f)) return true;
    return depth < 4 && all.some((c) => c.owner === n.uid && this.matches(all, c, depth + 1));
  }
}

const KIND_ORDER = [
  "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "CronJob", "Job", "Pod", "Service", "Ingress",
  "ConfigMap", "Secret", "PersistentVolumeClaim", "Node",
];

function kindOrder(a: string, b: string): number {
  const i = KIND_ORDER.indexOf(a), j = KIND_ORDER.indexOf(b);
  return (i < 0 ? 99 : i) - (j < 0 ? 99 : j) || a.localeCompare(b);
}

export function age(created: string | undefined, now: number = Date.now()): string {
  const then = created ? Date.parse(created) : NaN;
  if (!Number.isFinite(then)) return "";
  const s = Math.max(0, Math.floor((now - then) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** A codicon and a theme colour per health. */
export const HEALTH_ICONS: Record<string, { icon: string; color?: string }> = {
  ok: { icon: "pass", color: "testing.iconPassed" },
  pending: { icon: "sync~spin", color: "charts.yellow" },
  warn: { icon: "warning", color: "list.warningForeground" },
  error: { icon: "error", color: "list.errorForeground" },
};

export interface EntryView {
  id: string;
  label: string;
  description: string;
  tooltip: string;
  icon: string;
  color?: string;
  contextValue: string;
  collapsible: boolean;
}

export function entryView(e: Entry, now: number = Date.now()): EntryView {
  switch (e.type) {
    case "context":
      return { id: `c:${e.context}`, label: e.context, description: "context", tooltip: `context ${e.context}`, icon: "server-environment", contextValue: "ktl.cluster.context", collapsible: true };
    case "namespace":
      return { id: `n:${e.context}/${e.namespace}`, label: e.namespace, description: "", tooltip: `namespace ${e.namespace} (context ${e.context})`, icon: "symbol-namespace", contextValue: "ktl.cluster.namespace", collapsible: true };
    case "kind":
      return { id: `k:${e.context}/${e.namespace}/${e.kind}`, label: e.kind, description: "", tooltip: e.kind, icon: "symbol-class", contextValue: "ktl.cluster.kind", collapsible: true };
    case "stream": {
      const where = e.stream.namespace ? ` in ${e.stream.namespace}` : "";
      return {
        id: `s:${e.context}/${e.stream.plural}/${e.stream.namespace ?? ""}`,
        label: `${e.stream.plural}${where}`,
        description: e.stream.state,
        tooltip: e.stream.message ?? e.stream.state,
        icon: e.stream.state === "forbidden" ? "lock" : e.stream.state === "retrying" ? "debug-disconnect" : "error",
        color: "list.warningForeground",
        contextValue: "ktl.cluster.stream",
        collapsible: false,
      };
    }
    case "warning":
      return {
        id: `w:${e.context}/${e.node.uid}/${e.index}`,
        label: `${e.warning.reason ?? "Warning"}${e.warning.count > 1 ? ` (x${e.warning.count})` : ""}`,
        description: e.warning.message ?? "",
        tooltip: e.warning.message ?? "",
        icon: "warning",
        color: "list.warningForeground",
        contextValue: "ktl.cluster.warning",
        collapsible: false,
      };
    case "container": {
      const c = e.container;
      const health = c.ready ? "ok" : c.reason && /BackOff|Err|OOM|Error/.test(c.reason) ? "error" : "pending";
      const bits = [c.reason ?? c.state];
      if (c.restarts) bits.push(`restarts ${c.restarts}`);
      if (c.lastReason) bits.push(`last ${c.lastReason}`);
      return {
        id: `ct:${e.context}/${e.node.uid}/${c.name}`,
        label: c.name,
        description: bits.join(" · "),
        tooltip: `${c.image ?? ""}\n${bits.join("\n")}`,
        icon: HEALTH_ICONS[health].icon,
        color: HEALTH_ICONS[health].color,
        contextValue: "ktl.cluster.container",
        collapsible: false,
      };
    }
    case "object": {
      const n = e.node;
      const style = HEALTH_ICONS[n.health ?? ""] ?? { icon: "circle-outline" };
      const bits: string[] = [];
      if (n.ready) bits.push(n.ready);
      if (n.status && n.status !== n.ready) bits.push(n.status);
      if (n.restarts) bits.push(`${n.restarts} restarts`);
      if (n.endpoints) bits.push(`endpoints ${n.endpoints}`);
      if (n.keys) bits.push(`${n.keys.length} keys`);
      const a = age(n.created, now);
      if (a) bits.push(a);
      const hasChildren = Boolean(n.containers?.length || n.warnings?.length || ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"].includes(n.kind));
      return {
        id: `o:${e.context}/${n.uid}`,
        label: n.name,
        description: bits.join(" · "),
        tooltip: `${n.kind} ${n.namespace ? `${n.namespace}/` : ""}${n.name}\n${bits.join("\n")}${n.warnings?.length ? `\n${n.warnings.length} Warning events` : ""}`,
        icon: n.deleting ? "trash" : style.icon,
        color: style.color,
        contextValue: `ktl.cluster.object.${n.kind}`,
        collapsible: hasChildren,
      };
    }
  }
}

/** What the delete confirmation asks: the object and the context it is deleted from. */
export function deletePrompt(n: ClusterNode, context: string): string {
  const where = n.namespace ? ` in namespace ${n.namespace}` : "";
  return `Delete ${n.kind} ${n.name}${where} from context ${context}?`;
}

/** The logs/exec/port-forward target of an object (`pod/web-1`, `deployment/web`), if any. */
export function targetOf(n: ClusterNode): { pod?: string; workload?: string } | undefined {
  if (n.kind === "Pod") return { pod: n.name };
  if (["Deployment", "StatefulSet", "DaemonSet", "Job"].includes(n.kind)) return { workload: `${n.kind.toLowerCase()}/${n.name}` };
  if (n.kind === "Service") return { workload: `service/${n.name}` };
  return undefined;
}

/** The arguments every object command shares. */
export function objectArgs(n: ClusterNode, context: string): { kind: string; name: string; namespace?: string; context: string } {
  return { kind: n.kind, name: n.name, namespace: n.namespace, context };
}

/** Starts (or keeps) a watch of `context` (undefined: the picked one); returns its id. */
export async function startWatch(exec: Exec, context?: string): Promise<{ watchId: string; context: string }> {
  return exec<{ watchId: string; context: string }>("ktl.k8s.watch", context ? { context, detach: true } : { detach: true });
}
