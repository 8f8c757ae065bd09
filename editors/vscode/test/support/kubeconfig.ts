import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The kubeconfig the e2e tests give the server: the pytest side passes one for its live loopback
 * API server (KTL_TEST_KUBECONFIG); alone, contexts "fake" (current) and "staging" point nowhere,
 * as tests/editors/conftest.py's do.
 */
export function testKubeconfig(dir: string): string {
  if (process.env.KTL_TEST_KUBECONFIG) return process.env.KTL_TEST_KUBECONFIG;
  const file = path.join(dir, "kubeconfig");
  const cluster = (name: string) => ({ name, cluster: { server: "http://127.0.0.1:9" } });
  const context = (name: string) => ({ name, context: { cluster: name, user: "tester" } });
  const config = {
    apiVersion: "v1",
    kind: "Config",
    "current-context": "fake",
    clusters: [cluster("fake"), cluster("staging")],
    contexts: [context("fake"), context("staging")],
    users: [{ name: "tester", user: { token: "t" } }],
  };
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

/** True under a CI runner (CI set to anything but "", "0", "false", "no"), as tests/needs.py decides. */
export function inCI(): boolean {
  return !["", "0", "false", "no"].includes((process.env.CI ?? "").trim().toLowerCase());
}

/**
 * Why a test that needs the loopback API server cannot run (no KTL_TEST_KUBECONFIG), or undefined
 * when it can. In CI a missing cluster is a failure: tests/editors/test_vscode.py always sets it.
 */
export function noCluster(): string | undefined {
  if (process.env.KTL_TEST_KUBECONFIG) return undefined;
  const why = "no loopback cluster: KTL_TEST_KUBECONFIG is set by tests/editors/test_vscode.py";
  if (inCI()) throw new Error(why);
  return why;
}
