/** The Cluster view's model (src/core/cluster.ts): ktl/resources batches become a tree. */
import { strict as assert } from "node:assert";
import { test } from "node:test";
import { age, ClusterModel, ClusterNode, deletePrompt, Entry, entryView, objectArgs, ResourcesParams, startWatch, targetOf } from "../../src/core/cluster";
import { Ui } from "../../src/core/commands";
import { CLUSTER_COMMANDS, objectOf } from "../../src/core/commands/cluster";
import { fakeExec } from "../support/fakes";

const NOW = Date.parse("2026-01-01T12:00:00Z");

function node(kind: string, name: string, more: Partial<ClusterNode> = {}): ClusterNode {
  return { uid: `${kind}-${name}`, kind, apiVersion: "v1", name, namespace: "default", created: "2026-01-01T11:00:00Z", ...more };
}

const deploy = node("Deployment", "web", { apiVersion: "apps/v1", ready: "1/1", health: "ok" });
const pod = node("Pod", "web-1", {
  owner: deploy.uid,
  ready: "1/1",
  status: "Running",
  health: "ok",
  containers: [{ name: "app", ready: true, restarts: 0, state: "running" }],
});
const snapshot: ResourcesParams = {
  watchId: "w1",
  context: "fake",
  event: "snapshot",
  resources: [
    { uid: "ns-default", kind: "Namespace", apiVersion: "v1", name: "default" },
    deploy,
    pod,
    node("Secret", "creds", { keys: ["password"] }),
    { uid: "node-1", kind: "Node", apiVersion: "v1", name: "node-1", health: "ok", status: "Ready" },
  ],
  streams: [{ kind: "ConfigMap", plural: "configmaps", namespace: "kube-system", state: "forbidden", message: "forbidden" }],
};

function labels(entries: Entry[]): string[] {
  return entries.map((e) => entryView(e, NOW).label);
}

test("a snapshot builds context -> namespace -> kind -> object -> owned objects and containers", () => {
  const m = new ClusterModel();
  m.apply(snapshot);
  const [ctx] = m.children();
  assert.deepEqual(labels([ctx]), ["fake"]);
  const namespaces = m.children(ctx);
  assert.deepEqual(labels(namespaces), ["default", "kube-system", "(cluster)"]);
  const kinds = m.children(namespaces[0]);
  assert.deepEqual(labels(kinds), ["Deployment", "Secret"]); // the pod sits under its Deployment
  const [web] = m.children(kinds[0]);
  const view = entryView(web, NOW);
  assert.equal(view.label, "web");
  assert.equal(view.description, "1/1 · 1h");
  assert.equal(view.icon, "pass");
  assert.ok(view.collapsible);
  const [owned] = m.children(web);
  assert.equal(entryView(owned, NOW).description, "1/1 · Running · 1h");
  assert.deepEqual(labels(m.children(owned)), ["app"]);
  // a refused namespace shows what was refused
  const refused = m.children(namespaces[1]);
  assert.equal(entryView(refused[0], NOW).description, "forbidden");
  assert.equal(entryView(refused[0], NOW).icon, "lock");
});

test("deltas change, add and delete objects; a crash loop shows its reason and warnings", () => {
  const m = new ClusterModel();
  m.apply(snapshot);
  m.apply({
    watchId: "w1",
    context: "fake",
    event: "delta",
    added: [],
    updated: [
      {
        ...pod,
        status: "CrashLoopBackOff",
        health: "error",
        ready: "0/1",
        restarts: 3,
        containers: [{ name: "app", ready: false, restarts: 3, state: "waiting", reason: "CrashLoopBackOff", lastReason: "Error" }],
        warnings: [{ reason: "BackOff", message: "Back-off restarting failed container", count: 4 }],
      },
    ],
    deleted: [`Secret-creds`],
  });
  const ns = m.children(m.children()[0])[0];
  assert.deepEqual(labels(m.children(ns)), ["Deployment"]);
  const web = m.children(m.children(ns)[0])[0];
  const [crashed] = m.children(web);
  const view = entryView(crashed, NOW);
  assert.equal(view.icon, "error");
  assert.equal(view.color, "list.errorForeground");
  assert.equal(view.description, "0/1 · CrashLoopBackOff · 3 restarts · 1h");
  const children = m.children(crashed);
  assert.deepEqual(labels(children), ["BackOff (x4)", "app"]);
  assert.equal(entryView(children[1], NOW).description, "CrashLoopBackOff · restarts 3 · last Error");
});

test("the filter keeps matching objects and their owners", () => {
  const m = new ClusterModel();
  m.apply(snapshot);
  m.filter = "web-1";
  const ns = m.children(m.children()[0]);
  assert.deepEqual(labels(ns), ["default"]);
  assert.deepEqual(labels(m.children(ns[0])), ["Deployment"]);
  m.filter = "nothing-matches";
  assert.deepEqual(labels(m.children(m.children()[0])), []);
});

