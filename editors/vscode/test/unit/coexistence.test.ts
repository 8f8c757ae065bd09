import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import {
  adviseCoexistence,
  coexistenceAdvice,
  CoexistenceHost,
  NOT_AGAIN,
  overlap,
  SettingChange,
  TURN_OFF_KTL,
  TURN_OFF_YAML,
  YAML_EXTENSION,
} from "../../src/core/coexistence";
import { FEATURE_SWITCHES, featureSwitches, needsRestart, settingsToInitializationOptions, switchesChanged } from "../../src/core/server";

const ROOT = path.resolve(__dirname, "..", "..", "..");

/** An editor with the YAML extension (or not), settings by `section.key`, and one answer ready. */
function host(opts: { yaml?: boolean; settings?: Record<string, unknown>; answer?: string; workspace?: boolean; shown?: boolean } = {}) {
  const settings: Record<string, unknown> = { ...opts.settings };
  const asked: { message: string; titles: string[] }[] = [];
  const updates: SettingChange[] = [];
  let shown = opts.shown ?? false;
  const h: CoexistenceHost = {
    yamlPresent: () => opts.yaml ?? true,
    get: (section, key) => settings[`${section}.${key}`],
    hasWorkspace: () => opts.workspace ?? true,
    update: async (c) => {
      updates.push(c);
      settings[`${c.section}.${c.key}`] = c.value;
    },
    ask: async (message, titles) => (asked.push({ message, titles }), opts.answer),
    shown: () => shown,
    markShown: async () => void (shown = true),
  };
  return { h, asked, updates, settings, isShown: () => shown };
}

test("both on: asked once, the YAML extension's off for the workspace by the first button", async () => {
  const t = host({ answer: TURN_OFF_YAML });
  assert.equal(await adviseCoexistence(t.h), TURN_OFF_YAML);
  assert.equal(t.asked.length, 1);
  assert.deepEqual(t.asked[0].titles, [TURN_OFF_YAML, TURN_OFF_KTL, NOT_AGAIN]);
  assert.match(t.asked[0].message, new RegExp(`^The YAML extension \\(${YAML_EXTENSION.replace(".", "\\.")}\\) also offers completion and hover in YAML files, so each shows twice\\.`));
  assert.match(t.asked[0].message, /in this workspace \(yaml\.completion, yaml\.hover: /);
  assert.match(t.asked[0].message, /or ktl's \(ktl\.completion\.enabled, ktl\.hover\.enabled\)\?$/);
  assert.deepEqual(t.updates, [
    { section: "yaml", key: "completion", value: false, scope: "workspace" },
    { section: "yaml", key: "hover", value: false, scope: "workspace" },
  ]);
  // never again, whatever happens next
  assert.equal(await adviseCoexistence(t.h), undefined);
  t.settings["yaml.hover"] = true;
  assert.equal(await adviseCoexistence(t.h), undefined);
  assert.equal(t.asked.length, 1);
});

test("the other button turns ktl's off; without a folder the user's settings", async () => {
  const t = host({ answer: TURN_OFF_KTL, workspace: false });
  await adviseCoexistence(t.h);
  assert.match(t.asked[0].message, /in your user settings/);
  assert.deepEqual(t.updates, [
    { section: "ktl", key: "completion.enabled", value: false, scope: "global" },
    { section: "ktl", key: "hover.enabled", value: false, scope: "global" },
  ]);
});

test("closed or Don't Show Again: nothing changes, and it is not shown again", async () => {
  for (const answer of [undefined, NOT_AGAIN]) {
    const t = host({ answer });
    assert.equal(await adviseCoexistence(t.h), answer);
    assert.deepEqual(t.updates, []);
    assert.ok(t.isShown());
    await adviseCoexistence(t.h);
    assert.equal(t.asked.length, 1);
  }
});

test("nothing to say: no YAML extension, shown before, or no feature on in both", async () => {
  for (const t of [
    host({ yaml: false }),
    host({ shown: true }),
    host({ settings: { "yaml.completion": false, "ktl.hover.enabled": false } }),
    host({ settings: { "yaml.completion": false, "yaml.hover": false } }),
  ]) {
    assert.equal(await adviseCoexistence(t.h), undefined);
    assert.deepEqual(t.asked, []);
  }
  // a lone overlap names only that feature
  const t = host({ settings: { "ktl.completion.enabled": false }, answer: TURN_OFF_YAML });
  await adviseCoexistence(t.h);
  assert.match(t.asked[0].message, /also offers hover in YAML files, so it shows twice/);
  assert.deepEqual(t.updates, [{ section: "yaml", key: "hover", value: false, scope: "workspace" }]);
});

test("overlap and advice on their own", () => {
  assert.deepEqual(overlap(() => undefined), ["completion", "hover"]);
  assert.deepEqual(overlap((s, k) => (s === "yaml" && k === "hover" ? false : true)), ["completion"]);
  assert.equal(coexistenceAdvice([], "workspace"), undefined);
  assert.equal(coexistenceAdvice(["hover"], "global")!.choices.at(-1)!.changes.length, 0);
});

test("feature switches: sent at initialize, sent live on change, never a restart", () => {
  const values: Record<string, unknown> = { "completion.enabled": false, "hover.enabled": true, "codeLens.enabled": null };
  assert.deepEqual(featureSwitches((k) => values[k]), { completion: { enabled: false }, hover: { enabled: true } });
  assert.deepEqual(settingsToInitializationOptions((k) => values[k], undefined, { completion: { enabled: true } }), {
    completion: { enabled: false },
    hover: { enabled: true },
    sessionData: true,
    resources: true,
  });
  for (const name of FEATURE_SWITCHES) {
    assert.ok(switchesChanged((s) => s === `ktl.${name}`), name);
    assert.ok(!needsRestart((s) => s === `ktl.${name}`), name);
  }
  assert.ok(!switchesChanged((s) => s === "ktl.retention"));
});

test("package.json contributes ktl.<feature>.enabled for every switch, on by default", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
  const props = pkg.contributes.configuration.properties as Record<string, { type: string; default: unknown }>;
  for (const name of FEATURE_SWITCHES) {
    assert.deepEqual([props[`ktl.${name}.enabled`]?.type, props[`ktl.${name}.enabled`]?.default], ["boolean", true], name);
  }
});
