/** The VS Code side: everything that touches the `vscode` API. The logic lives in src/core. */
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
import { adviseCoexistence, COEXISTENCE_SHOWN, YAML_EXTENSION } from "./core/coexistence";
import { COMMANDS, CommandContext, lensCommand, Ui } from "./core/commands";
import { ExecSpec, K8sSelection, loadK8sStatus, restoreSelection, statusTooltip } from "./core/k8s";
import { SessionRouter } from "./core/router";
import {
  AGENT_TOKEN_SECRET,
  contextKeys,
  featureSwitches,
  needsRestart,
  RestartPolicy,
  resolveServer,
  settingsToInitializationOptions,
  switchesChanged,
} from "./core/server";
import { K8sStatus, loadChildren, SessionsModel, sessionItem, statusText } from "./core/sessions";
import { RunSpec, SessionTerminal } from "./core/terminal";
import { Exec, Session, SessionDataParams, SessionStateParams } from "./core/types";

let client: LanguageClient | undefined;
let restartTimer: ReturnType<typeof setTimeout> | undefined;
/** The commands the running server advertises. */
let advertised = new Set<string>();
/** Runs server commands invoked through VS Code (CodeLens clicks): see lensCommand. */
let lensHandler: ((command: string, args: unknown[], next: (command: string, args: unknown[]) => Promise<unknown>) => Promise<unknown>) | undefined;
/** workspaceState key of the workspace's Kubernetes context/namespace pick. */
const K8S_SELECTION = "ktl.k8s.selection";
const router = new SessionRouter();
const model = new SessionsModel();
const restartPolicy = new RestartPolicy();

const exec: Exec = async <T>(command: string, args: object = {}): Promise<T> => {
  if (!client || !client.isRunning()) throw new Error("ktl-lsp is not running");
  return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args] })) as T;
};

class SessionsProvider implements vscode.TreeDataProvider<Session> {
  private readonly changed = new vscode.EventEmitter<Session | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  fire(): void {
    this.changed.fire(undefined);
  }
  getTreeItem(s: Session): vscode.TreeItem {
    const v = sessionItem(s);
    const item = new vscode.TreeItem(
      v.label,
      v.collapsible ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
    );
    item.id = v.id;
    item.description = v.description;
    item.tooltip = v.tooltip;
    item.iconPath = new vscode.ThemeIcon(v.icon);
    item.contextValue = v.contextValue;
    item.command = { command: "ktl.ui.session.open", title: "Open Terminal", arguments: [s] };
    return item;
  }
  /** The top level, or a plan's node sessions (ktl.sessions.list with parentId). */
  getChildren(element?: Session): Session[] | Promise<Session[]> {
    if (!element) return model.roots();
    if (element.kind !== "plan") return [];
    return loadChildren(exec, model, element.sessionId);
  }
  getParent(element: Session): Session | undefined {
    return element.parentId ? model.get(element.parentId) : undefined;
  }
}

/** The status bar's Kubernetes part (from ktl.k8s.contexts; refreshed by refreshK8s). */
export const k8sStatus: K8sStatus = {};

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("ktl", { log: true });
  const provider = new SessionsProvider();
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
  context.subscriptions.push(log, status, view);

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
  const refreshSessions = (): void => {
    if (refreshing || !client?.isRunning()) return;
    refreshing = exec<{ sessions: Session[] }>("ktl.sessions.list", { limit: setting<number>("sessions.limit", 50) })
      .then((r) => {
        model.replace(r.sessions);
        provider.fire();
        updateStatus();
      })
      .catch((e: unknown) => log.warn(`sessions.list: ${String(e)}`))
      .finally(() => (refreshing = undefined));
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
    openTerminal: (arg) => openTerminal(arg),
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
  /** Once the server runs: the sessions, and the Kubernetes pick (the server forgot it). */
  const onReady = (): void => {
    refreshSessions();
    void refreshK8s(true);
  };

  const openTerminal = (arg: { run?: RunSpec; exec?: ExecSpec; attach?: Session; title: string }): void => {
    const core = new SessionTerminal({
      exec,
      router,
      run: arg.run && { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, ...arg.run },
      execInto: arg.exec,
      attach: arg.attach,
      confirm: async (message) =>
        (await vscode.window.showWarningMessage(message, { modal: true }, "Cancel Session")) === "Cancel Session",
      onError: (m) => log.error(m),
    });
    core.started.then(() => refreshSessions(), () => undefined);
    const pty: vscode.Pseudoterminal = {
      onDidWrite: core.onDidWrite as unknown as vscode.Event<string>,
      onDidClose: core.onDidClose as unknown as vscode.Event<number | void>,
      open: (dims) => core.open(dims),
      close: () => void core.close().finally(() => core.dispose()),
      handleInput: (data) => core.handleInput(data),
      setDimensions: (dims) => core.setDimensions(dims),
    };
    const terminal = vscode.window.createTerminal({ name: arg.title.slice(0, 60), pty });
    terminal.show();
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
  context.subscriptions.push(
    vscode.commands.registerCommand("ktl.ui.sessions.refresh", refreshSessions),
    vscode.commands.registerCommand("ktl.ui.server.restart", () => restart(context, log, onReady)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      const affects = (section: string): boolean => e.affectsConfiguration(section);
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

async function start(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, refresh: () => void): Promise<void> {
  const server = resolveServer({
    path: setting("server.path", ""),
    python: setting("server.python", ""),
    args: setting<string[]>("server.args", []),
    store: setting("store", ""),
  });
  log.info(`starting ${server.command} ${server.args.join(" ")}`);
  const serverOptions: ServerOptions = { command: server.command, args: server.args, transport: TransportKind.stdio };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "yaml" },
      { scheme: "file", language: "json" },
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
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) restartPolicy.reset();
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
