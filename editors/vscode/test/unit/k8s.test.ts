/** The Kubernetes surfaces (src/core/k8s.ts and their commands), with the server and the UI faked. */
import { strict as assert } from "node:assert";
import { test } from "node:test";
import { COMMANDS, CommandContext, lensCommand, startPortForward, Ui } from "../../src/core/commands";
import {
  ContextsAnswer,
  contextPickItems,
  execSpecOf,
  forwardMessage,
  k8sStatusOf,
  loadK8sStatus,
  namespacePickItems,
  parsePorts,
  parseTarget,
  parseTargetLine,
  portForwardSpecOf,
  restoreSelection,
  selectionOf,
  splitArgs,
  statusTooltip,
  targetLabel,
} from "../../src/core/k8s";
import { SessionRouter } from "../../src/core/router";
import { contextKey, contextKeys } from "../../src/core/server";
import { sessionItem, statusText } from "../../src/core/sessions";
import { SessionTerminal } from "../../src/core/terminal";
import { Exec, Session } from "../../src/core/types";

type Call = { command: string; args: Record<string, unknown> };

function fakeExec(answers: Record<string, (args: Record<string, unknown>) => unknown> = {}): { exec: Exec; calls: Call[] } {
  const calls: Call[] = [];
  const exec = (async (command: string, args: object = {}) => {
    calls.push({ command, args: args as Record<string, unknown> });
    const fn = answers[command];
    return fn ? fn(args as Record<string, unknown>) : {};
  }) as Exec;
  return { exec, calls };
}

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
    openTerminal: (a) => opened.push(a),
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
  assert.equal(calls.length, before + 1, "only ktl.k8s.contexts: nothing was changed");
});

test("Exec: the prompt's target becomes a terminal started with ktl.exec", async () => {
  const ui = fakeUi({ input: async () => "deployment/web -n shop -- sh" });
  const { exec, calls } = fakeExec();
  await byId("ktl.ui.exec").run({ ui, exec });
  assert.deepEqual(ui.opened, [{ exec: { workload: "deployment/web", namespace: "shop", command: ["sh"] }, title: "ktl exec: deployment/web -n shop -- sh" }]);
  assert.deepEqual(calls, [], "the terminal starts the session (with its size)");
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
  const { exec, calls } = fakeExec({ "ktl.portForward": () => FORWARDED, "ktl.session.cancel": () => ({ sessionId: "pf1", state: "cancelled" }) });
  const ui = fakeUi({ input: async () => answers.shift(), ask: async (m, actions) => (ui.asked.push(`${m} [${actions.join("|")}]`), "Open in Browser") });
  await byId("ktl.ui.portForward").run({ ui, exec });
  assert.deepEqual(calls, [{ command: "ktl.portForward", args: { service: "web", namespace: "shop", ports: [":80"] } }]);
  assert.deepEqual(ui.asked, ["Forwarding http://127.0.0.1:43123 -> service/web:80 [Open in Browser|Stop]"]);
  assert.deepEqual(ui.external, ["http://127.0.0.1:43123"]);
  // ports on the target line: no second prompt; Stop cancels the session
  const stop = fakeUi({ input: async () => "deployment/web 8080:80", ask: async () => "Stop" });
  calls.length = 0;
  await byId("ktl.ui.portForward").run({ ui: stop, exec });
  assert.deepEqual(calls, [
    { command: "ktl.portForward", args: { workload: "deployment/web", ports: ["8080:80"] } },
    { command: "ktl.session.cancel", args: { sessionId: "pf1" } },
  ]);
  // an object without ports (another extension): only the ports are asked
  const noPorts = fakeUi({ input: async () => "8443:443", ask: async () => undefined });
  calls.length = 0;
  await byId("ktl.ui.portForward").run({ ui: noPorts, exec }, { service: "web" });
  assert.deepEqual(calls, [{ command: "ktl.portForward", args: { service: "web", ports: ["8443:443"] } }]);
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
