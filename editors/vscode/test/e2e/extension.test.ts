/**
 * extension.ts itself (the glue over the vscode API), activated in Node with a fake `vscode`
 * module and a stand-in for vscode-languageclient's LanguageClient that speaks JSON-RPC to the
 * real server. What it checks: every contributed command is registered, context keys follow the
 * server's commands, `ktl: Run Command as Session…` opens a Pseudoterminal that streams, takes
 * input and ends, and the Sessions view and status bar follow; the status bar's Kubernetes
 * context (KTL_TEST_KUBECONFIG from the pytest side, else a kubeconfig written here) and the
 * context picker; CodeLens commands going through the language client's middleware.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import { strict as assert } from "node:assert";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { createMessageConnection, MessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import {
  CompletionRequest,
  DidChangeConfigurationNotification,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  ExitNotification,
  InitializeRequest,
  InitializedNotification,
  ShutdownRequest,
} from "vscode-languageserver-protocol";
import { Emitter } from "../../src/core/emitter";
import { noCluster, testKubeconfig } from "../support/kubeconfig";

const EXT = path.resolve(__dirname, "..", "..", "..");
const REPO = path.resolve(EXT, "..", "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ktl-ext-"));
// the server inherits it (as the real LanguageClient's child would)
process.env.KUBECONFIG = testKubeconfig(tmp);

const config: Record<string, unknown> = {
  "server.path": process.env.KTL_LSP || path.join(REPO, ".venv", "bin", "ktl-lsp"),
  store: path.join(tmp, "sessions.db"),
};
const commands = new Map<string, (...args: any[]) => any>();
const contexts = new Map<string, unknown>();
const terminals: { name: string; pty: any }[] = [];
const messages: string[] = [];
const trees = new Map<string, any>();
const statusItems: any[] = [];
const spawned: ChildProcess[] = [];
let initOptions: unknown;
const inputAnswers: string[] = [];
const treeOptions = new Map<string, any>();
const secrets = new Map<string, string>();
const opened: string[] = [];
const documents: { content: string; language: string }[] = [];
const workspaceState = new Map<string, unknown>();
const globalState = new Map<string, unknown>();
/** Other extensions' settings by section (`yaml` for redhat.vscode-yaml), with the scope written. */
const otherConfig: Record<string, Record<string, unknown>> = { yaml: {} };
const configWrites: { section: string; key: string; value: unknown; target: number }[] = [];
const configListeners: ((e: { affectsConfiguration(s: string): boolean }) => void)[] = [];
const extensionListeners: (() => void)[] = [];
const installed = new Set<string>();
const clients: FakeLanguageClient[] = [];
const extensionContext = {
  subscriptions: [] as unknown[],
  globalState: {
    get: (k: string) => globalState.get(k),
    update: async (k: string, v: unknown) => void globalState.set(k, v),
    keys: () => [...globalState.keys()],
  },
  workspaceState: {
    get: (k: string) => workspaceState.get(k),
    update: async (k: string, v: unknown) => void (v === undefined ? workspaceState.delete(k) : workspaceState.set(k, v)),
    keys: () => [...workspaceState.keys()],
  },
  secrets: {
    get: async (k: string) => secrets.get(k),
    store: async (k: string, v: string) => void secrets.set(k, v),
    delete: async (k: string) => void secrets.delete(k),
    onDidChange: () => disposable,
  },
};

const disposable = { dispose: () => undefined };

class EventEmitter<T> extends Emitter<T> {}
class TreeItem {
  id?: string;
  description?: string;
  tooltip?: string;
  iconPath?: unknown;
  contextValue?: string;
  command?: unknown;
  constructor(
    public label: string,
    public collapsibleState?: number,
  ) {}
}
class ThemeIcon {
  constructor(public id: string) {}
}

