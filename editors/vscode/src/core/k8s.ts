/**
 * The Kubernetes surfaces: the active context/namespace (`ktl.k8s.contexts`, `ktl.k8s.use`),
 * targets for `ktl.exec` / `ktl.portForward` and what their answers show, and the quick picks
 * of what the cluster runs (`ktl.k8s.list`). Pure logic (no `vscode`): the commands using it
 * live in commands.ts and commands/, the status bar in extension.ts.
 */
import { Exec, Session, SessionResult } from "./types";

/** One kubeconfig context as `ktl.k8s.contexts` lists it. */
export interface KubeContext {
  name: string;
  cluster?: string | null;
  namespace?: string | null;
  /** How the server's settings guard it (k8s.protectedContexts / k8s.readOnlyContexts); absent: open. */
  protection?: "protected" | "read-only";
}

/**
 * `ktl.k8s.contexts`: `current` is the workspace's context (the one picked with `ktl.k8s.use`,
 * else the kubeconfig's current-context), `namespace` the picked namespace (null: the context's).
 * Without a usable kubeconfig: `{current: null, contexts: [], error}`.
 */
export interface ContextsAnswer {
  current: string | null;
  contexts: KubeContext[];
  namespace?: string | null;
  /** Namespaces of the cluster, when the server lists them (optional). */
  namespaces?: string[];
  kubeconfig?: string[];
  error?: string;
}

/** `ktl.k8s.use`'s answer: the workspace's picks (null: the kubeconfig's / the context's). */
export interface UseAnswer {
  context: string | null;
  namespace: string | null;
}

/** What the user picked for this workspace (kept across server restarts). */
export interface K8sSelection {
  context?: string;
  namespace?: string;
}

/** The Kubernetes part of the status bar. */
export interface K8sStatus {
  context?: string;
  namespace?: string;
  cluster?: string;
  /** Changes to this context ask first ("protected") or are refused ("read-only"). */
  protection?: "protected" | "read-only";
  /** Why there is no context (no kubeconfig, a broken one). */
  error?: string;
}

