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
import { ChildProcess, spawn, spawnSync } from "node:child_process";
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
import { languageClientCapabilities } from "../support/clientCapabilities";
import { httpGet } from "../support/http";
import { noCluster, testKubeconfig } from "../support/kubeconfig";
import { evaluateWhen } from "../support/when";

const EXT = path.resolve(__dirname, "..", "..", "..");
const REPO = path.resolve(EXT, "..", "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ktl-ext-"));
// the server inherits it (as the real LanguageClient's child would)
process.env.KUBECONFIG = testKubeconfig(tmp);
// `ktl: Start Shell` starts $SHELL: bash, whatever the machine's login shell is
process.env.SHELL = "/bin/bash";

const PKG = JSON.parse(fs.readFileSync(path.join(EXT, "package.json"), "utf8"));
/** What VS Code answers for a setting nobody set: the default package.json declares. */
const DEFAULTS: Record<string, unknown> = Object.fromEntries(
  Object.entries(PKG.contributes.configuration.properties as Record<string, { default?: unknown }>)
    .filter(([, p]) => "default" in p)
    .map(([k, p]) => [k, p.default]),
);
/** The user's `ktl.*` settings (keys without the section). */
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
/** What went through env.asExternalUri (the original URIs). */
const exposed: string[] = [];
/** Answers for the next quick picks: each picks an item (a test says which); none left = a failure. */
const quickPicks: ((items: any[], opts?: any) => any)[] = [];
/** The top-level elements each tree view shows, re-read on every onDidChangeTreeData (as VS Code). */
const shownTrees = new Map<string, any[]>();
/** Requests the server made of the client, by method. */
const serverRequests: { method: string; params: any }[] = [];
const stateChanges: { oldState: number; newState: number }[] = [];
/** The extension's warnings and errors in its output channel. */
const logged: string[] = [];
/** What the extension put on the clipboard. */
const clipboard: string[] = [];
const documents: { content: string; language: string }[] = [];
/** Documents opened by URI (read-only virtual ones): their URI, language and text. */
const uriDocuments: { uri: string; languageId?: string; text: string }[] = [];
const contentProviders = new Map<string, { provideTextDocumentContent(uri: any): string }>();
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
  globalStorageUri: { fsPath: path.join(tmp, "global-storage") },
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
  constructor(
    public id: string,
    public color?: ThemeColor,
  ) {}
}
class ThemeColor {
  constructor(public id: string) {}
}

/** MCP server definition providers registered with `vscode.lm` (VS Code 1.101+). */
const mcpProviders = new Map<string, any>();
class McpStdioServerDefinition {
  constructor(
    readonly label: string,
    readonly command: string,
    readonly args: string[],
    readonly env: Record<string, string>,
    readonly version: string,
  ) {}
}