const fakeVscode = {
  version: "1.90.0",
  EventEmitter,
  TreeItem,
  ThemeIcon,
  TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
  StatusBarAlignment: { Left: 1, Right: 2 },
  Uri: { parse: (s: string) => ({ toString: () => s }), joinPath: (u: any, n: string) => ({ fsPath: path.join(u.fsPath, n) }) },
  env: { openExternal: async (u: { toString(): string }) => (opened.push(u.toString()), true) },
  window: {
    createOutputChannel: () => ({ info() {}, warn() {}, error() {}, debug() {}, trace() {}, append() {}, appendLine() {}, show() {}, dispose() {} }),
    createStatusBarItem: () => {
      const item = { text: "", command: "", show() {}, hide() {}, dispose() {} };
      statusItems.push(item);
      return item;
    },
    registerTreeDataProvider: (id: string, provider: any) => (trees.set(id, provider), disposable),
    createTreeView: (id: string, opts: { treeDataProvider: any; canSelectMany?: boolean }) => {
      trees.set(id, opts.treeDataProvider);
      treeOptions.set(id, opts);
      return { dispose() {}, reveal: async () => undefined };
    },
    createTerminal: (opts: { name: string; pty: any }) => {
      terminals.push(opts);
      return { show() {}, dispose() {} };
    },
    showInformationMessage: async (m: string, ..._actions: string[]) => void messages.push(m),
    onDidChangeWindowState: () => disposable,
    showErrorMessage: async (m: string) => void messages.push(`error: ${m}`),
    showWarningMessage: async (m: string) => void messages.push(`warning: ${m}`),
    showInputBox: async () => inputAnswers.shift(),
    showQuickPick: async (items: any[]) => items[0],
    showTextDocument: async () => undefined,
    showSaveDialog: async () => undefined,
    activeTextEditor: undefined,
  },
  commands: {
    registerCommand: (id: string, fn: (...args: any[]) => any) => {
      assert.ok(!commands.has(id), `${id} registered twice`);
      commands.set(id, fn);
      return { dispose: () => void (commands.get(id) === fn && commands.delete(id)) };
    },
    executeCommand: async (id: string, ...args: any[]) => {
      if (id === "setContext") return void contexts.set(args[0], args[1]);
      return commands.get(id)?.(...args);
    },
  },
  ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
  extensions: {
    getExtension: (id: string) => (installed.has(id) ? { id, isActive: true } : undefined),
    onDidChange: (fn: () => void) => (extensionListeners.push(fn), disposable),
  },
  workspace: {
    getConfiguration: (section = "ktl") => {
      const values = section === "ktl" ? config : otherConfig[section] ?? {};
      return {
        get: (key: string, def?: unknown) => (key in values ? values[key] : def),
        // as VS Code: store, then tell every onDidChangeConfiguration listener
        update: async (key: string, value: unknown, target: number) => {
          values[key] = value;
          configWrites.push({ section, key, value, target });
          const changed = `${section}.${key}`;
          for (const fn of configListeners) fn({ affectsConfiguration: (s: string) => changed === s || changed.startsWith(`${s}.`) });
        },
      };
    },
    workspaceFolders: [{ uri: { fsPath: tmp } }],
    onDidChangeConfiguration: (fn: (e: { affectsConfiguration(s: string): boolean }) => void) => (configListeners.push(fn), disposable),
    openTextDocument: async (d: { content: string; language: string }) => (documents.push(d), {}),
  },
};