function text(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** The context, its cluster and the namespace commands use (picked, else the context's, else "default"). */
export function k8sStatusOf(a: ContextsAnswer): K8sStatus {
  const context = text(a.current);
  if (!context) return a.error ? { error: a.error } : {};
  const info = (a.contexts ?? []).find((c) => c.name === context);
  return {
    context,
    cluster: text(info?.cluster),
    namespace: text(a.namespace) ?? text(info?.namespace) ?? "default",
    ...(info?.protection ? { protection: info.protection } : {}),
  };
}

export function selectionOf(r: UseAnswer): K8sSelection | undefined {
  const sel: K8sSelection = {};
  if (text(r.context)) sel.context = r.context as string;
  if (text(r.namespace)) sel.namespace = r.namespace as string;
  return sel.context || sel.namespace ? sel : undefined;
}

/** The status bar's tooltip. */
export function statusTooltip(running: number, k8s: K8sStatus): string {
  const lines = [running === 1 ? "ktl: 1 running session" : `ktl: ${running} running sessions`];
  if (k8s.context) {
    lines.push(`Kubernetes context ${k8s.context}${k8s.cluster ? ` (cluster ${k8s.cluster})` : ""}, namespace ${k8s.namespace ?? "default"}`);
    if (k8s.protection === "protected") lines.push("Protected context: each change asks for approval");
    if (k8s.protection === "read-only") lines.push("Read-only context: changes are refused");
    lines.push("Click to switch the context");
  } else {
    if (k8s.error) lines.push(`No Kubernetes context: ${k8s.error}`);
    lines.push("Click to pick a session");
  }
  return lines.join("\n");
}

export interface ContextPick {
  label: string;
  description?: string;
  detail?: string;
  /** The `ktl.k8s.use` context ("" goes back to the kubeconfig's current-context). */
  context: string;
}

/** Quick-pick items for the context picker: every context, the active one marked. */
export function contextPickItems(a: ContextsAnswer, selection?: K8sSelection): ContextPick[] {
  const items: ContextPick[] = (a.contexts ?? []).map((c) => {
    const parts = [];
    if (c.name === a.current) parts.push("active");
    if (text(c.cluster)) parts.push(`cluster ${c.cluster}`);
    if (text(c.namespace)) parts.push(`namespace ${c.namespace}`);
    return { label: `${c.name === a.current ? "$(check)" : "$(blank)"} ${c.name}`, description: parts.join(" · "), context: c.name };
  });
  if (selection?.context) {
    items.push({ label: "$(discard) Kubeconfig's current-context", description: "forget this workspace's pick", context: "" });
  }
  return items;
}

export interface NamespacePick {
  label: string;
  description?: string;
  /** The `ktl.k8s.use` namespace ("" goes back to the context's); undefined: ask for one. */
  namespace?: string;
}

/** Quick-pick items for the namespace picker: the known namespaces, "Other…", and a reset. */
export function namespacePickItems(a: ContextsAnswer): NamespacePick[] {
  const status = k8sStatusOf(a);
  const contextNs = text((a.contexts ?? []).find((c) => c.name === a.current)?.namespace);
  const names: string[] = [];
  const add = (n: unknown) => {
    const t = text(n);
    if (t && !names.includes(t)) names.push(t);
  };
  add(status.namespace);
  for (const n of a.namespaces ?? []) add(n);
  add(contextNs);
  for (const c of a.contexts ?? []) add(c.namespace);
  add("default");
  const items: NamespacePick[] = names.map((n) => ({
    label: `${n === status.namespace ? "$(check)" : "$(blank)"} ${n}`,
    description: n === status.namespace ? "active" : n === contextNs ? "the context's" : undefined,
    namespace: n,
  }));
  items.push({ label: "$(edit) Other namespace…" });
  if (text(a.namespace)) {
    items.push({ label: "$(discard) The context's namespace", description: contextNs ?? "default", namespace: "" });
  }
  return items;
}

// -- targets --------------------------------------------------------------------------------

export type Target = { pod: string } | { workload: string } | { service: string };

const POD_KINDS = new Set(["pod", "po", "pods"]);
const SERVICE_KINDS = new Set(["service", "svc", "services"]);

/** `web-0`, `pod/web-0`, `svc/web`, `deployment/web` (what kubectl accepts). */
export function parseTarget(t: string): Target | undefined {
  const s = t.trim();
  if (!s || /\s/.test(s)) return undefined;
  const slash = s.indexOf("/");
  if (slash < 0) return { pod: s };
  const kind = s.slice(0, slash).toLowerCase();
  const name = s.slice(slash + 1);
  if (!kind || !name || name.includes("/")) return undefined;
  if (POD_KINDS.has(kind)) return { pod: name };
  if (SERVICE_KINDS.has(kind)) return { service: name };
  return { workload: s };
}

/** `pod/web-0`, `service/web`, `deployment/web` (the server's label). */
export function targetLabel(t: Partial<{ pod: unknown; workload: unknown; service: unknown }>): string {
  if (text(t.pod)) return `pod/${t.pod}`;
  if (text(t.service)) return `service/${t.service}`;
  return text(t.workload) ?? "?";
}

/** Splits a command line like a shell would (quotes and backslashes; no expansion). */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let has = false;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      has = true;
    } else if (ch === "\\" && i + 1 < line.length) {
      cur += line[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = "";
      has = false;
    } else {
      cur += ch;
    }
  }
  if (has || cur) out.push(cur);
  return out;
}

/** What `[-n NS] [-c CONTAINER] [--context C] TARGET [ARGS...] [-- COMMAND...]` says. */
export interface TargetLine {
  target?: string;
  namespace?: string;
  container?: string;
  context?: string;
  /** Words after the target (port-forward's ports). */
  rest: string[];
  /** After `--` (exec's command). */
  command?: string[];
  error?: string;
}

