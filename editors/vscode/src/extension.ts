/** The VS Code side: everything that touches the `vscode` API. The logic lives in src/core. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";
import { ClusterModel, Entry, entryView, objectArgs, ResourcesParams, startWatch } from "./core/cluster";
import { adviseCoexistence, COEXISTENCE_SHOWN, YAML_EXTENSION } from "./core/coexistence";
import { objectOf } from "./core/commands/cluster";
import { COMMANDS, CommandContext, lensCommand, Ui } from "./core/commands";
import { RENDER_SCHEME } from "./core/commands/helm";
import { ExecSpec, K8sSelection, loadK8sStatus, restoreSelection, statusTooltip } from "./core/k8s";
import { Emitter } from "./core/emitter";
import { McpApi, McpDefinition, mcpDefinition, mcpSettings, registerMcp } from "./core/mcp";
import { SessionRouter } from "./core/router";
import {
  AGENT_TOKEN_SECRET,
  contextKeys,
  featureSwitches,
  needsRestart,
  RestartPolicy,
  resolveServer,
  ServerCommand,
  settingsToInitializationOptions,
  switchesChanged,
} from "./core/server";
import { K8sStatus, loadChildren, SessionsModel, sessionItem, statusText } from "./core/sessions";
import { BlockItemView, BlockNode, BlockParams, blockItem, BlocksModel, isShell, loadBlocks } from "./core/blocks";
import { ShownSessions } from "./core/reopen";
import { RunSpec, SessionTerminal, ShellSpec } from "./core/terminal";
import { Exec, Session, SessionDataParams, SessionStateParams } from "./core/types";

let client: LanguageClient | undefined;
let restartTimer: ReturnType<typeof setTimeout> | undefined;
/** The commands the running server advertises. */
let advertised = new Set<string>();
/** Runs server commands invoked through VS Code (CodeLens clicks): see lensCommand. */
/** Where `ktl/block` notifications go (the Sessions view, once activated). */
let onBlock: ((p: BlockParams) => void) | undefined;
/** Where `ktl/resources` notifications go (the Cluster view, once activated). */
let onResources: ((p: ResourcesParams) => void) | undefined;
let lensHandler: ((command: string, args: unknown[], next: (command: string, args: unknown[]) => Promise<unknown>) => Promise<unknown>) | undefined;
/** workspaceState key of the workspace's Kubernetes context/namespace pick. */
const K8S_SELECTION = "ktl.k8s.selection";
const router = new SessionRouter();
const model = new SessionsModel();
const blocks = new BlocksModel();
const cluster = new ClusterModel();
const restartPolicy = new RestartPolicy();

const exec: Exec = async <T>(command: string, args: object = {}): Promise<T> => {
  if (!client || !client.isRunning()) throw new Error("ktl-lsp is not running");
  return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args] })) as T;
};

type SessionsNode = Session | BlockNode;

function treeItem(v: BlockItemView, collapsible: boolean, command: vscode.Command): vscode.TreeItem {
  const item = new vscode.TreeItem(v.label, collapsible ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
  item.id = v.id;
  item.description = v.description;
  item.tooltip = v.tooltip;
  item.iconPath = new vscode.ThemeIcon(v.icon);
  item.contextValue = v.contextValue;
  item.command = command;
  return item;
}

function isBlockNode(n: SessionsNode): n is BlockNode {
  return "block" in n && "session" in n;
}

class SessionsProvider implements vscode.TreeDataProvider<SessionsNode> {
  private readonly changed = new vscode.EventEmitter<SessionsNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  fire(): void {
    this.changed.fire(undefined);
  }
  getTreeItem(n: SessionsNode): vscode.TreeItem {
    if (isBlockNode(n)) {
      const command = { command: "ktl.ui.block.goto", title: "Go to Command Block", arguments: [n] };
      return treeItem(blockItem(n.session.sessionId, n.block), false, command);
    }
    const v = sessionItem(n);
    return treeItem(v, v.collapsible || isShell(n), { command: "ktl.ui.session.open", title: "Open Terminal", arguments: [n] });
  }
  /** The top level, a plan's node sessions (ktl.sessions.list with parentId), a shell's blocks. */
  getChildren(element?: SessionsNode): SessionsNode[] | Promise<SessionsNode[]> {
    if (!element) return model.roots();
    if (isBlockNode(element)) return [];
    if (isShell(element)) {
      const known = blocks.get(element.sessionId);
      const list = known ? Promise.resolve(known) : loadBlocks(exec, blocks, element.sessionId).catch(() => []);
      return list.then((bs) => bs.map((block) => ({ session: element, block })));
    }
    if (element.kind !== "plan") return [];
    return loadChildren(exec, model, element.sessionId);
  }
  getParent(element: SessionsNode): SessionsNode | undefined {
    if (isBlockNode(element)) return element.session;
    return element.parentId ? model.get(element.parentId) : undefined;
  }
}

/** Read-only documents (`ktl-render:` URIs: rendered charts), their text kept here. */
class ReadOnlyDocuments implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  put(name: string, content: string): vscode.Uri {
    const uri = vscode.Uri.from({ scheme: RENDER_SCHEME, path: `/${name}` });
    this.texts.set(uri.toString(), content);
    this.changed.fire(uri); // the same chart rendered again: an open document shows the new text
    return uri;
  }
  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? "";
  }
}

