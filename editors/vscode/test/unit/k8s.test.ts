/** The Kubernetes surfaces (src/core/k8s.ts and their commands), with the server and the UI faked. */
import { strict as assert } from "node:assert";
import { test } from "node:test";
import { COMMANDS, CommandContext, lensCommand, Ui } from "../../src/core/commands";
import { startPortForward } from "../../src/core/commands/forwards";
import {
  ContextsAnswer,
  contextPickItems,
  execSpecOf,
  forwardMessage,
  itemDescription,
  itemDetail,
  itemTarget,
  k8sStatusOf,
  LIST_KINDS,
  ListAnswer,
  loadK8sStatus,
  namespacePickItems,
  namespacesOf,
  parsePorts,
  parseTarget,
  parseTargetLine,
  portForwardSpecOf,
  portPickItems,
  restoreSelection,
  selectionOf,
  splitArgs,
  statusTooltip,
  targetLabel,
  targetPickItems,
} from "../../src/core/k8s";
import { SessionRouter } from "../../src/core/router";
import { contextKey, contextKeys } from "../../src/core/server";
import { sessionItem, statusText } from "../../src/core/sessions";
import { SessionTerminal } from "../../src/core/terminal";
import { Exec, Session } from "../../src/core/types";
import { RenderAnswer, renderedText } from "../../src/core/commands/helm";
import { fakeExec } from "../support/fakes";


type FakeUi = Ui & { infos: string[]; opened: unknown[]; external: string[]; asked: string[]; changed: unknown[]; picks: { label: string }[][] };

function fakeUi(over: Partial<Ui> = {}): FakeUi {
  const infos: string[] = [];
  const opened: unknown[] = [];
  const external: string[] = [];
  const asked: string[] = [];
  const changed: unknown[] = [];
  const picks: { label: string }[][] = [];
  return {
    infos,
    opened,
    external,
    asked,
    changed,
    picks,
    input: async () => undefined,
    pick: async (items) => (picks.push(items), items[0]),
    info: (m) => infos.push(m),
    error: (m) => infos.push(`error: ${m}`),
    showDocument: async () => undefined,
    showReadOnly: async () => undefined,
    openTerminal: (a) => opened.push(a),
    copy: async () => undefined,
    openExternal: (u) => external.push(u),
    activeUri: () => undefined,
    saveUri: async () => undefined,
    refreshSessions: () => undefined,
    confirm: async () => true,
    storeSecret: async () => undefined,
    restartServer: async () => undefined,
    ask: async (m) => (asked.push(m), undefined),
    k8sSelection: () => undefined,
    k8sChanged: async (sel) => void changed.push(sel),
    ...over,
  };
}

const byId = (id: string) => COMMANDS.find((c) => c.id === id)!;

const CONTEXTS: ContextsAnswer = {
  current: "kind-dev",
  kubeconfig: ["/home/u/.kube/config"],
  namespace: null,
  contexts: [
    { name: "kind-dev", cluster: "kind-dev", namespace: "web" },
    { name: "prod", cluster: "gke-prod", namespace: null },
  ],
};

test("targets: what kubectl accepts, labelled like the server", () => {
  assert.deepEqual(parseTarget("web-0"), { pod: "web-0" });
  assert.deepEqual(parseTarget("pod/web-0"), { pod: "web-0" });
  assert.deepEqual(parseTarget("po/web-0"), { pod: "web-0" });
  assert.deepEqual(parseTarget("svc/web"), { service: "web" });
  assert.deepEqual(parseTarget("Service/web"), { service: "web" });
  assert.deepEqual(parseTarget("deployment/web"), { workload: "deployment/web" });
  assert.deepEqual(parseTarget(" sts/db "), { workload: "sts/db" });
  assert.equal(parseTarget(""), undefined);
  assert.equal(parseTarget("a/b/c"), undefined);
  assert.equal(parseTarget("deployment/"), undefined);
  assert.equal(targetLabel({ pod: "web-0" }), "pod/web-0");
  assert.equal(targetLabel({ service: "web" }), "service/web");
  assert.equal(targetLabel({ workload: "deployment/web", namespace: "shop" } as { workload: string }), "deployment/web");
});

test("target lines: options, the command after --, quoting", () => {
  assert.deepEqual(splitArgs(`sh -c 'echo "a b"' x\\ y ""`), ["sh", "-c", 'echo "a b"', "x y", ""]);
  assert.deepEqual(parseTargetLine("deploy/web -n shop -c app -- sh -c 'ls /'"), {
    target: "deploy/web",
    namespace: "shop",
    container: "app",
    rest: [],
    command: ["sh", "-c", "ls /"],
  });
  assert.deepEqual(parseTargetLine("--namespace=shop svc/web 8080:80 :443 --context kind"), {
    target: "svc/web",
    namespace: "shop",
    context: "kind",
    rest: ["8080:80", ":443"],
  });
  assert.equal(parseTargetLine("web -n").error, "-n needs a value");
  assert.equal(parseTargetLine("web -x 1").error, "unknown option -x");
  assert.deepEqual(execSpecOf("deployment/web -n shop -- bash -l"), { workload: "deployment/web", namespace: "shop", command: ["bash", "-l"] });
  assert.deepEqual(execSpecOf("web-0 -c sidecar"), { pod: "web-0", container: "sidecar" });
  assert.match(execSpecOf("svc/web") as string, /not a Service/);
  assert.match(execSpecOf("") as string, /name a pod or a workload/);
  assert.match(execSpecOf("web-0 ls") as string, /after --/);
});

