import { strict as assert } from "node:assert";
import { test } from "node:test";
import { Emitter } from "../../src/core/emitter";
import { MCP_PROVIDER_ID, McpApi, mcpDefinition, mcpSettings, registerMcp } from "../../src/core/mcp";

const definition = async () => mcpDefinition({ command: "/bin/ktl-lsp", args: ["--store", "/s.db"] }, "/tmp/mcp.json");

test("without VS Code's MCP API (before 1.101) nothing registers", () => {
  assert.equal(registerMcp({}, new Emitter<void>(), definition, "1"), undefined);
  assert.equal(registerMcp({ lm: {} }, new Emitter<void>(), definition, "1"), undefined);
});

test("with it, one provider gives ktl-lsp mcp with the language server's globals", async () => {
  const registered: [string, any][] = [];
  class Stdio {
    constructor(...args: unknown[]) {
      Object.assign(this, { args });
    }
  }
  const api: McpApi = {
    lm: { registerMcpServerDefinitionProvider: (id, p) => (registered.push([id, p]), { dispose() {} }) },
    McpStdioServerDefinition: Stdio as any,
  };
  const changed = new Emitter<void>();
  assert.ok(registerMcp(api, changed, definition, "0.1.0"));
  assert.equal(registered.length, 1);
  const [id, provider] = registered[0];
  assert.equal(id, MCP_PROVIDER_ID);
  const defs = await provider.provideMcpServerDefinitions();
  assert.deepEqual(defs[0].args, ["ktl", "/bin/ktl-lsp", ["--store", "/s.db", "mcp", "--settings", "/tmp/mcp.json"], {}, "0.1.0"]);
  let told = 0;
  provider.onDidChangeMcpServerDefinitions(() => void told++);
  changed.fire();
  assert.equal(told, 1);
});

test("the MCP settings: the server's settings and agents, never the agent token", () => {
  const values: Record<string, unknown> = { "agents.allowWrite": true, "agents.allow": [{ tool: "run", argv: ["make"] }], "agent.url": "https://x" };
  const out = mcpSettings((k) => values[k], { k8s: { protectedContexts: ["prod-*"] } });
  assert.deepEqual(out.agents, { allowWrite: true, allow: [{ tool: "run", argv: ["make"] }] });
  assert.deepEqual(out.k8s, { protectedContexts: ["prod-*"] });
  assert.deepEqual(out.agent, { url: "https://x" });
  assert.deepEqual(mcpSettings(() => undefined).agents, {});
});
