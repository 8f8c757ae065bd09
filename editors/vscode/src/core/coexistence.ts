/**
 * ktl beside the Red Hat YAML extension (yaml-language-server): both answer completion and hover
 * in YAML files, so each would show twice. Said once, with buttons that turn one side off.
 */

/** The Red Hat YAML extension's id. */
export const YAML_EXTENSION = "redhat.vscode-yaml";
/** globalState key: the advice was shown (whatever the answer), so it is not shown again. */
export const COEXISTENCE_SHOWN = "ktl.coexistence.yamlShown";

/** The features both servers answer, each with its setting on either side. */
const SHARED = ["completion", "hover"] as const;
export type Shared = (typeof SHARED)[number];

/** Where a setting is written: the workspace's settings, or the user's when no folder is open. */
export type Scope = "workspace" | "global";

export interface SettingChange {
  section: "yaml" | "ktl";
  key: string;
  value: boolean;
  scope: Scope;
}

export interface Choice {
  title: string;
  changes: SettingChange[];
}

export interface Advice {
  message: string;
  /** The suggested choice first; the last one changes nothing (only not shown again). */
  choices: Choice[];
}

export const TURN_OFF_YAML = "Turn Off YAML's";
export const TURN_OFF_KTL = "Turn Off ktl's";
export const NOT_AGAIN = "Don't Show Again";

/** The shared features on in both: `yaml.<feature>` and `ktl.<feature>.enabled` not false. */
export function overlap(get: (section: "yaml" | "ktl", key: string) => unknown): Shared[] {
  return SHARED.filter((f) => get("yaml", f) !== false && get("ktl", `${f}.enabled`) !== false);
}

/**
 * What to tell the user about `features` answered twice. The suggestion turns the YAML
 * extension's off for this workspace (ktl knows the workspace's Kubernetes objects, stacks and
 * plans; the YAML extension keeps validating and formatting, and the user's other workspaces keep
 * it all); the other choice turns ktl's off instead.
 */
export function coexistenceAdvice(features: Shared[], scope: Scope): Advice | undefined {
  if (features.length === 0) return undefined;
  const what = features.join(" and ");
  const where = scope === "workspace" ? "in this workspace" : "in your user settings";
  const yamlKeys = features.map((f) => `yaml.${f}`).join(", ");
  const ktlKeys = features.map((f) => `ktl.${f}.enabled`).join(", ");
  const message =
    `The YAML extension (${YAML_EXTENSION}) also offers ${what} in YAML files, so ${features.length > 1 ? "each shows" : "it shows"} twice. ` +
    `Turn off the YAML extension's ${where} (${yamlKeys}: ktl's know Kubernetes manifests, stacks and plans), or ktl's (${ktlKeys})?`;
  return {
    message,
    choices: [
      { title: TURN_OFF_YAML, changes: features.map((f) => ({ section: "yaml", key: f, value: false, scope })) },
      { title: TURN_OFF_KTL, changes: features.map((f) => ({ section: "ktl", key: `${f}.enabled`, value: false, scope })) },
      { title: NOT_AGAIN, changes: [] },
    ],
  };
}

/** What the advice needs from the editor. */
export interface CoexistenceHost {
  /** The YAML extension is installed and enabled (it runs on YAML files, where ktl does). */
  yamlPresent(): boolean;
  /** A setting's effective value. */
  get(section: "yaml" | "ktl", key: string): unknown;
  hasWorkspace(): boolean;
  update(change: SettingChange): Promise<void>;
  ask(message: string, titles: string[]): Promise<string | undefined>;
  shown(): boolean;
  markShown(): Promise<void>;
}

/**
 * Tells the user once, when the YAML extension is there and completion or hover is on in both,
 * and applies the chosen button. Closing the message counts as an answer. Returns the chosen
 * title (undefined when nothing was asked or the message was closed).
 */
export async function adviseCoexistence(host: CoexistenceHost): Promise<string | undefined> {
  if (host.shown() || !host.yamlPresent()) return undefined;
  const advice = coexistenceAdvice(overlap((section, key) => host.get(section, key)), host.hasWorkspace() ? "workspace" : "global");
  if (!advice) return undefined;
  await host.markShown();
  const title = await host.ask(advice.message, advice.choices.map((c) => c.title));
  const choice = advice.choices.find((c) => c.title === title);
  for (const change of choice?.changes ?? []) await host.update(change);
  return title;
}
