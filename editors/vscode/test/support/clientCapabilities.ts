/**
 * The client capabilities vscode-languageclient really announces, computed by the installed
 * library itself (its features' fillClientCapabilities), so the tests' client offers what the
 * extension's client offers in VS Code: window/showDocument, CodeLens refresh, watched files,
 * workspace/configuration and the rest.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { ClientCapabilities } from "vscode-languageserver-protocol";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const Module = require("node:module") as any;

class Emitter {
  private listeners: ((e: unknown) => void)[] = [];
  event = (fn: (e: unknown) => void) => (this.listeners.push(fn), { dispose: () => undefined });
  fire(e: unknown) {
    for (const fn of this.listeners) fn(e);
  }
  dispose() {}
}

/** A `vscode` that answers anything with a no-op: constructing the client only wires events. */
function inert(): any {
  const handler: ProxyHandler<any> = {
    // a function, so it also serves as a class the library extends (vscode.CompletionItem, ...)
    get: (t, k) => (k in t ? t[k] : (t[k] = new Proxy(function () {
      return { dispose: () => undefined };
    }, handler))),
  };
  const channel = { appendLine() {}, append() {}, info() {}, warn() {}, error() {}, show() {}, dispose() {} };
  return new Proxy({ EventEmitter: Emitter, version: "1.90.0", window: new Proxy({ createOutputChannel: () => channel }, handler) }, handler);
}

/** Computed once, when this module loads: before a test puts its own stand-ins in place. */
const computed = compute();

/** What `new LanguageClient(...)` of vscode-languageclient 9 sends in `initialize`. */
export function languageClientCapabilities(): ClientCapabilities {
  return structuredClone(computed);
}

function compute(): ClientCapabilities {
  let result: ClientCapabilities;
  const original = Module._load;
  const before = new Set(Object.keys(require.cache));
  const stub = inert();
  Module._load = function (request: string, ...rest: unknown[]) {
    if (request === "vscode") return stub;
    return original.call(this, request, ...rest);
  };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const lc = require("vscode-languageclient/node");
    const client = new lc.LanguageClient("probe", "probe", { command: "none" }, { outputChannel: stub.window.createOutputChannel() });
    result = client.computeClientCapabilities() as ClientCapabilities;
  } finally {
    Module._load = original;
    // the library loaded here saw the inert vscode: nothing else may reuse it
    for (const key of Object.keys(require.cache)) if (!before.has(key)) delete require.cache[key];
  }
  return result;
}