test("ports: LOCAL:REMOTE, :REMOTE, PORT; with the target or asked separately", () => {
  assert.deepEqual(parsePorts("8080:80, :443 9090"), ["8080:80", ":443", "9090"]);
  assert.match(parsePorts("") as string, /at least one port/);
  assert.match(parsePorts("80:http") as string, /port "80:http"/);
  assert.match(parsePorts(":70000") as string, /port ":70000"/);
  assert.deepEqual(portForwardSpecOf("svc/web -n shop 8080:80"), { service: "web", namespace: "shop", ports: ["8080:80"] });
  assert.deepEqual(portForwardSpecOf("deployment/web", ":80"), { workload: "deployment/web", ports: [":80"] });
  assert.match(portForwardSpecOf("svc/web") as string, /at least one port/);
});

test("status: context/namespace from ktl.k8s.contexts, the picked namespace first", () => {
  assert.deepEqual(k8sStatusOf(CONTEXTS), { context: "kind-dev", cluster: "kind-dev", namespace: "web" });
  assert.deepEqual(k8sStatusOf({ ...CONTEXTS, namespace: "shop" }).namespace, "shop");
  assert.deepEqual(k8sStatusOf({ ...CONTEXTS, current: "prod" }), { context: "prod", cluster: "gke-prod", namespace: "default" });
  assert.deepEqual(k8sStatusOf({ current: null, contexts: [], error: "no kubeconfig" }), { error: "no kubeconfig" });
  assert.equal(statusText(2, k8sStatusOf(CONTEXTS)), "$(terminal) ktl: 2 running $(cloud) kind-dev/web");
  assert.equal(statusText(0, k8sStatusOf({ current: null, contexts: [] })), "$(terminal) ktl");
  assert.match(statusTooltip(1, k8sStatusOf(CONTEXTS)), /1 running session\nKubernetes context kind-dev \(cluster kind-dev\), namespace web\nClick to switch the context/);
  assert.match(statusTooltip(0, { error: "no kubeconfig" }), /No Kubernetes context: no kubeconfig\nClick to pick a session/);
  assert.deepEqual(selectionOf({ context: null, namespace: "shop" }), { namespace: "shop" });
  assert.equal(selectionOf({ context: null, namespace: null }), undefined);
  // a context the server's settings guard is marked (the status bar also turns its warning colour)
  const guarded = { current: "prod", contexts: [{ name: "prod", cluster: "gke-prod", protection: "protected" as const }] };
  assert.equal(k8sStatusOf(guarded).protection, "protected");
  assert.equal(statusText(0, k8sStatusOf(guarded)), "$(terminal) ktl $(shield) prod/default");
  assert.match(statusTooltip(0, k8sStatusOf(guarded)), /Protected context: each change asks for approval/);
  const locked = { current: "prod", contexts: [{ name: "prod", protection: "read-only" as const }] };
  assert.equal(statusText(0, k8sStatusOf(locked)), "$(terminal) ktl $(lock) prod/default");
  assert.equal(k8sStatusOf(CONTEXTS).protection, undefined);
  // the commands are gated like the others
  assert.equal(contextKeys(["ktl.exec"])[contextKey("ktl.exec")], true);
  assert.equal(contextKeys(["ktl.exec"])[contextKey("ktl.portForward")], false);
});

test("picker items: contexts with the active one marked, namespaces with Other… and a reset", () => {
  const items = contextPickItems(CONTEXTS);
  assert.deepEqual(
    items.map((i) => [i.label, i.description, i.context]),
    [
      ["$(check) kind-dev", "active · cluster kind-dev · namespace web", "kind-dev"],
      ["$(blank) prod", "cluster gke-prod", "prod"],
    ],
  );
  assert.equal(contextPickItems(CONTEXTS, { context: "kind-dev" }).at(-1)?.context, "", "a workspace pick can be forgotten");
  const ns = namespacePickItems({ ...CONTEXTS, namespace: "shop", namespaces: ["kube-system", "shop"] });
  assert.deepEqual(
    ns.map((i) => [i.label, i.namespace]),
    [
      ["$(check) shop", "shop"],
      ["$(blank) kube-system", "kube-system"],
      ["$(blank) web", "web"],
      ["$(blank) default", "default"],
      ["$(edit) Other namespace…", undefined],
      ["$(discard) The context's namespace", ""],
    ],
  );
  assert.equal(namespacePickItems(CONTEXTS).at(-1)?.namespace, undefined, "no reset without a pick");
});

