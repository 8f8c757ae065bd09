"""`.ktl.yaml`: known keys and values; unknown keys warn.

ktl loads this file non-strictly, so a typo silently does nothing: that is what we catch.
"""

from __future__ import annotations

from ktl_lsp.checks.findings import Finding
from ktl_lsp.checks.shape import BOOL, STRING, Shape, ShapeWalk, map_of, obj
from ktl_lsp.documents.nodes import MappingNode, ScalarNode
from ktl_lsp.documents.yaml_nodes import get, mapping_pairs, scalar_text, scalar_value
from ktl_lsp.documents.yaml_parse import ParsedText

CODE = "ktl-config"
BUILD_PROFILES = ("dev", "ci", "secure", "remote")

PROVIDER = obj(
    {
        "type": Shape("string", enum=("file", "vault")),
        "kvVersion": Shape("scalar"),
        "authMethod": Shape("string", enum=("token", "approle", "kubernetes", "aws")),
    },
    **{
        key: STRING
        for key in (
            "path", "address", "token", "namespace", "mount", "key", "authMount", "roleId",
            "secretId", "kubernetesRole", "kubernetesToken", "kubernetesTokenPath", "awsRole",
            "awsRegion", "awsHeaderValue",
        )
    },
)  # fmt: skip
KTL_CONFIG = obj(
    build=obj(
        profile=STRING,
        cacheDir=STRING,
        attestDir=STRING,
        policy=STRING,
        policyMode=Shape("string", enum=("enforce", "warn")),
        secretsMode=Shape("string", enum=("warn", "block", "off")),
        secretsConfig=STRING,
        hermetic=BOOL,
        sandbox=BOOL,
        push=BOOL,
        load=BOOL,
        sandboxConfig=STRING,
        remoteBuild=Shape("scalar"),
    ),
    secrets=obj(defaultProvider=STRING, providers=map_of(PROVIDER)),
)


def check_ktl_config(parsed: ParsedText) -> list[Finding]:
    findings: list[Finding] = []
    for document in parsed.documents[:1]:
        root = document.root
        if root is None:
            continue
        walk = ShapeWalk(CODE, "ktl")
        walk.walk(root, KTL_CONFIG, "")
        profile = get(root, "build", "profile")
        profile_text = scalar_text(profile)
        if profile is not None and profile_text and profile_text not in BUILD_PROFILES:
            walk.add(
                profile,
                f'build.profile "{profile_text}" is not one of {"|".join(BUILD_PROFILES)}; '
                "ktl only prints a warning and uses its defaults",
                "warning",
            )
        providers = get(root, "secrets", "providers")
        if isinstance(providers, MappingNode):
            for key, provider in mapping_pairs(providers):
                label = f"secrets.providers.{key.value}"
                if isinstance(provider, MappingNode) and not scalar_text(get(provider, "type")):
                    walk.add(key, f"{label}.type is required (file|vault)")
                kv = get(provider, "kvVersion")
                if isinstance(kv, ScalarNode) and scalar_value(kv) not in (1, 2, "1", "2"):
                    walk.add(kv, f'{label}.kvVersion must be 1|2 (got "{kv.value}")')
        findings.extend(f.shifted(document.start_line) for f in walk.findings)
    return findings