/** Just enough of vscode-languageclient's LanguageClient, over the real server. */
class FakeLanguageClient {
  private conn: MessageConnection | undefined;
  private handlers: [string, (p: any) => void][] = [];
  private registered: { dispose(): void }[] = [];
  private running = false;
  initializeResult: any;
  constructor(
    _id: string,
    _name: string,
    private server: { command: string; args: string[] },
    private options: any,
  ) {
    clients.push(this);
  }
  onNotification(method: string, handler: (p: any) => void) {
    this.handlers.push([method, handler]);
    this.conn?.onNotification(method, handler);
    return disposable;
  }
  onDidChangeState() {
    return disposable;
  }
  isRunning() {
    return this.running;
  }
  async start() {
    const proc = spawn(this.server.command, this.server.args, { cwd: tmp, stdio: ["pipe", "pipe", "ignore"] });
    spawned.push(proc);
    const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    this.conn = conn;
    for (const [m, h] of this.handlers) conn.onNotification(m, h);
    conn.onRequest("window/workDoneProgress/create", () => null);
    conn.onRequest("workspace/configuration", (p: any) => p.items.map(() => null));
    conn.onRequest("client/registerCapability", () => null);
    conn.onRequest("workspace/codeLens/refresh", () => null);
    conn.listen();
    initOptions = this.options.initializationOptions;
    this.initializeResult = await conn.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: `file://${tmp}`,
      capabilities: { window: { workDoneProgress: true } },
      initializationOptions: this.options.initializationOptions,
    });
    await conn.sendNotification(InitializedNotification.type, {});
    this.running = true;
    // like vscode-languageclient's ExecuteCommandFeature: each server command is a VS Code
    // command (what a CodeLens runs), through middleware.executeCommand when there is one
    const middleware = this.options.middleware ?? {};
    for (const id of this.initializeResult.capabilities.executeCommandProvider?.commands ?? []) {
      const next = (command: string, args: any[]) => conn.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
      this.registered.push(
        fakeVscode.commands.registerCommand(id, (...args: any[]) =>
          middleware.executeCommand ? middleware.executeCommand(id, args, next) : next(id, args),
        ),
      );
    }
  }
  sendRequest(type: any, params: any) {
    return this.conn!.sendRequest(type, params);
  }
  sendNotification(type: any, params: any) {
    return this.conn!.sendNotification(type, params);
  }
  async dispose() {
    this.running = false;
    for (const r of this.registered.splice(0)) r.dispose();
    try {
      await Promise.race([this.conn?.sendRequest(ShutdownRequest.type), new Promise((r) => setTimeout(r, 2000))]);
      await this.conn?.sendNotification(ExitNotification.type);
    } catch {
      // gone
    }
    this.conn?.dispose();
  }
}

const fakeClientModule = {
  LanguageClient: FakeLanguageClient,
  ExecuteCommandRequest,
  DidChangeConfigurationNotification,
  ErrorAction: { Continue: 1, Shutdown: 2 },
  CloseAction: { DoNotRestart: 1, Restart: 2 },
  State: { Stopped: 1, Running: 2, Starting: 3 },
  TransportKind: { stdio: 0, ipc: 1, pipe: 2, socket: 3 },
};

// eslint-disable-next-line @typescript-eslint/no-require-imports
const Module = require("node:module") as any;
const originalLoad = Module._load;
Module._load = function (request: string, ...rest: unknown[]) {
  if (request === "vscode") return fakeVscode;
  if (request === "vscode-languageclient/node") return fakeClientModule;
  return originalLoad.call(this, request, ...rest);
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const extension = require("../../src/extension") as typeof import("../../src/extension");

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(async () => {
  await extension.activate(extensionContext as any);
});

after(async () => {
  await extension.deactivate();
  Module._load = originalLoad;
  await new Promise((r) => setTimeout(r, 200));
  for (const p of spawned) if (p.exitCode === null) p.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("activation registers every contributed command and sets the context keys", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(EXT, "package.json"), "utf8"));
  for (const c of pkg.contributes.commands as { command: string }[]) assert.ok(commands.has(c.command), c.command);
  assert.deepEqual(initOptions, { sessionData: true });
  assert.equal(contexts.get("ktl.server.running"), true);
  assert.equal(typeof contexts.get("ktl.server.has.apply"), "boolean", "set either way (the k8s commands are still landing)");
  for (const key of ["session_replay", "session_export", "session_pin", "session_delete", "sessions_diff", "plan_run", "plan_cancelNode", "k8s_contexts", "k8s_use"]) {
    assert.equal(contexts.get(`ktl.server.has.${key}`), true, key);
  }
  assert.ok(trees.has("ktl.sessions"));
});