/** The Cluster view: the tree of src/core/cluster.ts as TreeItems. */
class ClusterProvider implements vscode.TreeDataProvider<Entry> {
  private readonly changed = new vscode.EventEmitter<Entry | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  fire(): void {
    this.changed.fire(undefined);
  }
  getTreeItem(e: Entry): vscode.TreeItem {
    const v = entryView(e);
    const item = new vscode.TreeItem(v.label, v.collapsible ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    item.id = v.id; // ids keep expansion and selection across refreshes
    item.description = v.description;
    item.tooltip = v.tooltip;
    item.iconPath = new vscode.ThemeIcon(v.icon, v.color ? new vscode.ThemeColor(v.color) : undefined);
    item.contextValue = v.contextValue;
    if (e.type === "context" || e.type === "namespace") item.collapsibleState = vscode.TreeItemCollapsibleState.Expanded;
    return item;
  }
  getChildren(e?: Entry): Entry[] {
    return cluster.children(e);
  }
}

/** The status bar's Kubernetes part (from ktl.k8s.contexts; refreshed by refreshK8s). */
export const k8sStatus: K8sStatus = {};

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("ktl", { log: true });
  const provider = new SessionsProvider();
  onBlock = (p) => {
    if (blocks.apply(p)) provider.fire();
  };
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
  status.command = "ktl.ui.sessions.list";
  status.text = statusText(0);
  status.show();
  const view = vscode.window.createTreeView("ktl.sessions", { treeDataProvider: provider, canSelectMany: true, showCollapseAll: true });
  const updateStatus = (): void => {
    status.text = statusText(model.runningCount(), k8sStatus);
    status.tooltip = statusTooltip(model.runningCount(), k8sStatus);
    // a guarded context stands out: every change there asks first (or is refused)
    status.backgroundColor = k8sStatus.protection ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
    // with a context: click to switch it; without one the sessions picker is more use
    status.command = k8sStatus.context ? "ktl.ui.k8s.context" : "ktl.ui.sessions.list";
  };
  const rendered = new ReadOnlyDocuments();
  context.subscriptions.push(log, status, view, vscode.workspace.registerTextDocumentContentProvider(RENDER_SCHEME, rendered));
  const clusterProvider = new ClusterProvider();
  const clusterView = vscode.window.createTreeView("ktl.cluster", { treeDataProvider: clusterProvider, showCollapseAll: true });
  context.subscriptions.push(clusterView);
  /** Batches arrive at most 10 a second per watch; the tree redraws once per batch. */
  onResources = (p) => {
    cluster.apply(p);
    clusterProvider.fire();
  };
  const watchCluster = async (): Promise<void> => {
    if (!client?.isRunning() || !advertised.has("ktl.k8s.watch")) return;
    try {
      const w = await startWatch(exec, k8sStatus.context);
      // the previous watch of that context, if any, is no longer needed
      const old = cluster.watchOf(w.context);
      if (old && old !== w.watchId) void exec("ktl.session.cancel", { sessionId: old }).catch(() => undefined);
    } catch (e) {
      log.warn(`cluster watch: ${String(e)}`);
    }
  };
  context.subscriptions.push(
    clusterView.onDidChangeVisibility((e) => {
      if (e.visible && cluster.children().length === 0) void watchCluster();
    }),
    vscode.commands.registerCommand("ktl.ui.cluster.watch", watchCluster),
    // ktl-live://<context>/<namespace>/<Kind>/<name>.yaml: an object's live YAML, read-only
    vscode.workspace.registerTextDocumentContentProvider("ktl-live", {
      provideTextDocumentContent: async (uri) => (await exec<{ yaml: string }>("ktl.k8s.live", { uri: uri.toString(true) })).yaml,
    }),
    vscode.commands.registerCommand("ktl.ui.cluster.filter", async () => {
      const f = await vscode.window.showInputBox({ prompt: "Show objects whose kind, name or status contains", value: cluster.filter });
      if (f === undefined) return;
      cluster.filter = f.trim();
      clusterView.description = cluster.filter ? `filter: ${cluster.filter}` : undefined;
      clusterProvider.fire();
    }),
    vscode.commands.registerCommand("ktl.ui.cluster.edit", async (arg: unknown) => {
      const o = objectOf(arg);
      if (!o) return;
      const reveal = o.node.kind === "Secret";
      if (reveal && (await vscode.window.showWarningMessage(`Edit Secret ${o.node.name} with its values (context ${o.context})?`, { modal: true }, "Edit")) !== "Edit") return;
      try {
        const r = await exec<{ uri: string }>("ktl.k8s.edit", { ...objectArgs(o.node, o.context), reveal });
        await vscode.window.showTextDocument(vscode.Uri.parse(r.uri));
      } catch (e) {
        void vscode.window.showErrorMessage(`ktl: ${e instanceof Error ? e.message : String(e)}`);
      }
    }),
    vscode.commands.registerCommand("ktl.ui.cluster.reveal", async (arg: unknown) => {
      const o = objectOf(arg);
      if (!o) return;
      const r = await exec<{ uri: string; range: { start: { line: number; character: number }; end: { line: number; character: number } } } | null>(
        "ktl.k8s.source",
        { kind: o.node.kind, name: o.node.name, namespace: o.node.namespace, apiVersion: o.node.apiVersion },
      );
      if (!r) return void vscode.window.showInformationMessage(`No workspace file declares ${o.node.kind} ${o.node.name}`);
      const range = new vscode.Range(r.range.start.line, r.range.start.character, r.range.end.line, r.range.end.character);
      await vscode.window.showTextDocument(vscode.Uri.parse(r.uri), { selection: range });
    }),
  );

