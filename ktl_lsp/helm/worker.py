"""The render worker: a process of its own that loads Helm's Go SDK (helm_python) and renders.

`python -m ktl_lsp.helm.worker` reads one JSON request a line on stdin and answers each with
one JSON line on stdout (`ktl_lsp/helm/render.py` is the other end, and says the protocol).
The Go library runs here, never in the language server: a crash or a template that never ends
costs this process only, which the server kills and starts again.

Anything the library writes to stdout goes to stderr: the answers have the real stdout to
themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import IO, Any

from ktl_lsp.helm.wire import dumps_line, loads


def merge_values(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of `-f` files: maps merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def kube_version_option(version: str | None) -> str | None:
    """`1.31` -> `v1.31.0`, the form `helm template --kube-version` gives the templates."""
    if not version:
        return None
    parts = version.lstrip("v").split(".")
    while len(parts) < 3:
        parts.append("0")
    return "v" + ".".join(parts[:3])


class Worker:
    def __init__(self) -> None:
        import helm_python

        self.helm = helm_python
        self.kube_version_works = True

    def hello(self) -> dict[str, Any]:
        return {"ready": True, "helm": self.helm.helm_sdk_version()}

    def render(self, req: dict[str, Any]) -> dict[str, Any]:
        helm = self.helm
        values: dict[str, Any] = {}
        for item in req.get("values") or []:
            try:
                parsed = helm.values_from_yaml(item["text"]) if item["text"].strip() else {}
            except helm.HelmError as exc:
                return {"error": {"kind": "values", "message": str(exc), "file": item["path"]}}
            if not isinstance(parsed, dict):
                parsed = {}
            values = merge_values(values, parsed)
        for key, value in req.get("set") or []:
            try:
                values = merge_values(values, helm.parse_set_string(f"{key}={value}"))
            except helm.HelmError as exc:
                return {"error": {"kind": "set", "message": f"--set {key}={value}: {exc}"}}
        try:
            with helm.Chart.load(req["chart"]) as chart:
                manifests = self._render(chart, values, req)
                if req.get("include_crds"):
                    crds = {c["filename"]: c["data"] for c in chart.crds}
                    manifests = {**crds, **manifests}
        except helm.HelmChartLoadError as exc:
            return {"error": {"kind": "load", "message": str(exc)}}
        except helm.HelmValuesError as exc:
            return {"error": {"kind": "values", "message": str(exc)}}
        except helm.HelmError as exc:
            return {"error": {"kind": "render", "message": str(exc)}}
        return _capped(manifests, int(req.get("max_bytes") or 0))

    def lint(self, req: dict[str, Any]) -> dict[str, Any]:
        """`helm lint` of the chart directory: `{"messages": [{"severity", "path", "error"}]}`."""
        # No schema validation: helm-values-schema checks values offline; Helm's loader would
        # fetch a remote `$ref` of values.schema.json.
        options: dict[str, Any] = {
            "namespace": req.get("namespace") or "default",
            "skip_schema_validation": True,
        }
        kube_version = kube_version_option(req.get("kube_version"))
        if kube_version:
            options["kube_version"] = kube_version
        try:
            report = self.helm.lint(req["chart"], **options)
        except self.helm.HelmError as exc:
            return {"error": {"kind": "lint", "message": str(exc)}}
        return {"messages": list(report.get("messages") or [])}

    def _render(self, chart: Any, values: dict[str, Any], req: dict[str, Any]) -> dict[str, str]:
        options: dict[str, Any] = {
            "name": req.get("release") or "release-name",
            "namespace": req.get("namespace") or "default",
            "is_install": True,  # as `helm template`
        }
        kube_version = kube_version_option(req.get("kube_version"))
        if kube_version and self.kube_version_works:
            # Chart.render() does not expose it; the C ABI's render options do.
            from helm_python import _native

            try:
                out = _native.call_string(
                    "helm_render",
                    chart._raw(),
                    json.dumps(values),
                    json.dumps({**options, "kube_version": kube_version}),
                )
                manifests: dict[str, str] = json.loads(out)
                return manifests
            except self.helm.HelmInvalidArgError:
                self.kube_version_works = False
        rendered: dict[str, str] = chart.render(values, **options)
        return rendered


def _capped(manifests: dict[str, str], max_bytes: int) -> dict[str, Any]:
    """The manifests, cut at `max_bytes` of text in all (whole manifests, in name order)."""
    if max_bytes <= 0 or sum(len(t) for t in manifests.values()) <= max_bytes:
        return {"manifests": manifests}
    kept: dict[str, str] = {}
    total = 0
    for name in sorted(manifests):
        size = len(manifests[name])
        if total + size > max_bytes:
            continue
        kept[name] = manifests[name]
        total += size
    return {"manifests": kept, "too_big": True}


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    from ktl_lsp.helm.sandbox import forbid_network

    # Before the library loads: the Go runtime's threads inherit the filter.
    unsandboxed = forbid_network()
    if unsandboxed is not None:
        print(f"ktl-lsp render worker: {unsandboxed}", file=sys.stderr)
    try:
        worker = Worker()
        hello = {**worker.hello(), "sandboxed": unsandboxed is None}
    except Exception as exc:  # the library is missing or does not load here
        stdout.write(dumps_line({"ready": False, "error": f"{type(exc).__name__}: {exc}"}))
        stdout.flush()
        return
    stdout.write(dumps_line(hello))
    stdout.flush()
    for line in stdin:
        if not line.strip():
            continue
        req = loads(line)
        try:
            if req.get("op") == "render":
                answer = worker.render(req)
            elif req.get("op") == "lint":
                answer = worker.lint(req)
            else:
                answer = {"error": {"kind": "protocol", "message": f"unknown op {req.get('op')}"}}
        except Exception as exc:
            answer = {"error": {"kind": "crash", "message": f"{type(exc).__name__}: {exc}"}}
        answer["id"] = req.get("id")
        stdout.write(dumps_line(answer))
        stdout.flush()


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the server that started it exits, even in the
    middle of a render (elsewhere the closed stdin ends it after the render)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main() -> None:
    _die_with_parent()
    # The answers get the real stdout; whatever else writes to fd 1 lands on stderr.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