test("Switch Kubernetes Context: pick, ktl.k8s.use (namespace back to the context's), remember", async () => {
  const { exec, calls } = fakeExec({
    "ktl.k8s.contexts": () => CONTEXTS,
    "ktl.k8s.use": (a) => ({ context: a.context || null, namespace: a.namespace || null }),
  });
  const ui = fakeUi({ pick: async (items) => items[1] });
  await byId("ktl.ui.k8s.context").run({ ui, exec });
  assert.deepEqual(calls.map((c) => [c.command, c.args]), [
    ["ktl.k8s.contexts", {}],
    ["ktl.k8s.use", { context: "prod", namespace: "" }],
  ]);
  assert.deepEqual(ui.changed, [{ context: "prod" }]);
  // the active one again keeps the namespace; a name as argument skips the picker
  calls.length = 0;
  await byId("ktl.ui.k8s.context").run({ ui, exec }, "kind-dev");
  assert.deepEqual(calls.at(-1)?.args, { context: "kind-dev" });
  // nothing to pick
  const none = fakeUi();
  await byId("ktl.ui.k8s.context").run({ ui: none, exec: fakeExec({ "ktl.k8s.contexts": () => ({ current: null, contexts: [], error: "no kubeconfig found" }) }).exec });
  assert.deepEqual(none.infos, ["error: ktl: no Kubernetes contexts: no kubeconfig found"]);
});

test("Switch Namespace: a known one, or Other… asks; ktl.k8s.use with the namespace only", async () => {
  const { exec, calls } = fakeExec({
    "ktl.k8s.contexts": () => CONTEXTS,
    "ktl.k8s.use": (a) => ({ context: null, namespace: a.namespace || null }),
  });
  const other = fakeUi({ pick: async (items) => items.find((i) => i.label.includes("Other")), input: async () => " payments " });
  await byId("ktl.ui.k8s.namespace").run({ ui: other, exec });
  assert.deepEqual(calls.at(-1), { command: "ktl.k8s.use", args: { namespace: "payments" } });
  assert.deepEqual(other.changed, [{ namespace: "payments" }]);
  const first = fakeUi();
  await byId("ktl.ui.k8s.namespace").run({ ui: first, exec });
  assert.deepEqual(calls.at(-1)?.args, { namespace: "web" });
  const cancelled = fakeUi({ pick: async (items) => items.find((i) => i.label.includes("Other")), input: async () => undefined });
  const before = calls.length;
  await byId("ktl.ui.k8s.namespace").run({ ui: cancelled, exec });
  assert.deepEqual(
    calls.slice(before).map((c) => c.command),
    ["ktl.k8s.contexts", "ktl.k8s.list"],
    "nothing was changed",
  );
});

test("Exec: nothing to list, so the prompt's target becomes a terminal started with ktl.exec", async () => {
  const prompts: string[] = [];
  const ui = fakeUi({ input: async (p) => (prompts.push(p), "deployment/web -n shop -- sh") });
  const { exec, calls } = fakeExec({ "ktl.k8s.list": () => ({ context: "kind-dev", namespace: "shop", items: [] }) });
  await byId("ktl.ui.exec").run({ ui, exec });
  assert.deepEqual(ui.opened, [{ exec: { workload: "deployment/web", namespace: "shop", command: ["sh"] }, title: "ktl exec: deployment/web -n shop -- sh" }]);
  assert.deepEqual(calls, [{ command: "ktl.k8s.list", args: { kinds: LIST_KINDS.exec } }], "the terminal starts the session (with its size)");
  assert.match(prompts[0], /^No pods or workloads in namespace shop\. Pod or workload to exec into/);
  assert.equal(ui.picks.length, 0, "no quick pick with nothing in it");
  // an argument object (another extension, a lens) skips the prompt
  const given = fakeUi({ input: async () => assert.fail("no prompt") });
  await byId("ktl.ui.exec").run({ ui: given, exec }, { pod: "web-0", container: "app", junk: 1 });
  assert.deepEqual(given.opened, [{ exec: { pod: "web-0", container: "app" }, title: "ktl exec: pod/web-0" }]);
  const bad = fakeUi({ input: async () => "svc/web" });
  await byId("ktl.ui.exec").run({ ui: bad, exec });
  assert.match(bad.infos[0], /^error: ktl exec: exec needs a pod or a workload/);
});

test("terminal start via ktl.exec: detached, the terminal's size, then streams and takes input", async () => {
  const r = new SessionRouter();
  const { exec, calls } = fakeExec({ "ktl.exec": () => ({ sessionId: "x1", state: "running" }) });
  const t = new SessionTerminal({ exec, router: r, execInto: { workload: "deployment/web", namespace: "shop" }, confirm: async () => true });
  const out: string[] = [];
  t.onDidWrite((d) => out.push(d));
  t.open({ columns: 132, rows: 40 });
  assert.equal(await t.started, "x1");
  assert.deepEqual(calls[0], { command: "ktl.exec", args: { workload: "deployment/web", namespace: "shop", detach: true, cols: 132, rows: 40 } });
  r.onData({ sessionId: "x1", seq: 1, data: "root@web:/# " });
  t.handleInput("exit\r");
  assert.deepEqual(calls[1], { command: "ktl.session.input", args: { sessionId: "x1", data: "exit\r" } });
  r.onState({ sessionId: "x1", state: "done", exitCode: 0 });
  assert.equal(out.join(""), "root@web:/# \r\n\x1b[2m[ktl] session done (exit 0)\x1b[0m\r\n");
  // a start the server refuses is shown in the terminal
  const failing = (async () => {
    throw new Error("exactly one of 'pod' or 'workload' is required");
  }) as Exec;
  const t2 = new SessionTerminal({ exec: failing, router: r, execInto: {}, confirm: async () => true });
  const out2: string[] = [];
  t2.onDidWrite((d) => out2.push(d));
  t2.open(undefined);
  await assert.rejects(t2.started);
  assert.match(out2.join(""), /could not start: exactly one of 'pod' or 'workload'/);
});