  /** Reloads the status bar's context/namespace; after a (re)start, re-applies the pick first. */
  const refreshK8s = async (restore = false): Promise<void> => {
    let next: K8sStatus = {};
    if (client?.isRunning() && advertised.has("ktl.k8s.contexts")) {
      if (restore) {
        const saved = context.workspaceState.get<K8sSelection>(K8S_SELECTION);
        if (!(await restoreSelection(exec, saved))) {
          log.warn(`forgetting the Kubernetes pick ${JSON.stringify(saved)}: the kubeconfig no longer has it`);
          await context.workspaceState.update(K8S_SELECTION, undefined);
        }
      }
      next = await loadK8sStatus(exec);
    }
    for (const key of Object.keys(k8sStatus) as (keyof K8sStatus)[]) delete k8sStatus[key];
    Object.assign(k8sStatus, next);
    updateStatus();
  };

  let refreshing: Promise<void> | undefined;
  let again = false;
  const refreshSessions = (): void => {
    if (!client?.isRunning()) return;
    if (refreshing) {
      again = true; // asked for while a list is in flight: the answer may not have what prompted it
      return;
    }
    model.listing();
    refreshing = exec<{ sessions: Session[] }>("ktl.sessions.list", { limit: setting<number>("sessions.limit", 50) })
      .then((r) => {
        model.replace(r.sessions);
        provider.fire();
        updateStatus();
      })
      .catch((e: unknown) => {
        model.listFailed();
        log.warn(`sessions.list: ${String(e)}`);
      })
      .finally(() => {
        refreshing = undefined;
        if (again) {
          again = false;
          refreshSessions();
        }
      });
  };
  router.onAnyState((p) => {
    if (model.applyState(p)) refreshSessions();
    provider.fire();
    updateStatus();
  });