const OPTIONS: Record<string, "namespace" | "container" | "context"> = {
  "-n": "namespace",
  "--namespace": "namespace",
  "-c": "container",
  "--container": "container",
  "--context": "context",
};

export function parseTargetLine(line: string): TargetLine {
  const words = splitArgs(line);
  const out: TargetLine = { rest: [] };
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === "--") {
      out.command = words.slice(i + 1);
      break;
    }
    const eq = w.indexOf("=");
    const flag = w.startsWith("--") && eq > 0 ? w.slice(0, eq) : w;
    const key = OPTIONS[flag];
    if (key) {
      const value = flag !== w ? w.slice(eq + 1) : words[++i];
      if (value === undefined || value === "") return { ...out, error: `${flag} needs a value` };
      out[key] = value;
    } else if (w.startsWith("-") && w.length > 1) {
      return { ...out, error: `unknown option ${w}` };
    } else if (out.target === undefined) {
      out.target = w;
    } else {
      out.rest.push(w);
    }
  }
  if (out.command && out.command.length === 0) delete out.command;
  return out;
}

/** `ktl.exec`'s arguments (docs/protocol.md). */
export interface ExecSpec {
  pod?: string;
  workload?: string;
  namespace?: string;
  container?: string;
  command?: string[];
  tty?: boolean;
  context?: string;
  title?: string;
}

/** ktl.exec arguments from `deployment/web -n shop -c app -- sh`, or an error message. */
export function execSpecOf(line: string): ExecSpec | string {
  const p = parseTargetLine(line);
  if (p.error) return p.error;
  if (!p.target) return "name a pod or a workload, e.g. deployment/web";
  if (p.rest.length) return `unexpected ${p.rest.join(" ")} (put the command after --)`;
  const t = parseTarget(p.target);
  if (!t) return `not a target: ${p.target}`;
  if ("service" in t) return "exec needs a pod or a workload (deployment/web), not a Service";
  const spec: ExecSpec = { ...t };
  if (p.namespace) spec.namespace = p.namespace;
  if (p.container) spec.container = p.container;
  if (p.context) spec.context = p.context;
  if (p.command) spec.command = p.command;
  return spec;
}

export function execTitle(spec: ExecSpec): string {
  const cmd = spec.command?.length ? ` -- ${spec.command.join(" ")}` : "";
  return `ktl exec: ${targetLabel(spec)}${spec.namespace ? ` -n ${spec.namespace}` : ""}${cmd}`;
}

/** `8080:80`, `:80`, `80`: kubectl's port syntax. */
export function parsePorts(t: string): string[] | string {
  const ports = t.split(/[\s,]+/).filter((p) => p !== "");
  if (ports.length === 0) return 'give at least one port, e.g. "8080:80" or ":80"';
  for (const p of ports) {
    const m = /^(?:(\d*):)?(\d+)$/.exec(p);
    const ok = m && Number(m[2]) >= 1 && Number(m[2]) <= 65535 && (!m[1] || Number(m[1]) <= 65535);
    if (!ok) return `port "${p}": expected LOCAL:REMOTE, :REMOTE or PORT`;
  }
  return ports;
}

/** `ktl.portForward`'s arguments (docs/protocol.md). */
export interface PortForwardSpec {
  pod?: string;
  service?: string;
  workload?: string;
  namespace?: string;
  ports: string[];
  context?: string;
}

/** ktl.portForward arguments from `svc/web 8080:80 -n shop` (ports may come separately). */
export function portForwardSpecOf(line: string, ports?: string): PortForwardSpec | string {
  const p = parseTargetLine(line);
  if (p.error) return p.error;
  if (!p.target) return "name a pod, a Service (svc/web) or a workload (deployment/web)";
  const t = parseTarget(p.target);
  if (!t) return `not a target: ${p.target}`;
  const parsed = parsePorts([...p.rest, ports ?? ""].join(" "));
  if (typeof parsed === "string") return parsed;
  const spec: PortForwardSpec = { ...t, ports: parsed };
  if (p.namespace) spec.namespace = p.namespace;
  if (p.context) spec.context = p.context;
  return spec;
}