const FORWARDED = {
  sessionId: "pf1",
  state: "running" as const,
  forwards: [{ local: 43123, remote: 80, url: "http://127.0.0.1:43123" }],
};

test("port-forward: target and ports asked, the message says where, Open in Browser / Stop", async () => {
  const answers = ["svc/web -n shop", ":80"];
  const { exec, calls: all } = fakeExec({
    "ktl.portForward": () => FORWARDED,
    "ktl.session.cancel": () => ({ sessionId: "pf1", state: "cancelled" }),
    "ktl.k8s.list": () => {
      throw new Error("no Kubernetes context");
    },
  });
  // each run lists the cluster first; that fails here, so the target is typed
  const calls = () => all.filter((c) => c.command !== "ktl.k8s.list");
  const prompts: string[] = [];
  const ui = fakeUi({
    input: async (p) => (prompts.push(p), answers.shift()),
    ask: async (m, actions) => (ui.asked.push(`${m} [${actions.join("|")}]`), "Open in Browser"),
  });
  await byId("ktl.ui.portForward").run({ ui, exec });
  assert.deepEqual(all[0], { command: "ktl.k8s.list", args: { kinds: LIST_KINDS.portForward } });
  assert.match(prompts[0], /^Could not list the cluster: no Kubernetes context\. Pod, Service or workload to forward to/);
  assert.deepEqual(calls(), [{ command: "ktl.portForward", args: { service: "web", namespace: "shop", ports: [":80"] } }]);
  assert.deepEqual(ui.asked, ["Forwarding http://127.0.0.1:43123 -> service/web:80 [Open in Browser|Stop]"]);
  assert.deepEqual(ui.external, ["http://127.0.0.1:43123"]);
  // ports on the target line: no second prompt; Stop cancels the session
  const stop = fakeUi({ input: async () => "deployment/web 8080:80", ask: async () => "Stop" });
  all.length = 0;
  await byId("ktl.ui.portForward").run({ ui: stop, exec });
  assert.deepEqual(calls(), [
    { command: "ktl.portForward", args: { workload: "deployment/web", ports: ["8080:80"] } },
    { command: "ktl.session.cancel", args: { sessionId: "pf1" } },
  ]);
  // an object without ports (another extension): only the ports are asked, nothing is listed
  const noPorts = fakeUi({ input: async () => "8443:443", ask: async () => undefined });
  all.length = 0;
  await byId("ktl.ui.portForward").run({ ui: noPorts, exec }, { service: "web" });
  assert.deepEqual(all, [{ command: "ktl.portForward", args: { service: "web", ports: ["8443:443"] } }]);
  const badLine = fakeUi({ input: async () => "svc/web --bogus" });
  await byId("ktl.ui.portForward").run({ ui: badLine, exec });
  assert.deepEqual(badLine.infos, ["error: ktl port-forward: unknown option --bogus"]);
  // the session ended before its ports listened
  const failed = fakeUi();
  await startPortForward({ ui: failed, exec: fakeExec({ "ktl.portForward": () => ({ sessionId: "pf2", state: "error", exitCode: 1, error: "no ready pod" }) }).exec }, { pod: "web-0", ports: [":80"] });
  assert.deepEqual(failed.infos, ["error: ktl port-forward pod/web-0: error (exit 1): no ready pod"]);
  assert.equal(
    forwardMessage([...FORWARDED.forwards, { local: 8443, remote: 443, url: "http://127.0.0.1:8443" }], "deployment/web"),
    "Forwarding http://127.0.0.1:43123 -> deployment/web:80, http://127.0.0.1:8443 -> deployment/web:443",
  );
});

function session(id: string, state: Session["state"], extra: Partial<Session> = {}): Session {
  return { sessionId: id, kind: "pty", title: `t-${id}`, state, createdAt: "2026-01-01T00:00:00Z", lastSeq: 0, ...extra };
}

test("the Sessions view shows a running forward's URLs; Open Port-forward picks among running ones", async () => {
  const pf = session("pf1", "running", { kind: "port-forward", title: "ktl port-forward service/web -n shop :80", meta: { forwards: FORWARDED.forwards } });
  const item = sessionItem(pf);
  assert.match(item.description, /^running · .* · http:\/\/127\.0\.0\.1:43123$/);
  assert.equal(item.contextValue, "ktlSession running forward");
  assert.equal(sessionItem({ ...pf, state: "cancelled" }).contextValue, "ktlSession ended", "an ended forward has no URL to open");
  const { exec, calls } = fakeExec({ "ktl.sessions.list": () => ({ sessions: [pf, session("other", "running", { kind: "port-forward" })] }) });
  const ui = fakeUi();
  await byId("ktl.ui.portForward.open").run({ ui, exec });
  assert.deepEqual(calls, [{ command: "ktl.sessions.list", args: { kind: "port-forward", state: "running", limit: 200, remote: false } }]);
  assert.equal(ui.picks[0].length, 1, "only sessions with URLs");
  assert.deepEqual(ui.external, ["http://127.0.0.1:43123"]);
  const fromView = fakeUi();
  await byId("ktl.ui.portForward.open").run({ ui: fromView, exec }, pf);
  assert.deepEqual(fromView.external, ["http://127.0.0.1:43123"]);
});