test("Run Command as Session opens a live terminal; the view and status bar follow", async () => {
  inputAnswers.push("printf 'hi there\\n'; read x; echo \"got:$x\"");
  await fakeVscode.commands.executeCommand("ktl.ui.run");
  const term = await until("a terminal", () => terminals[0]);
  let out = "";
  term.pty.onDidWrite((d: string) => (out += d));
  term.pty.open({ columns: 80, rows: 24 });
  await until("output", () => out.includes("hi there"));
  await until("a running session in the status bar", () => statusItems[0].text.includes("1 running"));
  term.pty.handleInput("abc\r");
  await until("the end", () => out.includes("[ktl] session done (exit 0)"));
  assert.match(out, /got:abc/);
  const provider = trees.get("ktl.sessions");
  const sessions = await until("the session in the view", () => {
    const list = provider.getChildren();
    return list.length > 0 && list[0].state === "done" ? list : undefined;
  });
  const item = provider.getTreeItem(sessions[0]);
  assert.equal(item.iconPath.id, "pass");
  assert.match(item.description, /^done · .* · exit 0$/);
  assert.equal(item.contextValue, "ktlSession ended");
  assert.equal(statusItems[0].text, "$(terminal) ktl $(cloud) fake/default");
  term.pty.close();
  assert.deepEqual(messages.filter((m) => m.startsWith("error")), []);
});

test("closing a running session's terminal asks, and cancels on yes", async () => {
  fakeVscode.window.showWarningMessage = async (m: string) => (messages.push(`warning: ${m}`), "Cancel Session" as any);
  inputAnswers.push("echo started; sleep 60");
  await fakeVscode.commands.executeCommand("ktl.ui.run");
  const term = await until("a second terminal", () => terminals[1]);
  let out = "";
  term.pty.onDidWrite((d: string) => (out += d));
  term.pty.open({ columns: 80, rows: 24 });
  await until("started", () => out.includes("started"));
  term.pty.close();
  await until("cancelled", () => {
    const s = trees.get("ktl.sessions").getChildren()[0];
    return s && s.state === "cancelled";
  });
  assert.ok(messages.some((m) => /warning: Session \w+ is still running/.test(m)));
});

test("Run Plan on the active plan file: the plan expands to its nodes in the view", async () => {
  const file = path.join(tmp, "ext.plan.yaml");
  fs.writeFileSync(file, ["name: ext", "nodes:", "  - id: one", "    run: echo one", "  - id: two", "    run: echo two", "    deps: [one]", ""].join("\n"));
  (fakeVscode.window as any).activeTextEditor = { document: { uri: { toString: () => `file://${file}` } } };
  const before = terminals.length;
  await fakeVscode.commands.executeCommand("ktl.ui.plan.run");
  (fakeVscode.window as any).activeTextEditor = undefined;
  assert.equal(terminals.length, before + 1, "a terminal on the plan session");
  assert.ok(messages.some((m) => /^ktl plan ext\.plan\.yaml: done \(exit 0\)/.test(m)), messages.join("\n"));
  const provider = trees.get("ktl.sessions");
  assert.equal(treeOptions.get("ktl.sessions").canSelectMany, true);
  const plan = await until("the plan at the top", () => provider.getChildren().find((s: any) => s.kind === "plan"));
  assert.equal(provider.getTreeItem(plan).collapsibleState, fakeVscode.TreeItemCollapsibleState.Collapsed);
  assert.ok(!provider.getChildren().some((s: any) => s.parentId === plan.sessionId), "nodes only under the plan");
  const nodes = await provider.getChildren(plan);
  assert.deepEqual(
    nodes.map((n: any) => provider.getTreeItem(n).label.split(":")[0]),
    ["one", "two"],
  );
  assert.deepEqual(nodes.map((n: any) => n.meta.node), ["one", "two"]);
  assert.match(provider.getTreeItem(nodes[0]).contextValue, /ktlSession ended node/);
});

