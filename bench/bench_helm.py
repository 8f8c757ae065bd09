"""Helm: render + check of a 40-template chart after an edit of one template, against the same
render made directly with helm_python in this process (the real limit) in the same run.

Three figures, medians of `--edits` edits (each edit changes one template's text):

- **direct**: `helm_python.Chart.load(dir)` + `render()` of the edited chart in this process;
- **pipeline**: what the language server does after the pause that follows typing: the renders
  the chart has (`chart_plan`), each through the worker process with the edited buffer laid over
  the chart (`Renderer.render_sync`), and their findings (`render_findings`);
- **server**: through a real `ktl-lsp` over stdio: from a `didChange` that breaks (or mends) a
  template to the `publishDiagnostics` that shows (or clears) the render error (renders start
  at once and coalesce as other checks do: no fixed pause).

And the cold check of a directory of `--charts` charts (`--chart-templates` templates each):
`ktl-lsp check DIR` in a new process, median of `--cold-runs`, against the same files checked
as plain text with the templates skipped (`ktl-lsp check --helm-renderer none DIR`) in the
same run.

    .venv/bin/python bench/bench_helm.py [--templates 40] [--edits 30] [--charts 6]
        [--chart-templates 15] [--cold-runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lspclient import RawClient

from ktl_lsp.helm.render import Renderer
from ktl_lsp.helm.render_findings import chart_plan, render_findings

HELPERS = """\
{{- define "big.fullname" -}}
{{ .Release.Name }}-{{ .Chart.Name }}
{{- end }}
{{- define "big.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
"""

TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ include "big.fullname" . }}}}-c{i}
  labels:
    {{{{- include "big.labels" . | nindent 4 }}}}
    tier: "{tag}"
spec:
  replicas: {{{{ .Values.replicaCount }}}}
  selector:
    matchLabels:
      {{{{- include "big.labels" . | nindent 6 }}}}
  template:
    metadata:
      labels:
        {{{{- include "big.labels" . | nindent 8 }}}}
    spec:
      containers:
        - name: c{i}
          image: "{{{{ .Values.image.repository }}}}:{{{{ .Values.image.tag }}}}"
          {{{{- with .Values.resources }}}}
          resources:
            {{{{- toYaml . | nindent 12 }}}}
          {{{{- end }}}}
          ports:
            - containerPort: {{{{ add 8000 {i} }}}}
---
apiVersion: v1
kind: Service
metadata:
  name: {{{{ include "big.fullname" . }}}}-c{i}
spec:
  selector:
    {{{{- include "big.labels" . | nindent 4 }}}}
  ports:
    - port: {{{{ add 80 {i} }}}}
"""


def make_chart(root: Path, count: int, name: str = "big") -> Path:
    chart = root / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: {name}\nversion: 0.1.0\nicon: https://example.com/{name}.png\n"
    )
    (chart / "values.yaml").write_text(
        "replicaCount: 2\nimage:\n  repository: nginx\n  tag: '1.27'\n"
        "resources:\n  limits:\n    cpu: 100m\n    memory: 128Mi\n"
    )
    (chart / "templates" / "_helpers.tpl").write_text(HELPERS)
    for i in range(count - 1):
        (chart / "templates" / f"c{i:02}.yaml").write_text(TEMPLATE.format(i=i, tag="a"))
    return chart


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_direct(chart: Path, edits: int) -> float:
    import helm_python

    target = chart / "templates" / "c00.yaml"
    samples = []
    for n in range(edits):
        target.write_text(TEMPLATE.format(i=0, tag=f"d{n}"))
        started = time.perf_counter()
        with helm_python.Chart.load(str(chart)) as loaded:
            out = loaded.render({}, name="release-name", namespace="default", is_install=True)
        samples.append(time.perf_counter() - started)
        assert f'tier: "d{n}"' in out["big/templates/c00.yaml"]
    target.write_text(TEMPLATE.format(i=0, tag="a"))
    return median_ms(samples)


def bench_pipeline(chart: Path, edits: int) -> float:
    renderer = Renderer()
    target = chart / "templates" / "c00.yaml"
    try:
        requests, _ = chart_plan(chart, "1.31")
        renderer.render_sync(requests[0])  # the worker starts once, on first need
        samples = []
        for n in range(edits):
            texts = {target: TEMPLATE.format(i=0, tag=f"p{n}")}
            started = time.perf_counter()
            requests, _ = chart_plan(chart, "1.31", texts=texts)
            renders = [renderer.render_sync(r, texts) for r in requests]
            render_findings(chart, renders, texts)
            samples.append(time.perf_counter() - started)
            assert f'tier: "p{n}"' in renders[0].manifests["templates/c00.yaml"]
        return median_ms(samples)
    finally:
        renderer.close()


class Server:
    def __init__(self, root: Path) -> None:
        self.published: dict[str, list[Any]] = {}
        self.event = threading.Event()
        argv = [sys.executable, "-m", "ktl_lsp", "--store", str(root / "s.db")]
        self.client = RawClient(argv, self._on_notify)
        self.client.request(
            "initialize",
            {
                "processId": None,
                "rootUri": root.as_uri(),
                "capabilities": {},
                "initializationOptions": {"sessionData": False, "gateway": {"enabled": False}},
            },
        )
        self.client.notify("initialized", {})

    def _on_notify(self, method: str, params: Any) -> None:
        if method == "textDocument/publishDiagnostics":
            self.published[params["uri"]] = params["diagnostics"]
            self.event.set()

    def wait(self, uri: str, broken: bool, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = any(d.get("code") == "helm-render" for d in self.published.get(uri, []))
            if found == broken:
                return
            self.event.clear()
            self.event.wait(0.05)
        raise TimeoutError(uri)

    def close(self) -> None:
        self.client.proc.kill()


def bench_server(chart: Path, root: Path, edits: int) -> float:
    server = Server(root)
    target = chart / "templates" / "c00.yaml"
    uri = target.as_uri()
    text = target.read_text()
    try:
        server.client.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}},
        )
        time.sleep(2)  # the folder read and the first render
        samples = []
        for n in range(edits):
            broken = n % 2 == 0
            new = text.replace('tier: "a"', 'tier: "{{ .Values.no.such }}"') if broken else text
            started = time.perf_counter()
            server.client.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": uri, "version": n + 2},
                    "contentChanges": [{"text": new}],
                },
            )
            server.wait(uri, broken)
            samples.append(time.perf_counter() - started)
        return median_ms(samples)
    finally:
        server.close()