test("CodeLens commands: Exec opens a terminal, Port-forward says where, Logs and Run open terminals", async () => {
  const { exec, calls } = fakeExec({
    "ktl.portForward": () => FORWARDED,
    "ktl.logs": () => ({ sessionId: "l1", state: "running" }),
    "ktl.session.get": (a) => session(String(a.sessionId), "running"),
    "ktl.plan.run": () => ({ sessionId: "p1", state: "done", exitCode: 0, nodes: [] }),
  });
  const ui = fakeUi();
  const ctx: CommandContext = { ui, exec };
  const passed: string[] = [];
  const next = async (c: string) => (passed.push(c), "from the server");
  assert.equal(await lensCommand(ctx, "ktl.exec", [{ workload: "deployment/web", namespace: "shop" }], next), undefined);
  assert.deepEqual(ui.opened[0], { exec: { workload: "deployment/web", namespace: "shop" }, title: "ktl exec: deployment/web -n shop" });
  const r = (await lensCommand(ctx, "ktl.portForward", [{ service: "web", namespace: "shop", ports: [":80"] }], next)) as typeof FORWARDED;
  assert.equal(r.forwards[0].url, "http://127.0.0.1:43123");
  assert.deepEqual(ui.asked, ["Forwarding http://127.0.0.1:43123 -> service/web:80"]);
  await lensCommand(ctx, "ktl.logs", [{ workload: "deployment/web", namespace: "shop" }], next);
  assert.deepEqual(calls.find((c) => c.command === "ktl.logs")?.args, { workload: "deployment/web", namespace: "shop", detach: true });
  assert.deepEqual(ui.opened[1], { attach: session("l1", "running"), title: "ktl logs: deployment/web" });
  await lensCommand(ctx, "ktl.plan.run", [{ uri: "file:///w/ci.plan.yaml", nodes: ["build"] }], next);
  assert.deepEqual(calls.find((c) => c.command === "ktl.plan.run")?.args, { uri: "file:///w/ci.plan.yaml", nodes: ["build"], detach: true });
  assert.deepEqual(ui.infos, ["ktl plan: done (exit 0)"]);
  assert.deepEqual(passed, [], "none of those went to the server as they were");
  // everything else, and callers that chose detach themselves, go through unchanged
  assert.equal(await lensCommand(ctx, "ktl.apply", [{ uri: "file:///w/a.yaml", documents: [0] }], next), "from the server");
  assert.equal(await lensCommand(ctx, "ktl.exec", [{ pod: "web-0", detach: true }], next), "from the server");
  assert.equal(await lensCommand(ctx, "ktl.exec", [], next), "from the server");
  assert.deepEqual(passed, ["ktl.apply", "ktl.exec", "ktl.exec"]);
});

test("status loading and restoring a pick after a server restart", async () => {
  assert.deepEqual(await loadK8sStatus(fakeExec({ "ktl.k8s.contexts": () => CONTEXTS }).exec), { context: "kind-dev", cluster: "kind-dev", namespace: "web" });
  const failing = (async () => {
    throw new Error("unknown command");
  }) as Exec;
  assert.deepEqual(await loadK8sStatus(failing), { error: "unknown command" });
  const { exec, calls } = fakeExec();
  assert.equal(await restoreSelection(exec, undefined), true);
  assert.equal(calls.length, 0);
  assert.equal(await restoreSelection(exec, { context: "prod", namespace: "shop" }), true);
  assert.deepEqual(calls, [{ command: "ktl.k8s.use", args: { context: "prod", namespace: "shop" } }]);
  assert.equal(await restoreSelection(failing, { context: "gone" }), false, "the caller forgets it");
});

// -- quick picks of what the cluster runs (ktl.k8s.list) ------------------------------------------

const LISTED: ListAnswer = {
  context: "kind-dev",
  namespace: "shop",
  items: [
    { kind: "Pod", name: "api-0", namespace: "shop", target: "pod/api-0", ready: false, status: "CrashLoopBackOff", containers: ["api", "envoy"], ports: [] },
    { kind: "Pod", name: "web-1", namespace: "shop", target: "pod/web-1", ready: true, status: "Running", containers: ["app"], ports: [8080] },
    { kind: "Deployment", name: "web", namespace: "shop", target: "deployment/web", ready: false, status: "2/3", ports: [8080] },
    { kind: "Job", name: "migrate", namespace: "shop", target: "job/migrate", ready: true, status: "1/1", ports: [] },
    { kind: "Service", name: "web", namespace: "shop", target: "service/web", status: "ClusterIP", ports: [80, 443] },
    { kind: "Namespace", name: "kube-system" },
  ],
};