test("context menu: replay opens the browser, export saves, pin, compare two selected, delete", async () => {
  const provider = trees.get("ktl.sessions");
  const list = provider.getChildren().filter((s: any) => s.kind !== "plan");
  const [newer, older] = list;
  await fakeVscode.commands.executeCommand("ktl.ui.session.replay", older);
  assert.match(opened.at(-1) ?? "", /^http:\/\/127\.0\.0\.1:\d+\//);
  const target = path.join(tmp, "export.cast");
  (fakeVscode.window as any).showSaveDialog = async () => ({ fsPath: target });
  await fakeVscode.commands.executeCommand("ktl.ui.session.export", older);
  assert.equal(JSON.parse(fs.readFileSync(target, "utf8").split("\n")[0]).version, 2);
  await fakeVscode.commands.executeCommand("ktl.ui.session.pin", older);
  await until("pinned in the view", () => provider.getChildren().find((s: any) => s.sessionId === older.sessionId && s.pinned));
  assert.match(provider.getTreeItem(provider.getChildren().find((s: any) => s.sessionId === older.sessionId)).contextValue, /pinned/);
  await fakeVscode.commands.executeCommand("ktl.ui.sessions.diff", newer, [newer, older]);
  const doc = documents.at(-1)!;
  assert.equal(doc.language, "diff");
  assert.match(doc.content, new RegExp(`# a: .*${older.sessionId}`));
  assert.match(doc.content, new RegExp(`# b: .*${newer.sessionId}`));
  (fakeVscode.window as any).showWarningMessage = async (_m: string, _o: unknown, action?: string) => action;
  await fakeVscode.commands.executeCommand("ktl.ui.session.delete", newer);
  await until("deleted from the view", () => !provider.getChildren().some((s: any) => s.sessionId === newer.sessionId));
  assert.deepEqual(messages.filter((m) => m.startsWith("error")), []);
});

test("quick picks from the cluster (ktl.k8s.list): Exec into pod/web-1, Port-forward to service/web :80", async (t) => {
  const why = noCluster();
  if (why) return t.skip(why);
  assert.ok(commands.has("ktl.k8s.list"), "the server advertises ktl.k8s.list");
  const original = fakeVscode.window.showQuickPick;
  const picks: { items: any[]; placeHolder: string }[] = [];
  const choose = (...labels: string[]) =>
    ((fakeVscode.window as any).showQuickPick = async (items: any[], opts: { placeHolder: string }) => {
      picks.push({ items, placeHolder: opts.placeHolder });
      const want = labels.shift();
      return items.find((i) => i.label.endsWith(want));
    });
  try {
    // exec: the terminal is named after the pick (opening it would start ktl.exec)
    choose(" pod/web-1");
    const before = terminals.length;
    await fakeVscode.commands.executeCommand("ktl.ui.exec");
    assert.equal(picks[0].placeHolder, "Exec into (context fake, namespace default)");
    const web1 = picks[0].items.find((i) => i.label === "$(vm) pod/web-1");
    assert.ok(web1, picks[0].items.map((i) => i.label).join(", "));
    assert.equal(web1.description, "Running · ready");
    assert.equal(web1.detail, "container app");
    assert.ok(!picks[0].items.some((i) => i.label.includes("service/")), "no Services to exec into");
    assert.equal(terminals.length, before + 1);
    assert.equal(terminals.at(-1)!.name, "ktl exec: pod/web-1 -n default");
    // port-forward: the Service, then its port; the real server forwards
    picks.length = 0;
    messages.length = 0;
    choose(" service/web", ":80");
    await fakeVscode.commands.executeCommand("ktl.ui.portForward");
    assert.deepEqual(picks[1].items.map((i) => i.label), [":80", "$(edit) Other…"]);
    assert.ok(messages.some((m) => /^Forwarding http:\/\/127\.0\.0\.1:\d+ -> service\/web:80$/.test(m)), messages.join("\n"));
  } finally {
    fakeVscode.window.showQuickPick = original;
    const running = await fakeVscode.commands.executeCommand("ktl.sessions.list", { kind: "port-forward", state: "running" });
    for (const s of running?.sessions ?? []) await fakeVscode.commands.executeCommand("ktl.session.cancel", { sessionId: s.sessionId });
  }
  assert.deepEqual(messages.filter((m) => m.startsWith("error")), []);
});

test("the status bar shows the kubeconfig's context; clicking it switches (ktl.k8s.use), remembered per workspace", async () => {
  const status = statusItems[0];
  await until("the context in the status bar", () => status.text.endsWith("$(cloud) fake/default"));
  assert.equal(status.command, "ktl.ui.k8s.context");
  assert.match(status.tooltip, /Kubernetes context fake \(cluster fake\), namespace default/);
  const original = fakeVscode.window.showQuickPick;
  const picks: any[][] = [];
  fakeVscode.window.showQuickPick = async (items: any[]) => (picks.push(items), items.find((i) => i.context === "staging"));
  await fakeVscode.commands.executeCommand(status.command);
  assert.deepEqual(picks[0].map((i: any) => i.context), ["fake", "staging"]);
  assert.match(picks[0][0].label, /^\$\(check\) fake$/);
  assert.equal(status.text, "$(terminal) ktl $(cloud) staging/default");
  assert.deepEqual(workspaceState.get("ktl.k8s.selection"), { context: "staging" });
  // the namespace: "Other namespace…" asks for one
  const offered: string[] = [];
  fakeVscode.window.showQuickPick = async (items: any[]) => (offered.push(...items.map((i) => i.label)), items.find((i) => i.label.includes("Other")));
  inputAnswers.push("shop");
  await fakeVscode.commands.executeCommand("ktl.ui.k8s.namespace");
  if (!noCluster()) {
    // the loopback cluster's namespaces (ktl.k8s.list), besides the active one
    assert.deepEqual(offered.slice(0, 2), ["$(check) default", "$(blank) kube-system"], offered.join(", "));
  }
  assert.equal(status.text, "$(terminal) ktl $(cloud) staging/shop");
  assert.deepEqual(workspaceState.get("ktl.k8s.selection"), { context: "staging", namespace: "shop" });
  fakeVscode.window.showQuickPick = original;
  assert.deepEqual(messages.filter((m) => m.startsWith("error")), []);
});

test("CodeLens commands go through the client's middleware: Exec opens a terminal, Run the plan's", async () => {
  assert.ok(commands.has("ktl.plan.run"), "the server advertises ktl.plan.run");
  assert.ok(commands.has("ktl.exec"), "the server advertises ktl.exec");
  const before = terminals.length;
  // the terminal is not opened here: opening it starts ktl.exec (server.test.ts covers that)
  await fakeVscode.commands.executeCommand("ktl.exec", { workload: "deployment/web", namespace: "shop" });
  assert.equal(terminals.length, before + 1, "a terminal for the exec session");
  assert.equal(terminals.at(-1)!.name, "ktl exec: deployment/web -n shop");
  const count = terminals.length;
  const file = path.join(tmp, "lens.plan.yaml");
  fs.writeFileSync(file, ["name: lens", "nodes:", "  - id: one", "    run: echo one", "  - id: two", "    run: echo two", ""].join("\n"));
  await fakeVscode.commands.executeCommand("ktl.plan.run", { uri: `file://${file}`, nodes: ["one"] });
  assert.equal(terminals.length, count + 1, "a terminal on the plan session");
  assert.ok(messages.some((m) => /^ktl plan lens\.plan\.yaml: done \(exit 0\)/.test(m)), messages.join("\n"));
  assert.deepEqual(messages.filter((m) => m.startsWith("error")), []);
});

test("beside the YAML extension: told once; Turn Off ktl's turns the running server's completion off, and on again", async () => {
  const file = path.join(tmp, "coexist.yaml");
  const text = ["apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: web", "spec:", "  template:", "    spec:", "      containers:", "      - name: web", "        image: nginx", ""].join("\n");
  fs.writeFileSync(file, text);
  const client = clients.at(-1)!;
  await client.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri: `file://${file}`, languageId: "yaml", version: 1, text } });
  const labels = async (): Promise<string[]> => {
    const r: any = await client.sendRequest(CompletionRequest.type, { textDocument: { uri: `file://${file}` }, position: { line: 9, character: 9 } });
    return (r?.items ?? r ?? []).map((i: { label: string }) => i.label);
  };
  assert.ok((await labels()).includes("imagePullPolicy"));
  const original = fakeVscode.window.showInformationMessage;
  const asked: { message: string; actions: string[] }[] = [];
  fakeVscode.window.showInformationMessage = async (m: string, ...actions: string[]) => (asked.push({ message: m, actions }), actions[1] as any);
  try {
    installed.add("redhat.vscode-yaml");
    for (const fn of extensionListeners) fn();
    await until("the advice", () => asked.length === 1);
    assert.deepEqual(asked[0].actions, ["Turn Off YAML's", "Turn Off ktl's", "Don't Show Again"]);
    assert.match(asked[0].message, /redhat\.vscode-yaml\) also offers completion and hover/);
    await until("ktl's switches written", () => configWrites.length === 2);
    assert.deepEqual(configWrites, [
      { section: "ktl", key: "completion.enabled", value: false, target: fakeVscode.ConfigurationTarget.Workspace },
      { section: "ktl", key: "hover.enabled", value: false, target: fakeVscode.ConfigurationTarget.Workspace },
    ]);
    assert.equal(globalState.get("ktl.coexistence.yamlShown"), true);
    await until("the server's completion off", async () => (await labels()).length === 0);
    for (const fn of extensionListeners) fn();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(asked.length, 1, "said once");
    await fakeVscode.workspace.getConfiguration("ktl").update("completion.enabled", true, fakeVscode.ConfigurationTarget.Workspace);
    await until("the server's completion on again", async () => (await labels()).includes("imagePullPolicy"));
  } finally {
    fakeVscode.window.showInformationMessage = original;
    delete config["completion.enabled"];
    delete config["hover.enabled"];
  }
  assert.deepEqual(messages.filter((m) => m.startsWith("error")), []);
});

test("Set Remote Agent Token: SecretStorage, then the server restarts with it in initializationOptions", async () => {
  config["retention.intervalS"] = 0;
  inputAnswers.push("tok-e2e");
  await fakeVscode.commands.executeCommand("ktl.ui.agent.setToken");
  assert.equal(secrets.get("ktl.agent.token"), "tok-e2e");
  await until("restarted", () => (initOptions as any)?.agent?.token === "tok-e2e");
  assert.deepEqual(initOptions, { retention: { intervalS: 0 }, agent: { token: "tok-e2e" }, sessionData: true });
  await until("running again", () => contexts.get("ktl.server.running") === true && trees.get("ktl.sessions").getChildren().length > 0);
  // the new server was told the workspace's Kubernetes pick again (it starts from the kubeconfig's)
  let answer: any;
  await until("the pick restored", async () => {
    answer = await fakeVscode.commands.executeCommand("ktl.k8s.contexts", {});
    return answer?.current === "staging" && answer?.namespace === "shop";
  });
  assert.equal(statusItems[0].text, "$(terminal) ktl $(cloud) staging/shop");
});