  const ui: Ui = {
    input: (prompt, opts) => Promise.resolve(vscode.window.showInputBox({ prompt, ignoreFocusOut: opts?.password, ...opts })),
    pick: (items, placeHolder) => Promise.resolve(vscode.window.showQuickPick(items, { placeHolder, matchOnDescription: true, matchOnDetail: true })),
    info: (m) => void vscode.window.showInformationMessage(m),
    error: (m) => void vscode.window.showErrorMessage(m),
    showDocument: async (content, language) => {
      const doc = await vscode.workspace.openTextDocument({ content, language });
      await vscode.window.showTextDocument(doc, { preview: true });
    },
    showReadOnly: async (name, content, language) => {
      const uri = rendered.put(name, content);
      const doc = await vscode.languages.setTextDocumentLanguage(await vscode.workspace.openTextDocument(uri), language);
      await vscode.window.showTextDocument(doc, { preview: true });
    },
    openTerminal: (arg) => openTerminal(arg),
    copy: async (text) => vscode.env.clipboard.writeText(text),
    openExternal: (url) => void vscode.env.openExternal(vscode.Uri.parse(url)),
    activeUri: () => vscode.window.activeTextEditor?.document.uri.toString(),
    saveUri: async (name) => {
      const base = vscode.workspace.workspaceFolders?.[0]?.uri;
      const uri = await vscode.window.showSaveDialog({ defaultUri: base ? vscode.Uri.joinPath(base, name) : undefined });
      return uri?.fsPath;
    },
    refreshSessions,
    confirm: async (message, action) => (await vscode.window.showWarningMessage(message, { modal: true }, action)) === action,
    storeSecret: async (key, value) => {
      if (value === undefined) await context.secrets.delete(key);
      else await context.secrets.store(key, value);
    },
    restartServer: () => restart(context, log, onReady),
    ask: async (message, actions) => vscode.window.showInformationMessage(message, ...actions),
    k8sSelection: () => context.workspaceState.get<K8sSelection>(K8S_SELECTION),
    k8sChanged: async (selection) => {
      await context.workspaceState.update(K8S_SELECTION, selection);
      await refreshK8s();
    },
  };
  const shown = new ShownSessions(context.workspaceState);
  let reopened = false;
  /** Once the server runs: the sessions, and the Kubernetes pick (the server forgot it). */
  const onReady = (): void => {
    refreshSessions();
    if (!reopened && setting<boolean>("sessions.persist", false)) {
      // the first start of this window: terminals on the sessions that outlived the last one
      reopened = true;
      shown
        .reopen(exec, (s) => openTerminal({ attach: s, title: s.title, background: true }))
        .then((r) => r.length > 0 && log.info(`reopened ${r.length} session terminal(s)`), (e: unknown) => log.warn(`reopening terminals: ${String(e)}`));
    }
    void refreshK8s(true).then(() => {
      // a (re)started server has no watches: the view starts over
      for (const e of cluster.children()) cluster.forget(e.context);
      clusterProvider.fire();
      if (clusterView.visible) void watchCluster();
    });
  };

  const openTerminal = (arg: { run?: RunSpec; exec?: ExecSpec; shell?: ShellSpec; attach?: Session; title: string; background?: boolean }): void => {
    const core = new SessionTerminal({
      exec,
      router,
      run: arg.run && { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, ...arg.run },
      execInto: arg.exec,
      shell: arg.shell && { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, ...arg.shell },
      attach: arg.attach,
      confirm: async (message) =>
        (await vscode.window.showWarningMessage(message, { modal: true }, "Cancel Session")) === "Cancel Session",
      onError: (m) => log.error(m),
    });
    core.started.then(() => refreshSessions(), () => undefined);
    if (setting<boolean>("sessions.persist", false)) shown.track(core);
    const pty: vscode.Pseudoterminal = {
      onDidWrite: core.onDidWrite as unknown as vscode.Event<string>,
      onDidClose: core.onDidClose as unknown as vscode.Event<number | void>,
      open: (dims) => core.open(dims),
      close: () => void core.close().finally(() => core.dispose()),
      handleInput: (data) => core.handleInput(data),
      setDimensions: (dims) => core.setDimensions(dims),
    };
    const terminal = vscode.window.createTerminal({ name: arg.title.slice(0, 60), pty });
    terminal.show(arg.background);
  };