const listing = (answer: unknown = LISTED) =>
  fakeExec({
    "ktl.k8s.list": () => answer,
    "ktl.logs": () => ({ sessionId: "l1", state: "running" }),
    "ktl.session.get": (a) => session(String(a.sessionId), "running"),
    "ktl.portForward": () => FORWARDED,
  });

/** A fake UI whose quick picks choose the first item matching `choose` (by label), in order. */
function choosing(...choose: (string | RegExp)[]): FakeUi {
  const ui = fakeUi({
    pick: async (items) => {
      ui.picks.push(items);
      const want = choose.shift();
      if (want === undefined) return undefined;
      return items.find((i) => (typeof want === "string" ? i.label.includes(want) : want.test(i.label)));
    },
  });
  return ui;
}

test("target picks: what fits each command, labelled kind/name, status and ready, ports and containers", () => {
  const exec = targetPickItems(LISTED, "exec");
  assert.deepEqual(
    exec.map((i) => [i.label, i.description, i.detail]),
    [
      ["$(vm) pod/api-0", "CrashLoopBackOff · not ready", "containers api, envoy"],
      ["$(vm) pod/web-1", "Running · ready", "container app · port 8080"],
      ["$(layers) deployment/web", "2/3 ready", "port 8080"],
      ["$(tasklist) job/migrate", "1/1 ready", undefined],
      ["$(edit) Type a name…", "a pod or deployment/web, -n, -c, -- COMMAND", undefined],
    ],
  );
  assert.equal(exec.at(-1)?.item, undefined, "the input box fallback");
  assert.deepEqual(
    targetPickItems(LISTED, "logs").map((i) => i.item?.target),
    ["pod/api-0", "pod/web-1", "deployment/web", "job/migrate", undefined],
  );
  const pf = targetPickItems(LISTED, "portForward");
  assert.deepEqual(
    pf.map((i) => i.item?.target),
    ["pod/api-0", "pod/web-1", "deployment/web", "service/web", undefined],
    "Services can be forwarded to, Jobs not",
  );
  assert.deepEqual([pf[3].label, pf[3].description, pf[3].detail], ["$(globe) service/web", "ClusterIP", "ports 80, 443"]);
  // odd answers: no items, items without a target, a server that lists more than asked
  assert.deepEqual(targetPickItems(undefined, "exec").length, 1);
  assert.deepEqual(targetPickItems({ items: [{ kind: "Pod", name: "x" }, { kind: "Service", name: "s", target: "service/s" }] }, "exec").length, 1);
  assert.equal(itemDescription({ kind: "Pod", name: "p" }), undefined);
  assert.equal(itemDetail({ kind: "Service", name: "s", ports: [] }), undefined);
  // what the commands get: the target in the item's namespace (else the answer's)
  assert.deepEqual(itemTarget(LISTED.items[1], LISTED), { pod: "web-1", namespace: "shop" });
  assert.deepEqual(itemTarget({ kind: "Deployment", name: "web", target: "deployment/web" }, LISTED), { workload: "deployment/web", namespace: "shop" });
  assert.deepEqual(itemTarget({ kind: "Service", name: "web", target: "service/web" }), { service: "web" });
  assert.equal(itemTarget({ kind: "Namespace", name: "default" }), undefined);
  // ports: each as :PORT, all of them when several, then Other…
  assert.deepEqual(
    portPickItems(LISTED.items[4]).map((p) => [p.label, p.ports]),
    [
      [":80", [":80"]],
      [":443", [":443"]],
      [":80 :443", [":80", ":443"]],
      ["$(edit) Other…", undefined],
    ],
  );
  assert.deepEqual(portPickItems(LISTED.items[0]).map((p) => p.label), ["$(edit) Other…"]);
  assert.deepEqual(namespacesOf(LISTED), ["kube-system"]);
  assert.deepEqual(namespacesOf({}), []);
});

test("Exec picks a listed pod (asking which container when it has several) or a workload; no input box", async () => {
  const { exec, calls } = listing();
  const single = choosing("pod/web-1");
  single.input = async () => assert.fail("no input box");
  await byId("ktl.ui.exec").run({ ui: single, exec });
  assert.deepEqual(calls, [{ command: "ktl.k8s.list", args: { kinds: ["pods", "deployments", "statefulsets", "daemonsets", "jobs"] } }]);
  assert.deepEqual(single.opened, [{ exec: { pod: "web-1", namespace: "shop" }, title: "ktl exec: pod/web-1 -n shop" }]);
  assert.equal(single.picks.length, 1, "one container: not asked");
  const several = choosing("pod/api-0", "envoy");
  await byId("ktl.ui.exec").run({ ui: several, exec });
  assert.deepEqual(several.picks[1], [{ label: "api", description: "the pod's first" }, { label: "envoy", description: undefined }]);
  assert.deepEqual(several.opened, [{ exec: { pod: "api-0", namespace: "shop", container: "envoy" }, title: "ktl exec: pod/api-0 -n shop" }]);
  const dismissed = choosing("pod/api-0"); // the container pick is dismissed
  await byId("ktl.ui.exec").run({ ui: dismissed, exec });
  assert.deepEqual(dismissed.opened, []);
  const workload = choosing("deployment/web");
  await byId("ktl.ui.exec").run({ ui: workload, exec });
  assert.deepEqual(workload.opened, [{ exec: { workload: "deployment/web", namespace: "shop" }, title: "ktl exec: deployment/web -n shop" }]);
  const cancelled = choosing();
  await byId("ktl.ui.exec").run({ ui: cancelled, exec });
  assert.deepEqual([cancelled.opened, cancelled.infos], [[], []]);
});