def bench_cold_check(root: Path, charts: int, templates: int, runs: int) -> tuple[float, float]:
    """(rendered, templates skipped): medians of `ktl-lsp check DIR`, each in a new process."""
    directory = root / "charts"
    for n in range(charts):
        make_chart(directory, templates, f"app{n}")

    def check(*extra: str) -> float:
        argv = [sys.executable, "-m", "ktl_lsp", "check", *extra, str(directory)]
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
        return elapsed

    rendered, plain = [], []
    for _ in range(runs):  # interleaved: both see the same machine
        rendered.append(check())
        plain.append(check("--helm-renderer", "none"))
    return median_ms(rendered), median_ms(plain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=40)
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--charts", type=int, default=6)
    parser.add_argument("--chart-templates", type=int, default=15)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        chart = make_chart(root, args.templates)
        direct = bench_direct(chart, args.edits)
        pipeline = bench_pipeline(chart, args.edits)
        server = bench_server(chart, root, args.edits)
        cold, plain = bench_cold_check(root, args.charts, args.chart_templates, args.cold_runs)
    print(f"chart: {args.templates} templates; medians of {args.edits} edits of one template")
    print(f"direct helm_python load + render, in process:  {direct:8.1f} ms")
    print(f"ktl-lsp render + check (worker, overlay):      {pipeline:8.1f} ms")
    print(f"  ratio to direct:                             {pipeline / direct:8.2f}x")
    print(f"ktl-lsp server, didChange -> diagnostics:      {server:8.1f} ms")
    print(
        f"cold check of {args.charts} charts ({args.chart_templates} templates each), "
        f"medians of {args.cold_runs} runs"
    )
    print(f"ktl-lsp check DIR (rendered, checked, linted): {cold:8.1f} ms")
    print(f"ktl-lsp check --helm-renderer none DIR:        {plain:8.1f} ms (templates skipped)")
    print(f"  ratio:                                       {cold / plain:8.2f}x")


if __name__ == "__main__":
    main()