const fakeVscode = {
  lm: {
    registerMcpServerDefinitionProvider: (id: string, provider: any) => (mcpProviders.set(id, provider), disposable),
  },
  McpStdioServerDefinition,
  version: "1.90.0",
  EventEmitter,
  TreeItem,
  ThemeIcon,
  ThemeColor,
  TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
  StatusBarAlignment: { Left: 1, Right: 2 },
  Uri: {
    parse: (s: string) => ({ toString: () => s, scheme: s.split(":")[0], fsPath: s.startsWith("file://") ? decodeURIComponent(s.slice(7)) : "" }),
    file: (f: string) => ({ toString: () => `file://${f}`, scheme: "file", fsPath: f }),
    joinPath: (u: any, n: string) => ({ fsPath: path.join(u.fsPath, n) }),
    from: (c: { scheme: string; path: string }) => ({ ...c, toString: () => `${c.scheme}:${c.path}` }),
  },
  languages: {
    setTextDocumentLanguage: async (doc: { languageId?: string }, languageId: string) => ((doc.languageId = languageId), doc),
  },
  env: {
    clipboard: { writeText: async (t: string) => void clipboard.push(t) },
    /** As in a remote window (SSH, Codespaces): loopback ports reach the user through a tunnel. */
    asExternalUri: async (u: { toString(): string }) => {
      const s = u.toString();
      exposed.push(s);
      const m = /^http:\/\/(?:127\.0\.0\.1|localhost):(\d+)(\/.*)?$/.exec(s);
      const out = m ? `https://${m[1]}.tunnel.test${m[2] ?? "/"}` : s;
      return fakeVscode.Uri.parse(out);
    },
    /** VS Code resolves what it opens through asExternalUri itself. */
    openExternal: async (u: { toString(): string }) => (opened.push((await fakeVscode.env.asExternalUri(u)).toString()), true),
  },
  window: {
    createOutputChannel: () => ({ info() {}, warn: (m: string) => void logged.push(`warn: ${m}`), error: (m: string) => void logged.push(`error: ${m}`), debug() {}, trace() {}, append() {}, appendLine() {}, show() {}, dispose() {} }),
    createStatusBarItem: () => {
      const item = { text: "", command: "", show() {}, hide() {}, dispose() {} };
      statusItems.push(item);
      return item;
    },
    registerTreeDataProvider: (id: string, provider: any) => (showTree(id, provider), disposable),
    createTreeView: (id: string, opts: { treeDataProvider: any; canSelectMany?: boolean }) => {
      showTree(id, opts.treeDataProvider);
      treeOptions.set(id, opts);
      return { dispose() {}, reveal: async () => undefined, visible: false, description: undefined, onDidChangeVisibility: () => disposable };
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
    showQuickPick: async (items: any[] | Promise<any[]>, opts?: any) => {
      const answer = quickPicks.shift();
      assert.ok(answer, `a quick pick no test expected: ${opts?.placeHolder ?? ""}`);
      return answer(await items, opts);
    },
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
        // a set value, else the declared default, else the caller's fallback (as VS Code)
        get: (key: string, def?: unknown) => {
          if (key in values) return values[key];
          const full = key ? `${section}.${key}` : section;
          if (full in DEFAULTS) return structuredClone(DEFAULTS[full]);
          const user = Object.fromEntries(Object.entries(values).map(([k, v]) => [`${section}.${k}`, v]));
          const under = Object.entries({ ...DEFAULTS, ...user }).filter(([k]) => k.startsWith(`${full}.`));
          if (under.length === 0) return def;
          const obj: Record<string, any> = {};
          for (const [k, v] of under) {
            const parts = k.slice(full.length + 1).split(".");
            let at = obj;
            for (const part of parts.slice(0, -1)) at = at[part] ??= {};
            at[parts.at(-1)!] = structuredClone(v);
          }
          return obj;
        },
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
    /** An untitled document with content, a virtual document (a content provider's scheme), or a
     * file: opening a file tells the language client. */
    openTextDocument: async (d: any) => {
      if (typeof d?.scheme === "string" && d.scheme !== "file") {
        const doc = { uri: d.toString(), text: contentProviders.get(d.scheme)?.provideTextDocumentContent(d) ?? "" } as (typeof uriDocuments)[0];
        uriDocuments.push(doc);
        return doc;
      }
      if (!("fsPath" in d)) return (documents.push(d), {});
      const doc = { uri: d, languageId: /\.json$/.test(d.fsPath) ? "json" : /\.ya?ml$/.test(d.fsPath) ? "yaml" : "plaintext", version: 1, getText: () => fs.readFileSync(d.fsPath, "utf8") };
      for (const fn of openListeners) fn(doc);
      return doc;
    },
    onDidOpenTextDocument: (fn: (d: any) => void) => (openListeners.push(fn), disposable),
    registerTextDocumentContentProvider: (scheme: string, p: any) => (contentProviders.set(scheme, p), disposable),
  },
};
const openListeners: ((d: any) => void)[] = [];
/** initializationOptions from package.json's defaults: the feature switches on, the gateway on,
 * sessions in the language server (not the session host). */
const INIT_DEFAULTS = {
  gateway: { enabled: true },
  sessions: { persist: false },
  ...Object.fromEntries(["completion", "hover", "symbols", "codeActions", "codeLens", "definition", "references", "diagnostics"].map((f) => [f, { enabled: true }])),
  sessionData: true,
  resources: true,
};

/** A view as VS Code keeps it: its roots re-read whenever the provider says they changed. */
function showTree(id: string, provider: any) {
  trees.set(id, provider);
  const read = async () => shownTrees.set(id, (await provider.getChildren()) ?? []);
  provider.onDidChangeTreeData?.(() => void read());
  void read();
}

/** What a tree view shows now (its roots). */
function shown(id: string): any[] {
  return shownTrees.get(id) ?? [];
}

/** The commands a menu shows in `context` (package.json's `when` clauses, as VS Code reads them). */
function menuCommands(menu: string, context: Record<string, unknown>): string[] {
  const all = { ...Object.fromEntries(contexts), ...context };
  return (PKG.contributes.menus[menu] as { command: string; when?: string }[]).filter((m) => evaluateWhen(m.when, all)).map((m) => m.command);
}

const ClientState = { Stopped: 1, Running: 2, Starting: 3 };

/**
 * vscode-languageclient's LanguageClient where the extension depends on it, over the real server:
 * the capabilities the library really announces, the requests VS Code's client answers
 * (showDocument, CodeLens refresh, registrations, configuration), didOpen for documents its
 * selector matches, watched files, state changes and the error handler on a crash.
 */
class FakeLanguageClient {
  private conn: MessageConnection | undefined;
  private proc: ChildProcess | undefined;
  private handlers: [string, (p: any) => void][] = [];
  private registered: { dispose(): void }[] = [];
  private stateListeners: ((e: { oldState: number; newState: number }) => void)[] = [];
  private watchers = new Map<string, fs.FSWatcher>();
  private state = ClientState.Stopped;
  private stopping = false;
  initializeResult: any;
  readonly diagnostics = new Map<string, any[]>();
  codeLensRefreshes = 0;
  readonly registrations = new Map<string, { method: string; registerOptions: any }>();
  constructor(
    _id: string,
    _name: string,
    private server: { command: string; args: string[] },
    readonly options: any,
  ) {
    clients.push(this);
    openListeners.push((doc) => void this.didOpen(doc));
  }
  onNotification(method: string, handler: (p: any) => void) {
    this.handlers.push([method, handler]);
    this.conn?.onNotification(method, handler);
    return disposable;
  }
  onDidChangeState(fn: (e: { oldState: number; newState: number }) => void) {
    this.stateListeners.push(fn);
    return disposable;
  }
  private setState(newState: number) {
    const e = { oldState: this.state, newState };
    this.state = newState;
    stateChanges.push(e);
    for (const fn of this.stateListeners) fn(e);
  }
  isRunning() {
    return this.state === ClientState.Running;
  }
  /** The server process, for the crash test. */
  get process() {
    return this.proc;
  }
  private matches(doc: any): boolean {
    return (this.options.documentSelector ?? []).some((f: any) => (!f.scheme || f.scheme === doc.uri.scheme) && (!f.language || f.language === doc.languageId));
  }
  private async didOpen(doc: any) {
    if (!this.isRunning() || !this.matches(doc)) return;
    await this.conn!.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri: doc.uri.toString(), languageId: doc.languageId, version: doc.version, text: doc.getText() },
    });
  }
  async start() {
    this.setState(ClientState.Starting);
    const proc = spawn(this.server.command, this.server.args, { cwd: tmp, stdio: ["pipe", "pipe", "ignore"] });
    this.proc = proc;
    spawned.push(proc);
    const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    this.conn = conn;
    proc.on("exit", () => void this.exited());
    for (const [m, h] of this.handlers) conn.onNotification(m, h);
    conn.onNotification("textDocument/publishDiagnostics", (p: any) => void this.diagnostics.set(p.uri, p.diagnostics));
    const recorded = (method: string, answer: (p: any) => any) =>
      conn.onRequest(method, (p: any) => (serverRequests.push({ method, params: p }), answer(p)));
    recorded("window/workDoneProgress/create", () => null);
    // the library's ConfigurationFeature: each item from workspace.getConfiguration
    recorded("workspace/configuration", (p: any) =>
      p.items.map((item: { section?: string }) => {
        if (!item.section) return null;
        const [head, ...rest] = item.section.split(".");
        const value = fakeVscode.workspace.getConfiguration(head).get(rest.join("."));
        return value === undefined ? null : value;
      }),
    );
    recorded("client/registerCapability", (p: any) => {
      for (const r of p.registrations) {
        this.registrations.set(r.id, { method: r.method, registerOptions: r.registerOptions });
        if (r.method === "workspace/didChangeWatchedFiles") this.watch(r.id, r.registerOptions.watchers);
      }
      return null;
    });
    recorded("client/unregisterCapability", (p: any) => {
      for (const r of p.unregisterations ?? p.unregistrations ?? []) {
        this.registrations.delete(r.id);
        this.watchers.get(r.id)?.close();
        this.watchers.delete(r.id);
      }
      return null;
    });
    recorded("workspace/codeLens/refresh", () => (this.codeLensRefreshes++, null));
    // the library's ShowDocumentFeature
    recorded("window/showDocument", async (p: any) => {
      const uri = fakeVscode.Uri.parse(p.uri);
      const success = p.external ? await fakeVscode.env.openExternal(uri) : (await fakeVscode.window.showTextDocument(), true);
      return { success: !!success };
    });
    conn.listen();
    initOptions = this.options.initializationOptions;
    this.initializeResult = await conn.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      clientInfo: { name: "Visual Studio Code", version: fakeVscode.version },
      locale: "en",
      rootPath: tmp,
      rootUri: `file://${tmp}`,
      workspaceFolders: [{ uri: `file://${tmp}`, name: path.basename(tmp) }],
      capabilities: languageClientCapabilities(),
      initializationOptions: this.options.initializationOptions,
    });
    await conn.sendNotification(InitializedNotification.type, {});
    this.setState(ClientState.Running);
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
  /** VS Code's file watcher for a registration: changes on disk become didChangeWatchedFiles. */
  private watch(id: string, watchers: { globPattern: string }[]) {
    const suffixes = watchers.flatMap((w) => {
      const m = /\{([^}]*)\}$/.exec(w.globPattern);
      return m ? m[1].split(",").map((x) => `.${x}`) : [w.globPattern.replace(/^\*\*\/\*/, "")];
    });
    const seen = new Set<string>();
    const watcher = fs.watch(tmp, { recursive: true }, (_event, name) => {
      if (!this.isRunning() || !name || !suffixes.some((x) => name.endsWith(x))) return;
      const file = path.join(tmp, name.toString());
      const exists = fs.existsSync(file);
      const type = !exists ? 3 : seen.has(file) ? 2 : 1;
      if (exists) seen.add(file);
      else seen.delete(file);
      void this.conn?.sendNotification("workspace/didChangeWatchedFiles", { changes: [{ uri: `file://${file}`, type }] });
    });
    this.watchers.set(id, watcher);
  }
  /** The server went away: a crash unless we stopped it; the error handler decides. */
  private async exited() {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    if (this.state === ClientState.Stopped) return;
    for (const r of this.registered.splice(0)) r.dispose();
    this.conn?.dispose();
    this.setState(ClientState.Stopped);
    if (this.stopping) return;
    const action = this.options.errorHandler?.closed?.() ?? { action: fakeClientModule.CloseAction.DoNotRestart };
    if ((await action).action === fakeClientModule.CloseAction.Restart) await this.start();
  }
  sendRequest(type: any, params: any) {
    return this.conn!.sendRequest(type, params);
  }
  sendNotification(type: any, params: any) {
    return this.conn!.sendNotification(type, params);
  }
  /** The window is killed: its server goes with it (SIGKILL, no shutdown), not restarted. */
  async kill() {
    this.stopping = true;
    const exited = new Promise((r) => this.proc!.once("exit", r));
    this.proc!.kill("SIGKILL");
    await exited;
  }
  async dispose() {
    this.stopping = true;
    for (const r of this.registered.splice(0)) r.dispose();
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    try {
      await Promise.race([this.conn?.sendRequest(ShutdownRequest.type), new Promise((r) => setTimeout(r, 2000))]);
      await this.conn?.sendNotification(ExitNotification.type);
    } catch {
      // gone
    }
    this.conn?.dispose();
    if (this.state !== ClientState.Stopped) this.setState(ClientState.Stopped);
  }
}