test("Exec: Type a name… and a failed list fall back to the input box", async () => {
  const { exec } = listing();
  const prompts: string[] = [];
  const typed = choosing("Type a name");
  typed.input = async (p) => (prompts.push(p), "web-0 -c sidecar -- sh");
  await byId("ktl.ui.exec").run({ ui: typed, exec });
  assert.match(prompts[0], /^Pod or workload to exec into/, "no complaint: the user chose to type");
  assert.deepEqual(typed.opened, [{ exec: { pod: "web-0", container: "sidecar", command: ["sh"] }, title: "ktl exec: pod/web-0 -- sh" }]);
  const failing = fakeExec({
    "ktl.k8s.list": () => {
      throw new Error("pods is forbidden: User cannot list resource");
    },
  });
  const fallback = fakeUi({ input: async (p) => (prompts.push(p), "deployment/web") });
  await byId("ktl.ui.exec").run({ ui: fallback, exec: failing.exec });
  assert.equal(prompts[1], "Could not list the cluster: pods is forbidden: User cannot list resource. Pod or workload to exec into: TARGET [-n NAMESPACE] [-c CONTAINER] [-- COMMAND]");
  assert.equal(fallback.picks.length, 0);
  assert.deepEqual(fallback.opened, [{ exec: { workload: "deployment/web" }, title: "ktl exec: deployment/web" }]);
});

test("Logs picks a listed pod or workload, else asks for a pod, kind/name or selector", async () => {
  const { exec, calls } = listing();
  const ui = choosing("deployment/web");
  await byId("ktl.ui.logs").run({ ui, exec });
  assert.deepEqual(calls.map((c) => [c.command, c.args]), [
    ["ktl.k8s.list", { kinds: LIST_KINDS.logs }],
    ["ktl.logs", { workload: "deployment/web", namespace: "shop", detach: true }],
    ["ktl.session.get", { sessionId: "l1" }],
  ]);
  assert.deepEqual(ui.opened, [{ attach: session("l1", "running"), title: "ktl logs: deployment/web" }]);
  const pod = choosing("pod/web-1");
  calls.length = 0;
  await byId("ktl.ui.logs").run({ ui: pod, exec });
  assert.deepEqual(calls[1].args, { pod: "web-1", namespace: "shop", detach: true });
  // no cluster: the selector is typed
  const none = fakeExec({
    "ktl.k8s.list": () => {
      throw new Error("no kubeconfig found");
    },
    "ktl.logs": () => ({ sessionId: "l2", state: "running" }),
    "ktl.session.get": (a) => session(String(a.sessionId), "running"),
  });
  const prompts: string[] = [];
  const typed = fakeUi({ input: async (p) => (prompts.push(p), " app=web ") });
  await byId("ktl.ui.logs").run({ ui: typed, exec: none.exec });
  assert.equal(prompts[0], "Could not list the cluster: no kubeconfig found. Pod, kind/name or label selector");
  assert.deepEqual(none.calls[1], { command: "ktl.logs", args: { selector: "app=web", detach: true } });
});

