"""ktl `stack.yaml` / `release.yaml`: their file names and the shapes of their keys.

The shapes follow ktl's own (docs in ktl's repository; facts gathered in the project's compat
notes): unknown keys, which ktl silently ignores, become warnings.
"""

from __future__ import annotations

from ktl_lsp.checks.shape import (
    ANY,
    BOOL,
    DURATION,
    INT,
    NUMBER,
    SCALAR,
    STRING,
    STRINGS,
    Shape,
    list_of,
    map_of,
    obj,
)

CODE = "stack-schema"
STACK_NAMES = ("stack.yaml", "stack.yml")
RELEASE_NAMES = ("release.yaml", "release.yml")
DISCOVERY_SKIP = frozenset({".git", "bin", "dist"})
MAX_STACK_FILES = 5_000

CLUSTER = obj(name=STRING, kubeconfig=STRING, context=STRING)
APPLY = obj(atomic=BOOL, wait=BOOL, createNamespace=BOOL, timeout=DURATION)
DELETE = obj(timeout=DURATION)
VERIFY = obj(
    enabled=BOOL,
    failOnWarnings=BOOL,
    warnOnly=BOOL,
    eventsWindow=DURATION,
    timeout=DURATION,
    denyReasons=STRINGS,
    allowReasons=STRINGS,
    requireConditions=list_of(
        obj(group=STRING, kind=STRING, type=STRING, status=STRING, allowMissing=BOOL)
    ),
)
HOOK = obj(
    name=STRING,
    type=STRING,
    runOnce=BOOL,
    when=STRING,
    timeout=DURATION,
    retry=INT,
    kubeconfig=STRING,
    context=STRING,
    namespace=STRING,
    kubectl=obj(args=STRINGS),
    script=obj(command=STRINGS, env=map_of(SCALAR), workDir=STRING),
    http=obj(method=STRING, url=STRING, headers=map_of(SCALAR), body=ANY),
)
HOOKS = obj(
    preApply=list_of(HOOK),
    postApply=list_of(HOOK),
    preDelete=list_of(HOOK),
    postDelete=list_of(HOOK),
)
LOCK = obj(enabled=BOOL, takeover=BOOL, ttl=DURATION, owner=STRING)
CLI = obj(
    output=Shape("string", enum=("table", "json")),
    inferDeps=BOOL,
    inferConfigRefs=BOOL,
    selector=obj(
        clusters=STRINGS,
        tags=STRINGS,
        fromPaths=STRINGS,
        releases=STRINGS,
        gitRange=STRING,
        gitIncludeDeps=BOOL,
        gitIncludeDependents=BOOL,
        includeDeps=BOOL,
        includeDependents=BOOL,
        allowMissingDeps=BOOL,
    ),
    apply=obj(dryRun=BOOL, diff=BOOL, failFast=BOOL, retry=INT, lock=LOCK),
    delete=obj(confirmThreshold=INT, failFast=BOOL, retry=INT, lock=LOCK),
    resume=obj(allowDrift=BOOL, rerunFailed=BOOL),
)
RUNNER = obj(
    concurrency=INT,
    progressiveConcurrency=BOOL,
    kubeQPS=NUMBER,
    kubeBurst=INT,
    limits=obj(maxParallelPerNamespace=INT, maxParallelKind=map_of(INT), parallelismGroupLimit=INT),
    adaptive=obj(
        mode=STRING,
        min=INT,
        window=INT,
        rampAfterSuccesses=INT,
        rampMaxFailureRate=NUMBER,
        cooldownSevere=INT,
    ),
)
_DEFAULT_FIELDS: dict[str, Shape] = {
    "cluster": CLUSTER,
    "namespace": STRING,
    "values": STRINGS,
    "set": map_of(SCALAR),
    "tags": STRINGS,
    "apply": APPLY,
    "delete": DELETE,
    "verify": VERIFY,
}
DEFAULTS = Shape(
    "object",
    _DEFAULT_FIELDS,
    notes={
        "runner": "defaults.runner is ignored by ktl; put runner at the top level or under "
        "profiles.<name>"
    },
)
_RELEASE_FIELDS: dict[str, Shape] = {
    "name": STRING,
    "chart": STRING,
    "chartVersion": STRING,
    "wave": INT,
    "critical": BOOL,
    "parallelismGroup": STRING,
    "cluster": CLUSTER,
    "namespace": STRING,
    "values": STRINGS,
    "set": map_of(SCALAR),
    "tags": STRINGS,
    "needs": STRINGS,
    "apply": APPLY,
    "delete": DELETE,
    "hooks": HOOKS,
}
_DEPS_NOTE = "ktl has no {key} key: dependencies are declared with needs (a list of release names)"
_RELEASE_NOTES = {k: _DEPS_NOTE.format(key=k) for k in ("deps", "dependsOn", "depends_on")}
INLINE_RELEASE = Shape("object", {**_RELEASE_FIELDS, "verify": VERIFY}, notes=_RELEASE_NOTES)
RELEASE_FILE = Shape(
    "object",
    {"apiVersion": STRING, "kind": STRING, **_RELEASE_FIELDS},
    notes={
        **_RELEASE_NOTES,
        "verify": "verify is ignored in release.yaml; ktl reads it only from inline releases",
    },
)
PROFILE = obj(defaults=DEFAULTS, runner=RUNNER, cli=CLI, hooks=HOOKS)
ROOT_STACK = obj(
    apiVersion=STRING,
    kind=STRING,
    name=STRING,
    defaultProfile=STRING,
    profiles=map_of(PROFILE),
    defaults=DEFAULTS,
    runner=RUNNER,
    cli=CLI,
    hooks=HOOKS,
    releases=list_of(INLINE_RELEASE),
)
SUB_NOTE = "{key} is ignored in a subdirectory stack.yaml; only the root stack.yaml's counts"