const fakeClientModule = {
  LanguageClient: FakeLanguageClient,
  ExecuteCommandRequest,
  DidChangeConfigurationNotification,
  ErrorAction: { Continue: 1, Shutdown: 2 },
  CloseAction: { DoNotRestart: 1, Restart: 2 },
  State: ClientState,
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
  // each server exits after `exit`; kill the ones that have not within 3 s
  const exited = (p: ChildProcess) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once("exit", r)));
  await Promise.race([Promise.all(spawned.map(exited)), new Promise((r) => setTimeout(r, 3000))]);
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("activation registers every contributed command and sets the context keys", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(EXT, "package.json"), "utf8"));
  for (const c of pkg.contributes.commands as { command: string }[]) assert.ok(commands.has(c.command), c.command);
  assert.deepEqual(initOptions, INIT_DEFAULTS);
  assert.equal(contexts.get("ktl.server.running"), true);
  for (const key of ["apply", "session_replay", "session_export", "session_pin", "session_delete", "sessions_diff", "plan_run", "plan_cancelNode", "k8s_contexts", "k8s_use"]) {
    assert.equal(contexts.get(`ktl.server.has.${key}`), true, key);
  }
  assert.ok(trees.has("ktl.sessions"));
});

test("the client announces what vscode-languageclient 9 sends: the server registers its file watchers", async () => {
  const client = clients.at(-1)!;
  const caps = languageClientCapabilities();
  assert.equal(caps.window?.showDocument?.support, true);
  assert.equal(caps.workspace?.codeLens?.refreshSupport, true);
  assert.equal(caps.workspace?.didChangeWatchedFiles?.dynamicRegistration, true);
  assert.equal(caps.workspace?.configuration, true);
  const watch = await until("a watched-files registration", () =>
    [...client.registrations.values()].find((r) => r.method === "workspace/didChangeWatchedFiles"),
  );
  assert.deepEqual(
    watch.registerOptions.watchers.map((w: { globPattern: string }) => w.globPattern),
    ["**/*.{yaml,yml}", "**/*.json"],
  );
});