test("a new snapshot of another watch replaces the context; forget removes it", () => {
  const m = new ClusterModel();
  m.apply(snapshot);
  m.apply({ watchId: "w2", context: "fake", event: "delta", added: [node("Pod", "x")], updated: [], deleted: [] });
  assert.equal(m.watchOf("fake"), "w2");
  assert.equal(m.node("fake", deploy.uid), undefined);
  m.forget("fake");
  assert.deepEqual(m.children(), []);
});

test("prompts and arguments name the object and the context", () => {
  assert.equal(deletePrompt(deploy, "prod"), "Delete Deployment web in namespace default from context prod?");
  assert.deepEqual(targetOf(deploy), { workload: "deployment/web" });
  assert.deepEqual(targetOf(pod), { pod: "web-1" });
  assert.equal(targetOf(node("ConfigMap", "c")), undefined);
  assert.deepEqual(objectArgs(pod, "fake"), { kind: "Pod", name: "web-1", namespace: "default", context: "fake" });
  assert.equal(age("2026-01-01T11:59:30Z", NOW), "30s");
  assert.equal(age("2025-12-30T12:00:00Z", NOW), "2d");
  assert.equal(age(undefined, NOW), "");
});

test("startWatch asks the server for a detached watch of the context", async () => {
  const { exec, calls } = fakeExec({ "ktl.k8s.watch": () => ({ watchId: "w9", context: "prod" }) });
  assert.deepEqual(await startWatch(exec, "prod"), { watchId: "w9", context: "prod" });
  assert.deepEqual(calls, [{ command: "ktl.k8s.watch", args: { context: "prod", detach: true } }]);
});

/** A Ui that records what it is asked and shown (only what the cluster commands use). */
function recordingUi(answers: { confirm?: boolean; input?: string } = {}): Ui & { log: string[] } {
  const log: string[] = [];
  const ui = {
    log,
    input: async (prompt: string) => (log.push(`input: ${prompt}`), answers.input),
    confirm: async (message: string, action: string) => (log.push(`confirm: ${message} [${action}]`), answers.confirm ?? true),
    info: (m: string) => void log.push(`info: ${m}`),
    error: (m: string) => void log.push(`error: ${m}`),
    showDocument: async (content: string, language: string) => void log.push(`document(${language}): ${content}`),
    openTerminal: (a: { title: string }) => void log.push(`terminal: ${a.title}`),
    refreshSessions: () => undefined,
  };
  return ui as unknown as Ui & { log: string[] };
}

const entry: Entry = { type: "object", context: "prod", node: deploy };

test("delete asks naming the object and the context, and does nothing when refused", async () => {
  const run = CLUSTER_COMMANDS.find((c) => c.id === "ktl.ui.cluster.delete")!;
  const { exec, calls } = fakeExec({ "ktl.k8s.delete": () => ({ state: "done" }) });
  const no = recordingUi({ confirm: false });
  await run.run({ ui: no, exec }, entry);
  assert.deepEqual(no.log, ["confirm: Delete Deployment web in namespace default from context prod? [Delete]"]);
  assert.equal(calls.length, 0);
  const yes = recordingUi();
  await run.run({ ui: yes, exec }, entry);
  assert.deepEqual(calls, [{ command: "ktl.k8s.delete", args: { kind: "Deployment", name: "web", namespace: "default", context: "prod", propagation: "Background" } }]);
  assert.equal(yes.log[1], "info: delete web: done");
});

test("scale asks for the replicas; describe shows the text; a container's logs follow its pod", async () => {
  const { exec, calls } = fakeExec({
    "ktl.k8s.scale": () => ({ state: "error", error: "forbidden" }),
    "ktl.k8s.describe": () => ({ text: "Name: web" }),
    "ktl.logs": () => ({ sessionId: "s1" }),
    "ktl.session.get": () => ({ sessionId: "s1" }),
  });
  const ui = recordingUi({ input: "3" });
  await CLUSTER_COMMANDS.find((c) => c.id === "ktl.ui.cluster.scale")!.run({ ui, exec }, entry);
  assert.deepEqual(calls[0].args, { kind: "Deployment", name: "web", namespace: "default", context: "prod", replicas: 3 });
  assert.equal(ui.log.at(-1), "error: ktl scale web to 3: error: forbidden");
  await CLUSTER_COMMANDS.find((c) => c.id === "ktl.ui.cluster.describe")!.run({ ui, exec }, entry);
  assert.equal(ui.log.at(-1), "document(plaintext): Name: web");
  const container: Entry = { type: "container", context: "prod", node: pod, container: pod.containers![0] };
  await CLUSTER_COMMANDS.find((c) => c.id === "ktl.ui.cluster.logs")!.run({ ui, exec }, container);
  assert.deepEqual(calls.find((c) => c.command === "ktl.logs")?.args, { pod: "web-1", namespace: "default", context: "prod", container: "app", detach: true });
  assert.equal(objectOf({ type: "kind", context: "prod", namespace: "default", kind: "Pod" }), undefined);
});