// -- what the cluster runs (ktl.k8s.list) -----------------------------------------------------

/** One resource of `ktl.k8s.list`: `target` is what ktl.exec / ktl.logs / ktl.portForward take. */
export interface ClusterItem {
  kind: string;
  name: string;
  namespace?: string;
  /** "pod/web-1", "deployment/web", "service/web" (Namespaces have none). */
  target?: string;
  ready?: boolean;
  /** A pod's phase or waiting reason (CrashLoopBackOff), a workload's "2/3", a Service's type. */
  status?: string;
  ports?: number[];
  containers?: string[];
}

/** `ktl.k8s.list {kinds?, namespace?, context?}`'s answer. */
export interface ListAnswer {
  context: string;
  namespace: string;
  items: ClusterItem[];
}

/** What a target is picked for. */
export type TargetPurpose = "exec" | "logs" | "portForward";

/** The `kinds` each picker asks `ktl.k8s.list` for (plural resource names). */
export const LIST_KINDS: Record<TargetPurpose, string[]> = {
  exec: ["pods", "deployments", "statefulsets", "daemonsets", "jobs"],
  logs: ["pods", "deployments", "statefulsets", "daemonsets", "jobs"],
  portForward: ["pods", "deployments", "statefulsets", "daemonsets", "services"],
};

