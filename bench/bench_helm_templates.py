"""Completion and hover in a Helm template of a 40-template chart, without rendering.

The chart: `helm create`'s helpers and templates (tests/helm/charts/web) plus 34 components,
each a Deployment reading its own section of a 700-key values.yaml. Measured:

- floor: what any answer that looks at the whole chart must pay at least — reading every
  template and values file and finding the `.Values` paths with one plain regex (helm-ls can
  not be built offline here, so this stands in for a baseline);
- in process (the analysis a request runs in its worker thread): the first request (nothing
  cached), then requests on unchanged texts, then a request right after an edit of the template
  (its scan is made again, the other 39 come from the cache);
- through the real server: completion after `.Values.` and hover on a `.Values` path, round
  trips, and the same right after a didChange.

    .venv/bin/python bench/bench_helm_templates.py [-n 50]
    .venv/bin/python bench/bench_helm_templates.py --chart DIR --template templates/x.yaml

With `--chart`, a chart of your own (a public one, say) instead: completion after the first
`.Values.a.` of the template and hover there, in process.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_diagnostics import _Lsp
from ktl_lsp.checks.workspace import Workspace
from ktl_lsp.documents.positions import LineIndex, Position
from ktl_lsp.helm import chart_text as chart_module
from ktl_lsp.helm import templates as templates_module
from ktl_lsp.helm import values as values_module
from ktl_lsp.helm.editing import complete, hover

WEB = Path(__file__).resolve().parents[1] / "tests" / "helm" / "charts" / "web"
COMPONENTS = 34

COMPONENT = """\
{{- if .Values.c%(i)d.enabled }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "web.fullname" . }}-c%(i)d
  labels:
    {{- include "web.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.c%(i)d.replicas | default 1 }}
  template:
    spec:
      containers:
        - name: c%(i)d
          image: "{{ .Values.c%(i)d.image.repository }}:{{ .Values.c%(i)d.image.tag }}"
          {{- with .Values.c%(i)d.env }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - containerPort: {{ .Values.c%(i)d.port }}
          resources:
            {{- toYaml .Values.c%(i)d.resources | nindent 12 }}
{{- end }}
"""

VALUES = """\
c%(i)d:
  enabled: true
  replicas: 2
  image:
    repository: example/c%(i)d
    tag: "1.%(i)d"
  env: []
  port: %(port)d
  resources:
    limits: {cpu: 100m, memory: 128Mi}
    requests: {cpu: 50m, memory: 64Mi}
  labels: {}
  annotations: {}
  probe:
    path: /healthz
    period: 10
    timeout: 2
  extra:
    a: 1
    b: 2
"""


def generate(root: Path) -> Path:
    chart = root / "big"
    shutil.copytree(WEB, chart)
    values = (chart / "values.yaml").read_text()
    for i in range(COMPONENTS):
        (chart / "templates" / f"c{i}.yaml").write_text(COMPONENT % {"i": i})
        values += VALUES % {"i": i, "port": 8000 + i}
    (chart / "values.yaml").write_text(values)
    return chart


_PATHS = re.compile(r"\.Values((?:\.\w+)+)")


def floor(chart: Path) -> int:
    """Read every template and values file, find the `.Values` paths with a plain regex."""
    found = 0
    for directory, _, files in os.walk(chart):
        for name in files:
            text = (Path(directory) / name).read_text()
            found += len(_PATHS.findall(text))
    return found


def median_ms(fn: Callable[[], object], count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def clear_caches() -> None:
    templates_module._CACHE.clear()
    values_module._CACHE.clear()
    chart_module._DISK.clear()


def in_process(chart: Path, count: int) -> dict[str, float]:
    workspace = Workspace()
    path = (chart / "templates" / "c7.yaml").resolve()
    text = path.read_text()
    line = 8  # replicas: {{ .Values.c7.replicas | default 1 }}
    typing = text.replace(".Values.c7.replicas", ".Values.c7.", 1)
    where_complete = Position(line, typing.splitlines()[line].index(".Values.c7.") + 11)
    where_hover = Position(line, text.splitlines()[line].index("replicas |") + 2)

    def ask_complete(current: str) -> int:
        found = workspace.helm_chart(path, current)
        assert found is not None
        return len(complete(found, path, current, where_complete))

    def ask_hover(current: str) -> object:
        found = workspace.helm_chart(path, current)
        assert found is not None
        return hover(found, path, current, where_hover)

    def cold() -> None:
        clear_caches()
        ask_complete(typing)

    assert ask_complete(typing) == 10, "completion of .Values.c7. keys"
    assert ask_hover(text) is not None
    edits = iter(range(10**9))

    def after_edit() -> None:
        ask_complete(typing + f"# edit {next(edits)}\n")

    return {
        "floor_ms": median_ms(lambda: floor(chart), count),
        "cold_completion_ms": median_ms(cold, max(5, count // 5)),
        "completion_ms": median_ms(lambda: ask_complete(typing), count),
        "hover_ms": median_ms(lambda: ask_hover(text), count),
        "completion_after_edit_ms": median_ms(after_edit, count),
    }


def own_chart(chart: Path, template: Path, count: int) -> dict[str, float]:
    workspace = Workspace()
    text = template.read_text()
    match = re.search(r"\.Values\.\w+\.", text)
    if match is None:
        raise SystemExit(f"{template}: no .Values.a. path to complete after")
    where = LineIndex(text).offset_to_position(match.end())

    def ask(fn: Callable[..., object]) -> object:
        found = workspace.helm_chart(template, text)
        assert found is not None
        return fn(found, template.resolve(), text, where)

    start = time.perf_counter()
    ask(complete)
    cold = (time.perf_counter() - start) * 1000
    return {
        "floor_ms": median_ms(lambda: floor(chart), count),
        "cold_completion_ms": cold,
        "completion_ms": median_ms(lambda: ask(complete), count),
        "hover_ms": median_ms(lambda: ask(hover), count),
    }


def through_server(chart: Path, count: int) -> dict[str, Any] | None:
    lsp = _Lsp([sys.executable, "-m", "ktl_lsp", "--store", str(chart.parent / "s.db")])
    try:
        ident = lsp.send(
            "initialize",
            {"processId": os.getpid(), "rootUri": None, "capabilities": {}},
            request=True,
        )
        if lsp.wait(lambda m: m.get("id") == ident, 60) is None:
            return None
        lsp.send("initialized", {})
        path = chart / "templates" / "c7.yaml"
        uri = path.as_uri()
        text = path.read_text()
        typing = text.replace(".Values.c7.replicas", ".Values.c7.", 1)
        line = 8
        character = typing.splitlines()[line].index(".Values.c7.") + 11
        lsp.send(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": typing}},
        )

        def ask(method: str, at: int) -> tuple[float, dict[str, Any] | None]:
            start = time.perf_counter()
            ident = lsp.send(
                method,
                {"textDocument": {"uri": uri}, "position": {"line": line, "character": at}},
                request=True,
            )
            reply = lsp.wait(lambda m: m.get("id") == ident, 60)
            return time.perf_counter() - start, reply

        first_s, reply = ask("textDocument/completion", character)
        items = ((reply or {}).get("result") or {}).get("items", [])
        completion = statistics.median(
            ask("textDocument/completion", character)[0] for _ in range(count)
        )
        hover_s = statistics.median(
            ask("textDocument/hover", character - 3)[0] for _ in range(count)
        )
        lsp.send(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": 2},
                "contentChanges": [{"text": typing + "# edited\n"}],
            },
        )
        edited_s, _ = ask("textDocument/completion", character)
        return {
            "items": len(items),
            "first_completion_ms": first_s * 1000,
            "completion_ms": completion * 1000,
            "hover_ms": hover_s * 1000,
            "completion_after_edit_ms": edited_s * 1000,
        }
    finally:
        lsp.proc.kill()
        lsp.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--chart", type=Path)
    parser.add_argument("--template", type=Path)
    args = parser.parse_args()
    if args.chart is not None:
        chart = args.chart.resolve()
        template = chart / (args.template or next((chart / "templates").glob("*.yaml")))
        templates = sum(len(files) for _, _, files in os.walk(chart / "templates"))
        print(f"chart: {chart.name}, {templates} files in templates/")
        for name, value in own_chart(chart, template, args.n).items():
            print(f"  in process  {name:28} {value:8.2f} ms")
        return
    with tempfile.TemporaryDirectory() as tmp:
        chart = generate(Path(tmp))
        templates = len(os.listdir(chart / "templates"))
        lines = sum(1 for _ in (chart / "values.yaml").open())
        print(f"chart: {templates} templates, values.yaml {lines} lines")
        for name, value in in_process(chart, args.n).items():
            print(f"  in process  {name:28} {value:8.2f} ms")
        served = through_server(chart, args.n)
        if served is None:
            print("  the server did not start")
            return
        for name, value in served.items():
            unit = "" if name == "items" else " ms"
            print(f"  server      {name:28} {value:8.2f}{unit}")


if __name__ == "__main__":
    main()
