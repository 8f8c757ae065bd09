/**
 * The MCP server (`ktl-lsp mcp`) offered to VS Code's own MCP support (Copilot agent mode) where
 * the running VS Code has it (`vscode.lm.registerMcpServerDefinitionProvider`, 1.101+). The
 * extension targets 1.82, so the API is looked up at run time and nothing happens without it
 * (the README shows the `.vscode/mcp.json` to write by hand there).
 */
import { Emitter } from "./emitter";
import { ServerCommand, settingsToInitializationOptions } from "./server";

/** The id package.json contributes under `mcpServerDefinitionProviders`. */
export const MCP_PROVIDER_ID = "ktl.mcp";

export interface McpDefinition {
  label: string;
  command: string;
  args: string[];
}

type Disposable = { dispose(): unknown };

/** The part of the `vscode` module this needs; absent before 1.101. */
export interface McpApi {
  lm?: { registerMcpServerDefinitionProvider?: (id: string, provider: object) => Disposable };
  McpStdioServerDefinition?: new (label: string, command: string, args?: string[], env?: Record<string, string>, version?: string) => object;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * What `ktl-lsp mcp --settings FILE` reads: the settings the language server gets (its guarded
 * contexts among them; never the agent token), with `ktl.agents.allowWrite` and `ktl.agents.allow`
 * as `agents`.
 */
export function mcpSettings(get: (key: string) => unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out = settingsToInitializationOptions(get, undefined, extra);
  const agents = isPlainObject(out.agents) ? { ...out.agents } : {};
  if (get("agents.allowWrite") === true) agents.allowWrite = true;
  const allow = get("agents.allow");
  if (Array.isArray(allow) && allow.length) agents.allow = allow;
  out.agents = agents;
  return out;
}

/** `ktl-lsp [globals] mcp --settings FILE`, the same executable and store as the language server. */
export function mcpDefinition(server: ServerCommand, settingsFile: string): McpDefinition {
  return { label: "ktl", command: server.command, args: [...server.args, "mcp", "--settings", settingsFile] };
}

/**
 * Registers the provider when `api` has VS Code's MCP support, else returns undefined.
 * `definition` is asked each time VS Code wants the server (it writes the settings file).
 */
export function registerMcp(
  api: McpApi,
  changed: Emitter<void>,
  definition: () => Promise<McpDefinition>,
  version: string,
): Disposable | undefined {
  const register = api.lm?.registerMcpServerDefinitionProvider;
  const Stdio = api.McpStdioServerDefinition;
  if (typeof register !== "function" || typeof Stdio !== "function") return undefined;
  return register.call(api.lm, MCP_PROVIDER_ID, {
    onDidChangeMcpServerDefinitions: changed.event,
    provideMcpServerDefinitions: async () => {
      const d = await definition();
      return [new Stdio(d.label, d.command, d.args, {}, version)];
    },
  });
}