test("menus follow their when clauses: what needs the server while it runs, per session state in the view", () => {
  const entries = PKG.contributes.menus.commandPalette as { command: string; when: string }[];
  const palette = menuCommands("commandPalette", {});
  // every server command is advertised here: all of the palette but what is for views only
  // (`false && …`: a plan node's cancel, the Cluster view's item actions)
  assert.deepEqual(palette, entries.filter((m) => !m.when.startsWith("false")).map((m) => m.command));
  assert.ok(entries.some((m) => m.command === "ktl.ui.plan.cancelNode" && m.when.startsWith("false")));
  assert.deepEqual(menuCommands("commandPalette", { "ktl.server.running": false }), ["ktl.ui.agent.setToken"]);
  const item = (contextValue: string) => menuCommands("view/item/context", { view: "ktl.sessions", viewItem: contextValue });
  const ended = item("ktlSession ended");
  const running = item("ktlSession running");
  assert.ok(ended.includes("ktl.ui.session.delete") && !ended.includes("ktl.ui.session.cancel"), ended.join(","));
  assert.ok(running.includes("ktl.ui.session.cancel") && !running.includes("ktl.ui.session.delete"), running.join(","));
  assert.ok(!running.includes("ktl.ui.plan.cancelNode") && item("ktlSession running node").includes("ktl.ui.plan.cancelNode"));
  assert.deepEqual(menuCommands("view/item/context", { view: "other", viewItem: "ktlSession ended" }), []);
  const editor = (resourceFilename: string) => menuCommands("editor/title", { resourceFilename });
  for (const f of ["web.plan.yaml", "ktl-plan.yml", "stack.yaml"]) assert.deepEqual(editor(f), ["ktl.ui.plan.run"], f);
  for (const f of ["web.yaml", "stack.yaml.bak", "myplan.yaml"]) assert.deepEqual(editor(f), [], f);
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
    const list = shown("ktl.sessions");
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
  // by its command: other sessions (the Cluster view's watch) may be newer in the list
  const listed = () => shown("ktl.sessions").map((x: any) => `${x.title ?? x.command} ${x.state}`);
  await until("cancelled", () => {
    const s = shown("ktl.sessions").find((x: any) => `${x.title ?? ""} ${x.command ?? ""}`.includes("sleep 60"));
    return s && s.state === "cancelled";
  }).catch((e) => {
    throw new Error(`${e}; listed: ${JSON.stringify(listed())}; messages: ${JSON.stringify(messages.slice(-5))}`);
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
  const plan = await until("the plan at the top", () => shown("ktl.sessions").find((s: any) => s.kind === "plan"));
  assert.equal(provider.getTreeItem(plan).collapsibleState, fakeVscode.TreeItemCollapsibleState.Collapsed);
  assert.ok(!shown("ktl.sessions").some((s: any) => s.parentId === plan.sessionId), "nodes only under the plan");
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
  const list = shown("ktl.sessions").filter((s: any) => s.kind !== "plan");
  const [newer, older] = list;
  await fakeVscode.commands.executeCommand("ktl.ui.session.replay", older);
  // opened through asExternalUri (here a remote window's tunnel), path and one-time token kept
  const local = exposed.at(-1) ?? "";
  assert.match(local, /^http:\/\/127\.0\.0\.1:\d+\/.+/);
  const [, port, rest] = /^http:\/\/127\.0\.0\.1:(\d+)(\/.*)$/.exec(local)!;
  assert.equal(opened.at(-1), `https://${port}.tunnel.test${rest}`);
  const target = path.join(tmp, "export.cast");
  (fakeVscode.window as any).showSaveDialog = async () => ({ fsPath: target });
  const formats: string[] = [];
  quickPicks.push((items: any[], opts: any) => (formats.push(opts.placeHolder, ...items.map((i) => i.label)), items.find((i) => i.label === "asciicast")));
  await fakeVscode.commands.executeCommand("ktl.ui.session.export", older);
  assert.deepEqual(formats, ["Export format", "asciicast", "html", "ndjson"]);
  assert.equal(JSON.parse(fs.readFileSync(target, "utf8").split("\n")[0]).version, 2);
  await fakeVscode.commands.executeCommand("ktl.ui.session.pin", older);
  await until("pinned in the view", () => shown("ktl.sessions").find((s: any) => s.sessionId === older.sessionId && s.pinned));
  assert.match(provider.getTreeItem(shown("ktl.sessions").find((s: any) => s.sessionId === older.sessionId)).contextValue, /pinned/);
  await fakeVscode.commands.executeCommand("ktl.ui.sessions.diff", newer, [newer, older]);
  const doc = documents.at(-1)!;
  assert.equal(doc.language, "diff");
  assert.match(doc.content, new RegExp(`# a: .*${older.sessionId}`));
  assert.match(doc.content, new RegExp(`# b: .*${newer.sessionId}`));
  (fakeVscode.window as any).showWarningMessage = async (_m: string, _o: unknown, action?: string) => action;
  await fakeVscode.commands.executeCommand("ktl.ui.session.delete", newer);
  await until("deleted from the view", () => !shown("ktl.sessions").some((s: any) => s.sessionId === newer.sessionId));
  assert.deepEqual(messages.filter((m) => m.startsWith("error")), []);
});

test("Open Replay from a lens or menu: the server's window/showDocument opens the browser (through asExternalUri)", async () => {
  const [session] = shown("ktl.sessions").filter((x: any) => x.kind !== "plan");
  const before = serverRequests.length;
  const result: any = await fakeVscode.commands.executeCommand("ktl.session.openReplay", { sessionId: session.sessionId });
  assert.equal(result.opened, true, "the client said it opened the page");
  const asked = serverRequests.slice(before).find((r) => r.method === "window/showDocument");
  assert.ok(asked, "the server asked the client to show the page");
  assert.equal(asked.params.external, true);
  assert.equal(asked.params.uri, result.url);
  assert.equal(exposed.at(-1), result.url);
  const [, port, rest] = /^http:\/\/127\.0\.0\.1:(\d+)(\/.*)$/.exec(result.url)!;
  assert.equal(opened.at(-1), `https://${port}.tunnel.test${rest}`);
});

test("quick picks from the cluster (ktl.k8s.list): Exec into pod/web-1, Port-forward to service/web :80", async (t) => {
  const why = noCluster();
  if (why) return t.skip(why);
  assert.ok(commands.has("ktl.k8s.list"), "the server advertises ktl.k8s.list");
  const picks: { items: any[]; placeHolder: string }[] = [];
  const choose = (...labels: string[]) => {
    for (const want of labels)
      quickPicks.push((items: any[], opts: { placeHolder: string }) => (picks.push({ items, placeHolder: opts.placeHolder }), items.find((i) => i.label.endsWith(want))));
  };
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
    assert.equal(quickPicks.length, 0, "every pick the test said was asked");
  } finally {
    quickPicks.length = 0;
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
  const picks: any[][] = [];
  quickPicks.push((items: any[]) => (picks.push(items), items.find((i) => i.context === "staging")));
  await fakeVscode.commands.executeCommand(status.command);
  assert.deepEqual(picks[0].map((i: any) => i.context), ["fake", "staging"]);
  assert.match(picks[0][0].label, /^\$\(check\) fake$/);
  assert.equal(status.text, "$(terminal) ktl $(cloud) staging/default");
  assert.deepEqual(workspaceState.get("ktl.k8s.selection"), { context: "staging" });
  // the namespace: "Other namespace…" asks for one
  const offered: string[] = [];
  quickPicks.push((items: any[]) => (offered.push(...items.map((i) => i.label)), items.find((i) => i.label.includes("Other"))));
  inputAnswers.push("shop");
  await fakeVscode.commands.executeCommand("ktl.ui.k8s.namespace");
  if (!noCluster()) {
    // the loopback cluster's namespaces (ktl.k8s.list), besides the active one
    assert.deepEqual(offered.slice(0, 2), ["$(check) default", "$(blank) kube-system"], offered.join(", "));
  }
  assert.equal(status.text, "$(terminal) ktl $(cloud) staging/shop");
  assert.deepEqual(workspaceState.get("ktl.k8s.selection"), { context: "staging", namespace: "shop" });
  assert.equal(quickPicks.length, 0, "every pick the test said was asked");
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

test("the Render lens opens the chart's manifests read-only (a ktl-render: document)", async (t) => {
  if (!commands.has("ktl.helm.render")) return t.skip("the server advertises no ktl.helm.render");
  const chart = path.join(tmp, "charts", "web");
  fs.mkdirSync(path.join(chart, "templates"), { recursive: true });
  fs.writeFileSync(path.join(chart, "Chart.yaml"), "apiVersion: v2\nname: web\nversion: 0.1.0\n");
  fs.writeFileSync(path.join(chart, "values.yaml"), "port: 80\n");
  fs.writeFileSync(path.join(chart, "templates", "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  port: {{ .Values.port | quote }}\n");
  const answer = await fakeVscode.commands.executeCommand("ktl.helm.render", { uri: `file://${path.join(chart, "Chart.yaml")}` });
  if (answer === undefined && messages.some((m) => /not rendered/.test(m))) return t.skip("no Helm renderer next to the server");
  const doc = uriDocuments.at(-1)!;
  assert.equal(doc.uri, "ktl-render:/web (values.yaml).yaml");
  assert.equal(doc.languageId, "yaml");
  assert.equal(
    doc.text,
    `# ${chart} rendered with values.yaml\n---\n# Source: templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: release-name\ndata:\n  port: "80"\n`,
  );
});

test("Helm templates reach the server: the `helm` language and .tpl files under templates/", () => {
  const selector = clients.at(-1)!.options.documentSelector as { scheme: string; language?: string; pattern?: string }[];
  assert.ok(selector.some((s) => s.language === "helm"));
  assert.ok(selector.some((s) => s.pattern === "**/templates/**/*.tpl"));
});

test("beside the YAML extension: told once; Turn Off ktl's turns the running server's completion off, and on again", async () => {
  const file = path.join(tmp, "coexist.yaml");
  const text = ["apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: web", "spec:", "  template:", "    spec:", "      containers:", "      - name: web", "        image: nginx", ""].join("\n");
  fs.writeFileSync(file, text);
  const client = clients.at(-1)!;
  await fakeVscode.workspace.openTextDocument(fakeVscode.Uri.file(file)); // didOpen, as VS Code sends it
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

test("CodeLens switched off in the settings: the server asks the client to re-read its lenses", async () => {
  const client = clients.at(-1)!;
  const before = client.codeLensRefreshes;
  try {
    await fakeVscode.workspace.getConfiguration("ktl").update("codeLens.enabled", false, fakeVscode.ConfigurationTarget.Workspace);
    await until("a CodeLens refresh", () => client.codeLensRefreshes > before);
  } finally {
    delete config["codeLens.enabled"];
    for (const fn of configListeners) fn({ affectsConfiguration: (s: string) => "ktl.codeLens.enabled".startsWith(s) });
  }
  await until("another refresh: on again", () => client.codeLensRefreshes > before + 1);
});

test("files VS Code watches for the server: a release deleted on disk breaks the one that needs it", async () => {
  const client = clients.at(-1)!;
  const root = path.join(tmp, "stackws");
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
    return path.join(root, rel);
  };
  write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n");
  write("stack.yaml", "defaults:\n  cluster: {name: c1}\n");
  const b = write("svc/b/release.yaml", "name: b\nchart: ../../charts/app\n");
  const a = write("svc/a/release.yaml", "name: a\nchart: ../../charts/app\nneeds: [b]\n");
  const uri = `file://${a}`;
  await fakeVscode.workspace.openTextDocument(fakeVscode.Uri.file(a)); // didOpen, as VS Code sends it
  const codes = () => client.diagnostics.get(uri)?.map((d: any) => d.code);
  await until("a checked, with b present", () => codes()?.length === 0);
  fs.unlinkSync(b); // not open in the editor: only the watcher tells the server
  await until("the missing need", () => codes()?.includes("stack-missing-need"), 15000);
  write("svc/b/release.yaml", "name: b\nchart: ../../charts/app\n");
  await until("found again", () => codes()?.length === 0, 15000);
  fs.rmSync(root, { recursive: true, force: true });
});

test("Set Remote Agent Token: SecretStorage, then the server restarts with it in initializationOptions", async () => {
  config["retention.intervalS"] = 0;
  inputAnswers.push("tok-e2e");
  await fakeVscode.commands.executeCommand("ktl.ui.agent.setToken");
  assert.equal(secrets.get("ktl.agent.token"), "tok-e2e");
  await until("restarted", () => (initOptions as any)?.agent?.token === "tok-e2e");
  assert.deepEqual(initOptions, { ...INIT_DEFAULTS, retention: { intervalS: 0 }, agent: { token: "tok-e2e" } });
  await until("running again", () => contexts.get("ktl.server.running") === true && shown("ktl.sessions").length > 0);
  // the new server was told the workspace's Kubernetes pick again (it starts from the kubeconfig's)
  let answer: any;
  await until("the pick restored", async () => {
    answer = await fakeVscode.commands.executeCommand("ktl.k8s.contexts", {});
    return answer?.current === "staging" && answer?.namespace === "shop";
  });
  assert.equal(statusItems[0].text, "$(terminal) ktl $(cloud) staging/shop");
});

/** Runs `command`, which opens a terminal; opens it (as VS Code would) and collects what it writes. */
async function newTerminal(command: string, columns = 80): Promise<{ term: (typeof terminals)[0]; out: () => string }> {
  const before = terminals.length;
  await fakeVscode.commands.executeCommand(command);
  const term = await until(`the terminal ${command} opens`, () => terminals[before]);
  let out = "";
  term.pty.onDidWrite((d: string) => (out += d));
  term.pty.open({ columns, rows: 24 });
  return { term, out: () => out };
}

test("Start Shell: a terminal on ktl.shell whose command blocks show under it, with Copy Output and Rerun", async () => {
  const { term, out } = await newTerminal("ktl.ui.shell", 100);
  await until("a prompt", () => out().length > 0);
  await new Promise((r) => setTimeout(r, 500));
  term.pty.handleInput("echo from-$((40+2))\r");
  const provider = trees.get("ktl.sessions");
  const shell = await until("the shell in the view", () => shown("ktl.sessions").find((x: any) => x.kind === "shell"));
  assert.match(provider.getTreeItem(shell).contextValue, /shell/);
  const block = await until("its ended block", async () => {
    const children = await provider.getChildren(shell);
    return children.length === 1 && children[0].block.endedAt ? children[0] : undefined;
  });
  const item = provider.getTreeItem(block);
  assert.equal(item.label, "echo from-$((40+2))");
  assert.equal(item.iconPath.id, "pass");
  assert.match(item.description, /^exit 0 · /);
  assert.equal(item.contextValue, "ktlBlock ended");
  await fakeVscode.commands.executeCommand("ktl.ui.block.copy", block);
  assert.equal(clipboard.at(-1), "from-42");
  // Rerun types it again into the running shell: a second block, kept current by ktl/block
  await fakeVscode.commands.executeCommand("ktl.ui.block.rerun", block);
  await until("a second block", async () => {
    const children = await provider.getChildren(shell);
    return children.length === 2 && children[1].block.exitCode === 0 && children[1].block.command === "echo from-$((40+2))";
  });
  term.pty.handleInput("exit\r");
  await until("the end", () => out().includes("[ktl] session done"));
  assert.deepEqual(messages.filter((m) => m.startsWith("error")), []);
});

test("the server crashes: the client stops (the menus that need it go), its error handler restarts it", async () => {
  const crashed = clients.at(-1)!;
  const count = clients.length;
  const changes = stateChanges.length;
  crashed.process!.kill("SIGKILL");
  await until("stopped", () => stateChanges.slice(changes).some((e) => e.newState === fakeClientModule.State.Stopped));
  assert.equal(contexts.get("ktl.server.running"), false);
  assert.deepEqual(menuCommands("commandPalette", {}), ["ktl.ui.agent.setToken"]);
  const next = await until("a new client", () => clients.length > count && clients.at(-1)!.isRunning() && clients.at(-1));
  assert.notEqual(next, crashed);
  await until("running again", () => contexts.get("ktl.server.running") === true);
  assert.ok(menuCommands("commandPalette", {}).includes("ktl.ui.run"));
  const answer: any = await fakeVscode.commands.executeCommand("ktl.sessions.list", {});
  assert.ok(Array.isArray(answer?.sessions), "the restarted server answers");
  assert.ok(messages.every((m) => !m.includes("keeps crashing")), messages.join("\n"));
});

/** A real `ktl-lsp mcp` as VS Code would start it from a definition: the tools it lists. */
async function mcpTools(def: McpStdioServerDefinition): Promise<string[]> {
  const proc = spawn(def.command, def.args, { cwd: tmp, stdio: ["pipe", "pipe", "ignore"] });
  spawned.push(proc);
  const answers = new Map<number, any>();
  let buffered = "";
  proc.stdout!.on("data", (d: Buffer) => {
    buffered += d.toString();
    for (let i = buffered.indexOf("\n"); i >= 0; i = buffered.indexOf("\n")) {
      const msg = JSON.parse(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
      if (msg.id !== undefined) answers.set(msg.id, msg);
    }
  });
  const send = (msg: object) => proc.stdin!.write(JSON.stringify({ jsonrpc: "2.0", ...msg }) + "\n");
  send({ id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "vscode-test", version: "1" } } });
  await until("initialize answered", () => answers.get(1), 30000);
  send({ method: "notifications/initialized" });
  send({ id: 2, method: "tools/list", params: {} });
  const listed = await until("tools/list answered", () => answers.get(2), 30000);
  proc.stdin!.end();
  return listed.result.tools.map((t: { name: string }) => t.name).sort();
}

test("VS Code's MCP support gets ktl-lsp mcp: the same server and store, agents' settings in its settings file", async () => {
  const contributed = PKG.contributes.mcpServerDefinitionProviders as { id: string }[];
  assert.deepEqual([...mcpProviders.keys()], contributed.map((p) => p.id));
  const provider = mcpProviders.get("ktl.mcp");
  let changes = 0;
  provider.onDidChangeMcpServerDefinitions(() => void changes++);
  const [def] = (await provider.provideMcpServerDefinitions()) as McpStdioServerDefinition[];
  assert.ok(def instanceof McpStdioServerDefinition);
  assert.equal(def.command, config["server.path"]);
  const settingsFile = def.args[def.args.indexOf("--settings") + 1];
  assert.deepEqual(def.args, ["--store", config.store, "mcp", "--settings", settingsFile]);
  assert.equal(JSON.parse(fs.readFileSync(settingsFile, "utf8")).agents.allowWrite, undefined);
  assert.ok(!(await mcpTools(def)).includes("run"));

  await fakeVscode.workspace.getConfiguration("ktl").update("agents.allowWrite", true, 1);
  await fakeVscode.workspace.getConfiguration("ktl").update("agents.allow", [{ tool: "run", argv: ["make", "test"] }], 1);
  assert.ok(changes >= 2, "VS Code is told the definition changed");
  const [again] = (await provider.provideMcpServerDefinitions()) as McpStdioServerDefinition[];
  const written = JSON.parse(fs.readFileSync(again.args[again.args.indexOf("--settings") + 1], "utf8"));
  assert.deepEqual(written.agents, { allowWrite: true, allow: [{ tool: "run", argv: ["make", "test"] }] });
  assert.equal(written.agent?.token, undefined, "no secret is written to disk");
  const tools = await mcpTools(again);
  for (const t of ["run", "plan_run", "k8s_apply", "k8s_delete", "session_cancel", "read_output"]) assert.ok(tools.includes(t), t);
  await fakeVscode.workspace.getConfiguration("ktl").update("agents.allowWrite", false, 1);
});

test("with sessions.persist on, the window coming back reopens the terminals it had on sessions still running", async () => {
  process.env.KTL_LSP_HOST_DIR = path.join(tmp, "host"); // the servers started from now on
  const warn = fakeVscode.window.showWarningMessage;
  const shownIds = () => (workspaceState.get("ktl.sessions.shown") as string[] | undefined) ?? [];
  const count = clients.length;
  await fakeVscode.workspace.getConfiguration("ktl").update("sessions.persist", true, 1);
  await until("a server with sessions.persist", () => clients.length > count && clients.at(-1)!.isRunning() && contexts.get("ktl.server.running") === true);
  try {
    inputAnswers.push("i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done");
    const { out } = await newTerminal("ktl.ui.run");
    await until("ticks", () => out().includes("tick 3"));
    const [sid] = await until("the session remembered for the workspace", () => shownIds().length === 1 && shownIds());

    // The window reloads: the extension and its server go, and come back.
    await extension.deactivate();
    for (const s of extensionContext.subscriptions.splice(0)) (s as { dispose(): void }).dispose();
    const reopenedAt = terminals.length;
    await extension.activate(extensionContext as any);
    const back = await until("the terminal reopened", () => terminals[reopenedAt], 20000);
    const writes: string[] = [];
    back.pty.onDidWrite((d: string) => void writes.push(d));
    back.pty.open({ columns: 80, rows: 24 });
    const last = Math.max(...[...out().matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
    await until("new ticks, live", () => writes.join("").includes(`tick ${last + 5}\r\n`), 20000);
    const ticks = [...writes.join("").matchAll(/tick (\d+)\r\n/g)].map((m) => Number(m[1]));
    assert.ok(ticks[0] <= last, `the screen as it was drawn again (from tick ${ticks[0]}, last seen ${last})`);
    assert.deepEqual(ticks, ticks.map((_, i) => ticks[0] + i), "then every line since, live");
    assert.deepEqual(shownIds(), [sid]);

    // The user closes it and keeps the session running: it is not reopened again.
    fakeVscode.window.showWarningMessage = async (m: string) => void messages.push(`warning: ${m}`);
    await back.pty.close();
    await until("forgotten", () => shownIds().length === 0);
    const got: any = await fakeVscode.commands.executeCommand("ktl.session.get", { sessionId: sid });
    assert.equal(got.state, "running");
    await fakeVscode.commands.executeCommand("ktl.session.cancel", { sessionId: sid });
  } finally {
    fakeVscode.window.showWarningMessage = warn;
    spawnSync(String(config["server.path"]), ["--store", String(config.store), "host", "--stop"], { env: process.env, timeout: 30000 });
    delete process.env.KTL_LSP_HOST_DIR;
  }
});

/** sessions.persist on, with the session host's socket under this file's directory (for the
 * servers started from now on). */
async function persist(): Promise<void> {
  process.env.KTL_LSP_HOST_DIR = path.join(tmp, "host");
  if (fakeVscode.workspace.getConfiguration("ktl").get("sessions.persist") === true && contexts.get("ktl.server.running") === true) return;
  const count = clients.length;
  await fakeVscode.workspace.getConfiguration("ktl").update("sessions.persist", true, 1);
  await until("a server with sessions.persist", () => clients.length > count && clients.at(-1)!.isRunning() && contexts.get("ktl.server.running") === true);
}

function stopHost(): void {
  spawnSync(String(config["server.path"]), ["--store", String(config.store), "host", "--stop"], { env: process.env, timeout: 30000 });
}

/** The window is killed, its server with it. */
async function killWindow(): Promise<void> {
  await clients.at(-1)!.kill();
  await extension.deactivate(); // what a killed window frees by dying
  for (const s of extensionContext.subscriptions.splice(0)) (s as { dispose(): void }).dispose();
}

/** The window comes back: the extension activated again, with what it kept (the workspace's
 * state). Answers the index of the next terminal opened. */
async function reopenWindow(): Promise<number> {
  const next = terminals.length;
  await extension.activate(extensionContext as any);
  await until("the new window's server", () => clients.at(-1)!.isRunning() && contexts.get("ktl.server.running") === true, 20000);
  return next;
}

test("with sessions.persist on, a shell outlives its window killed with its server: its terminal, screen and blocks come back", async () => {
  await persist();
  const { term, out } = await newTerminal("ktl.ui.shell", 100);
  try {
    const prompts = () => out().split("\x1b]633;B\x07").length - 1; // the integration's prompt end mark
    await until("a prompt", () => prompts() >= 1).catch((e) => {
      throw new Error(`${e}: ${JSON.stringify(out())}; ${JSON.stringify(logged)}`);
    });
    term.pty.handleInput("echo one-$((1+1))\r");
    await until("a second prompt", () => prompts() >= 2);
    term.pty.handleInput('sh -c "exit 3"\r');
    const shell = await until("the shell in the view", () => shown("ktl.sessions").find((x: any) => x.kind === "shell" && x.state === "running"));
    const sid: string = shell.sessionId;
    const ended = async (n: number) => {
      const children = await trees.get("ktl.sessions").getChildren(shown("ktl.sessions").find((x: any) => x.sessionId === sid));
      return children.length === n && children.every((c: any) => c.block.endedAt) ? children : undefined;
    };
    await until("its two blocks", () => ended(2)).catch((e) => {
      throw new Error(`${e}: ${JSON.stringify(out())}`);
    });

    await killWindow();
    const at = await reopenWindow();
    const back = await until("the shell's terminal reopened", () => terminals[at], 20000);
    let again = "";
    back.pty.onDidWrite((d: string) => void (again += d));
    back.pty.open({ columns: 100, rows: 24 });
    await until("its screen back", () => again.includes("one-2"), 20000);
    const listed = await until("the shell running in the view", () => shown("ktl.sessions").find((x: any) => x.sessionId === sid && x.state === "running"));
    assert.match(trees.get("ktl.sessions").getTreeItem(listed).contextValue, /shell/);
    const blocks = await until("its blocks under it", () => ended(2));
    const provider = trees.get("ktl.sessions");
    assert.deepEqual(
      blocks.map((b: any) => [provider.getTreeItem(b).label, provider.getTreeItem(b).description.split(" · ")[0]]),
      [["echo one-$((1+1))", "exit 0"], ['sh -c "exit 3"', "exit 3"]],
    );
    back.pty.handleInput("echo three-$((1+2))\r");
    const three = await until("a new block from the restored terminal", () => ended(3));
    assert.equal(three[2].block.command, "echo three-$((1+2))");
    assert.equal(three[2].block.exitCode, 0);
    assert.match(again, /three-3/);
    await fakeVscode.commands.executeCommand("ktl.session.cancel", { sessionId: sid });
    assert.deepEqual(messages.filter((m) => m.startsWith("error")), []);
  } finally {
    stopHost();
  }
});

test("with sessions.persist on, a port-forward outlives its window killed with its server, and is stopped from the next one", async (t) => {
  const why = noCluster();
  if (why) return t.skip(why);
  await persist();
  try {
    messages.length = 0;
    // as a lens or the Cluster view gives it the target (the namespace too: the status bar's may be another)
    await fakeVscode.commands.executeCommand("ktl.ui.portForward", { pod: "web-1", namespace: "default", ports: [":80"] });
    const said = messages.map((m) => /^Forwarding (http:\/\/127\.0\.0\.1:\d+) -> pod\/web-1:80$/.exec(m)).find((m) => m);
    assert.ok(said, messages.join("\n"));
    const url = said[1];
    assert.equal((await httpGet(`${url}/`)).headers["x-pod"], "web-1");

    await killWindow();
    assert.equal((await httpGet(`${url}/`)).headers["x-pod"], "web-1", "the port answers with no window at all");
    await reopenWindow();
    const provider = trees.get("ktl.sessions");
    const forward = await until("the forward running in the view, with its URL", () =>
      shown("ktl.sessions").find((x: any) => x.kind === "port-forward" && x.state === "running" && provider.getTreeItem(x).description.includes(url)),
    );
    assert.match(provider.getTreeItem(forward).contextValue, /forward/);
    await fakeVscode.commands.executeCommand("ktl.ui.session.cancel", forward);
    await until("listed cancelled", () => shown("ktl.sessions").find((x: any) => x.sessionId === forward.sessionId && x.state === "cancelled"));
    await until("the port closed", () => httpGet(`${url}/`).then(() => false, (e: Error) => /ECONNREFUSED/.test(String(e))));
    assert.deepEqual(messages.filter((m) => m.startsWith("error")), []);
  } finally {
    stopHost();
  }
});