test("Port-forward picks a pod, workload or Service, then one of its ports (:PORT), all, or Other…", async () => {
  const { exec, calls } = listing();
  const svc = choosing("service/web", ":443");
  await byId("ktl.ui.portForward").run({ ui: svc, exec });
  assert.deepEqual(calls.map((c) => [c.command, c.args]), [
    ["ktl.k8s.list", { kinds: ["pods", "deployments", "statefulsets", "daemonsets", "services"] }],
    ["ktl.portForward", { service: "web", namespace: "shop", ports: [":443"] }],
  ]);
  assert.deepEqual(svc.picks[1].map((p) => p.label), [":80", ":443", ":80 :443", "$(edit) Other…"]);
  assert.deepEqual(svc.asked, ["Forwarding http://127.0.0.1:43123 -> service/web:80"]);
  const all = choosing("service/web", ":80 :443");
  calls.length = 0;
  await byId("ktl.ui.portForward").run({ ui: all, exec });
  assert.deepEqual(calls[1].args, { service: "web", namespace: "shop", ports: [":80", ":443"] });
  // Other…: LOCAL:REMOTE typed (offered: the first port on the same local port)
  const other = choosing("deployment/web", "Other");
  const offered: (string | undefined)[] = [];
  other.input = async (_p, opts) => (offered.push(opts?.value), "9090:8080");
  calls.length = 0;
  await byId("ktl.ui.portForward").run({ ui: other, exec });
  assert.deepEqual(offered, ["8080:8080"]);
  assert.deepEqual(calls[1].args, { workload: "deployment/web", namespace: "shop", ports: ["9090:8080"] });
  // a pod that declares no ports: straight to the input box
  const bare = choosing("pod/api-0");
  const offeredBare: (string | undefined)[] = [];
  bare.input = async (_p, opts) => (offeredBare.push(opts?.value), ":9000");
  calls.length = 0;
  await byId("ktl.ui.portForward").run({ ui: bare, exec });
  assert.equal(bare.picks.length, 1);
  assert.deepEqual(offeredBare, [":80"]);
  assert.deepEqual(calls[1].args, { pod: "api-0", namespace: "shop", ports: [":9000"] });
  // bad ports typed, a dismissed port pick: nothing is started
  const bad = choosing("pod/api-0");
  bad.input = async () => "80:http";
  calls.length = 0;
  await byId("ktl.ui.portForward").run({ ui: bad, exec });
  assert.deepEqual(bad.infos, ['error: ktl port-forward: port "80:http": expected LOCAL:REMOTE, :REMOTE or PORT']);
  await byId("ktl.ui.portForward").run({ ui: choosing("service/web"), exec });
  assert.deepEqual(calls.map((c) => c.command), ["ktl.k8s.list", "ktl.k8s.list"]);
  // Type a name…: the old input boxes
  const answers = ["svc/web -n other", ":80"];
  const typed = choosing("Type a name");
  typed.input = async () => answers.shift();
  calls.length = 0;
  await byId("ktl.ui.portForward").run({ ui: typed, exec });
  assert.deepEqual(calls[1].args, { service: "web", namespace: "other", ports: [":80"] });
});

test("Switch Namespace offers the cluster's namespaces (ktl.k8s.list), else the known ones", async () => {
  const { exec, calls } = fakeExec({
    "ktl.k8s.contexts": () => CONTEXTS,
    "ktl.k8s.list": () => ({ context: "kind-dev", namespace: "web", items: [{ kind: "Namespace", name: "default" }, { kind: "Namespace", name: "kube-system" }, { kind: "Namespace", name: "payments" }] }),
    "ktl.k8s.use": (a) => ({ context: null, namespace: a.namespace || null }),
  });
  const ui = choosing("payments");
  await byId("ktl.ui.k8s.namespace").run({ ui, exec });
  assert.deepEqual(calls.map((c) => [c.command, c.args]), [
    ["ktl.k8s.contexts", {}],
    ["ktl.k8s.list", { kinds: ["namespaces"] }],
    ["ktl.k8s.use", { namespace: "payments" }],
  ]);
  assert.deepEqual(
    ui.picks[0].map((i) => i.label),
    ["$(check) web", "$(blank) default", "$(blank) kube-system", "$(blank) payments", "$(edit) Other namespace…"],
  );
  assert.deepEqual(ui.changed, [{ namespace: "payments" }]);
  // the list fails (RBAC: namespaces are cluster-scoped): the picker as before
  const denied = fakeExec({
    "ktl.k8s.contexts": () => CONTEXTS,
    "ktl.k8s.list": () => {
      throw new Error('namespaces is forbidden: User "dev" cannot list resource "namespaces"');
    },
  });
  const before = choosing();
  await byId("ktl.ui.k8s.namespace").run({ ui: before, exec: denied.exec });
  assert.deepEqual(before.picks[0].map((i) => i.label), ["$(check) web", "$(blank) default", "$(edit) Other namespace…"]);
  assert.deepEqual(before.infos, []);
});

test("Render lens: the server's manifests open read-only as one YAML stream", async () => {
  const answer: RenderAnswer = {
    chart: "/w/charts/web",
    label: "ci/ha-values.yaml",
    manifests: { "templates/service.yaml": "apiVersion: v1\nkind: Service\n", "templates/x.yaml": "a: 1\n\n" },
    cutShort: false,
    error: null,
  };
  const shown: [string, string, string][] = [];
  const ui = fakeUi({ showReadOnly: async (n, c, l) => void shown.push([n, c, l]) });
  const args: unknown[] = [];
  const next = async (c: string, a: unknown[]) => (args.push([c, a]), answer);
  const lensArgs = [{ uri: "file:///w/charts/web/Chart.yaml", valuesFiles: ["ci/ha-values.yaml"] }];
  assert.equal(await lensCommand({ ui, exec: fakeExec({}).exec }, "ktl.helm.render", lensArgs, next), answer);
  assert.deepEqual(args, [["ktl.helm.render", lensArgs]], "the server renders, with the lens's arguments");
  assert.deepEqual(shown, [
    [
      "web (ci_ha-values.yaml).yaml",
      "# /w/charts/web rendered with ci/ha-values.yaml\n---\n# Source: templates/service.yaml\napiVersion: v1\nkind: Service\n---\n# Source: templates/x.yaml\na: 1\n",
      "yaml",
    ],
  ]);
  const failed = renderedText({ ...answer, manifests: {}, cutShort: true, error: { message: "nil pointer", template: "templates/x.yaml", line: 7 } });
  assert.equal(failed, "# /w/charts/web rendered with ci/ha-values.yaml\n# error: templates/x.yaml:8: nil pointer\n# the render was cut short: only part of it is shown\n");
});