  const ctx: CommandContext = { ui, exec };
  lensHandler = async (command, args, next) => {
    try {
      return await lensCommand(ctx, command, args, next);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log.error(`${command}: ${message}`);
      void vscode.window.showErrorMessage(`ktl: ${message}`);
      return undefined;
    }
  };
  for (const c of COMMANDS) {
    context.subscriptions.push(
      vscode.commands.registerCommand(c.id, async (arg?: unknown, selected?: unknown) => {
        try {
          await c.run(ctx, arg, selected);
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          log.error(`${c.id}: ${message}`);
          void vscode.window.showErrorMessage(`ktl: ${message}`);
        }
      }),
    );
  }
  // VS Code's own MCP support (1.101+), when this VS Code has it: `ktl-lsp mcp` for its agents
  const mcpChanged = new Emitter<void>();
  const mcp = registerMcp(vscode as unknown as McpApi, mcpChanged, () => mcpServer(context), String(context.extension?.packageJSON?.version ?? "0"));
  if (mcp) context.subscriptions.push(mcp, mcpChanged);
  context.subscriptions.push(
    vscode.commands.registerCommand("ktl.ui.sessions.refresh", refreshSessions),
    vscode.commands.registerCommand("ktl.ui.server.restart", () => restart(context, log, onReady)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      const affects = (section: string): boolean => e.affectsConfiguration(section);
      if (affects("ktl")) mcpChanged.fire();
      if (needsRestart(affects)) {
        void restart(context, log, onReady);
      } else if (switchesChanged(affects) && client?.isRunning()) {
        const settings = featureSwitches((key) => setting<unknown>(key, undefined));
        client.sendNotification(DidChangeConfigurationNotification.type, { settings }).catch((err: unknown) => log.warn(`didChangeConfiguration: ${String(err)}`));
      }
    }),
    // installed or enabled later: the advice may apply now
    vscode.extensions.onDidChange(() => adviseBesideYaml(context, log)),
    // the kubeconfig may have changed meanwhile (kubectl config use-context, a new cluster)
    vscode.window.onDidChangeWindowState((w) => {
      if (w.focused) void refreshK8s();
    }),
  );
  await start(context, log, onReady);
  adviseBesideYaml(context, log);
}

/** Once: how to avoid completion and hover twice beside the YAML extension (src/core/coexistence). */
function adviseBesideYaml(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
  const target = (scope: string) => (scope === "workspace" ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global);
  adviseCoexistence({
    yamlPresent: () => vscode.extensions.getExtension(YAML_EXTENSION) !== undefined,
    get: (section, key) => vscode.workspace.getConfiguration(section).get<unknown>(key),
    hasWorkspace: () => (vscode.workspace.workspaceFolders?.length ?? 0) > 0,
    update: (c) => Promise.resolve(vscode.workspace.getConfiguration(c.section).update(c.key, c.value, target(c.scope))),
    ask: (message, titles) => Promise.resolve(vscode.window.showInformationMessage(message, ...titles)),
    shown: () => context.globalState.get<boolean>(COEXISTENCE_SHOWN) === true,
    markShown: () => Promise.resolve(context.globalState.update(COEXISTENCE_SHOWN, true)),
  }).then(
    (title) => title && log.info(`beside ${YAML_EXTENSION}: ${title}`),
    (err: unknown) => log.warn(`beside ${YAML_EXTENSION}: ${String(err)}`),
  );
}

function setting<T>(key: string, fallback: T): T {
  return vscode.workspace.getConfiguration("ktl").get<T>(key, fallback);
}

/** The ktl-lsp the settings name, with its global options (store, extra args). */
function serverCommand(): ServerCommand {
  return resolveServer({
    path: setting("server.path", ""),
    python: setting("server.python", ""),
    args: setting<string[]>("server.args", []),
    store: setting("store", ""),
  });
}