/** The item kinds that make sense for each (a server may answer more than it was asked). */
const PURPOSE_KINDS: Record<TargetPurpose, ReadonlySet<string>> = {
  exec: new Set(["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]),
  logs: new Set(["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]),
  portForward: new Set(["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Service"]),
};

/** "pods or workloads" / "pods, workloads or Services": what a picker found none of. */
export const PURPOSE_WHAT: Record<TargetPurpose, string> = {
  exec: "pods or workloads",
  logs: "pods or workloads",
  portForward: "pods, workloads or Services",
};

const KIND_ICONS: Record<string, string> = {
  Pod: "$(vm)",
  Deployment: "$(layers)",
  StatefulSet: "$(database)",
  DaemonSet: "$(server)",
  ReplicaSet: "$(layers)",
  Job: "$(tasklist)",
  Service: "$(globe)",
  Namespace: "$(symbol-namespace)",
};

function list<T>(v: unknown): T[] {
  return Array.isArray(v) ? (v as T[]) : [];
}

/** "Running · ready", "CrashLoopBackOff · not ready", "2/3 ready", "ClusterIP". */
export function itemDescription(item: ClusterItem): string | undefined {
  const status = text(item.status);
  if (item.kind === "Pod") {
    const parts = [status, item.ready === undefined ? undefined : item.ready ? "ready" : "not ready"].filter((p) => p);
    return parts.length ? parts.join(" · ") : undefined;
  }
  if (item.kind === "Service") return status;
  return status ? `${status} ready` : undefined;
}

/** "containers app, sidecar · ports 80, 443" (what is known). */
export function itemDetail(item: ClusterItem): string | undefined {
  const parts: string[] = [];
  const containers = list<string>(item.containers).filter((c) => text(c));
  if (containers.length) parts.push(`${containers.length === 1 ? "container" : "containers"} ${containers.join(", ")}`);
  const ports = list<number>(item.ports);
  if (ports.length) parts.push(`${ports.length === 1 ? "port" : "ports"} ${ports.join(", ")}`);
  return parts.length ? parts.join(" · ") : undefined;
}

export interface TargetPick {
  label: string;
  description?: string;
  detail?: string;
  /** undefined: "Type a name…" (the input box). */
  item?: ClusterItem;
}

export const TYPE_A_NAME = "$(edit) Type a name…";

/** Quick-pick items: the listed resources that fit `purpose` (with a target), then "Type a name…". */
export function targetPickItems(answer: Partial<ListAnswer> | undefined, purpose: TargetPurpose): TargetPick[] {
  const fits = PURPOSE_KINDS[purpose];
  const items: TargetPick[] = list<ClusterItem>(answer?.items)
    .filter((i) => i && fits.has(i.kind) && parseTarget(i.target ?? "") !== undefined)
    .map((i) => ({
      label: `${KIND_ICONS[i.kind] ?? "$(symbol-misc)"} ${i.target}`,
      description: itemDescription(i),
      detail: itemDetail(i),
      item: i,
    }));
  items.push({ label: TYPE_A_NAME, description: purpose === "portForward" ? "svc/web, deployment/web, a pod" : purpose === "logs" ? "a pod, kind/name or app=web" : "a pod or deployment/web, -n, -c, -- COMMAND" });
  return items;
}

/** ktl.exec / ktl.logs / ktl.portForward target arguments for a listed item, in its namespace. */
export function itemTarget(item: ClusterItem, answer?: Partial<ListAnswer>): (Target & { namespace?: string }) | undefined {
  const t = parseTarget(item.target ?? "");
  if (!t) return undefined;
  const namespace = text(item.namespace) ?? text(answer?.namespace);
  return namespace ? { ...t, namespace } : t;
}

export interface PortPick {
  label: string;
  description?: string;
  /** undefined: "Other…" (asks for LOCAL:REMOTE). */
  ports?: string[];
}

export const OTHER_PORTS = "$(edit) Other…";

/** `:PORT` for each of the item's ports (any free local port), all of them, then "Other…". */
export function portPickItems(item: ClusterItem): PortPick[] {
  const ports = list<number>(item.ports).filter((p) => Number.isInteger(p) && p >= 1 && p <= 65535);
  const items: PortPick[] = ports.map((p) => ({ label: `:${p}`, description: `a free local port -> ${p}`, ports: [`:${p}`] }));
  if (ports.length > 1) items.push({ label: ports.map((p) => `:${p}`).join(" "), description: "all of them", ports: ports.map((p) => `:${p}`) });
  items.push({ label: OTHER_PORTS, description: "LOCAL:REMOTE, e.g. 8080:80" });
  return items;
}

/** The namespaces of a `ktl.k8s.list {kinds: ["namespaces"]}` answer. */
export function namespacesOf(answer: Partial<ListAnswer> | undefined): string[] {
  return list<ClusterItem>(answer?.items)
    .filter((i) => i && i.kind === "Namespace" && text(i.name))
    .map((i) => i.name);
}

// -- port-forward answers ---------------------------------------------------------------------

export interface Forward {
  local: number;
  remote: number;
  url: string;
}

export interface PortForwardResult extends SessionResult {
  forwards?: Forward[];
}

function isForward(f: unknown): f is Forward {
  return !!f && typeof f === "object" && typeof (f as Forward).url === "string";
}

/** A port-forward session's URLs (`meta.forwards`). */
export function forwardsOf(s: Pick<Session, "kind" | "meta">): Forward[] {
  const list = s.meta?.forwards;
  return Array.isArray(list) ? list.filter(isForward) : [];
}

/** "Forwarding http://127.0.0.1:8080 -> service/web:80". */
export function forwardMessage(forwards: Forward[], label: string): string {
  return `Forwarding ${forwards.map((f) => `${f.url} -> ${label}:${f.remote}`).join(", ")}`;
}

// -- talking to the server --------------------------------------------------------------------

/** The status bar's Kubernetes part (empty when the server or the kubeconfig has none). */
export async function loadK8sStatus(exec: Exec): Promise<K8sStatus> {
  try {
    return k8sStatusOf(await exec<ContextsAnswer>("ktl.k8s.contexts", {}));
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * Re-applies a workspace's pick after the server (re)started; the server forgets it. Returns
 * false when the pick is no longer valid (the context left the kubeconfig): forget it.
 */
export async function restoreSelection(exec: Exec, sel: K8sSelection | undefined): Promise<boolean> {
  if (!sel || !(sel.context || sel.namespace)) return true;
  try {
    await exec<UseAnswer>("ktl.k8s.use", { ...sel });
    return true;
  } catch {
    return false;
  }
}