/** `ktl-lsp mcp` as VS Code starts it: the settings it reads written to the extension's storage. */
async function mcpServer(context: vscode.ExtensionContext): Promise<McpDefinition> {
  const dir = context.globalStorageUri?.fsPath ?? os.tmpdir();
  await fs.promises.mkdir(dir, { recursive: true });
  const file = path.join(dir, "mcp-settings.json");
  const settings = mcpSettings((key) => setting<unknown>(key, undefined), setting<Record<string, unknown>>("server.initializationOptions", {}));
  await fs.promises.writeFile(file, JSON.stringify(settings, null, 2), { mode: 0o600 });
  return mcpDefinition(serverCommand(), file);
}

async function start(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, refresh: () => void): Promise<void> {
  const server = serverCommand();
  log.info(`starting ${server.command} ${server.args.join(" ")}`);
  const serverOptions: ServerOptions = { command: server.command, args: server.args, transport: TransportKind.stdio };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "yaml" },
      { scheme: "file", language: "json" },
      // Helm templates: `helm` is the language id Helm extensions give them; `.tpl` files are
      // often plain text
      { scheme: "file", language: "helm" },
      { scheme: "file", pattern: "**/templates/**/*.tpl" },
    ],
    outputChannel: log,
    middleware: {
      // a CodeLens runs the server's command id through VS Code: some open terminals instead
      executeCommand: (command, args, next) =>
        lensHandler ? lensHandler(command, args, async (c, a) => next(c, a)) : next(command, args),
    },
    initializationOptions: settingsToInitializationOptions(
      (key) => setting<unknown>(key, undefined),
      await context.secrets.get(AGENT_TOKEN_SECRET),
      setting<Record<string, unknown>>("server.initializationOptions", {}),
    ),
    errorHandler: {
      error: () => ({ action: ErrorAction.Continue }),
      closed: () => {
        // Our own debounced restart (the client's default gives up after 5 crashes in 3 minutes
        // without waiting in between).
        const delay = restartPolicy.onCrash();
        if (delay === undefined) {
          void vscode.window.showErrorMessage("ktl-lsp keeps crashing; see the ktl output. Run 'ktl: Restart Server' to try again.");
        } else {
          log.warn(`ktl-lsp exited; restarting in ${delay} ms`);
          if (restartTimer) clearTimeout(restartTimer);
          restartTimer = setTimeout(() => void restart(context, log, refresh), delay);
        }
        return { action: CloseAction.DoNotRestart };
      },
    },
  };
  client = new LanguageClient("ktl", "ktl", serverOptions, clientOptions);
  context.subscriptions.push(
    client.onNotification("ktl/sessionData", (p: SessionDataParams) => router.onData(p)),
    client.onNotification("ktl/sessionState", (p: SessionStateParams) => router.onState(p)),
    client.onNotification("ktl/resources", (p: ResourcesParams) => onResources?.(p)),
    client.onNotification("ktl/block", (p: BlockParams) => onBlock?.(p)),
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) restartPolicy.reset();
      // menus and commands gated on a running server go while it is down (a crash, a restart)
      if (e.newState === State.Stopped) void vscode.commands.executeCommand("setContext", "ktl.server.running", false);
    }),
  );
  try {
    await client.start();
  } catch (e) {
    log.error(`could not start ktl-lsp: ${String(e)}`);
    void vscode.window.showErrorMessage(`ktl: could not start ${server.command}: set ktl.server.path or ktl.server.python`);
    return;
  }
  const commands = client.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
  advertised = new Set(commands);
  for (const [key, value] of Object.entries(contextKeys(commands))) {
    void vscode.commands.executeCommand("setContext", key, value);
  }
  void vscode.commands.executeCommand("setContext", "ktl.server.running", true);
  refresh();
}

async function restart(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, refresh: () => void): Promise<void> {
  if (restartTimer) clearTimeout(restartTimer);
  restartTimer = undefined;
  const old = client;
  client = undefined;
  if (old) {
    try {
      await old.dispose(2000);
    } catch {
      // already gone
    }
  }
  await start(context, log, refresh);
}

export async function deactivate(): Promise<void> {
  if (restartTimer) clearTimeout(restartTimer);
  await client?.dispose(2000);
  client = undefined;
}
