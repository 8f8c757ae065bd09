"""Helm charts: each chart re-rendered as its files are edited, render errors at template lines.

When a template, a values file or the Chart.yaml of a chart is opened, edited (at once, edits
during a render coalesced into one more) or saved, every render of the chart (`helm/charts.py`:
its values.yaml, `ci/*-values.yaml`, the ktl stack releases that use it, `helm.valuesFiles`) is made again with
the editor's unsaved buffers, in the renderer's worker (`helm/render.py`), and the findings
(`helm/render_findings.py`) are published with the checkers' through `Checker.set_extra`
(owner "helm-render"). A newer edit of the chart drops what an older render found.

Without a renderer (neither the helm extra nor a helm binary, or `helm.renderer: "none"`),
the first chart file opened gets one `window/showMessage` saying what would enable them.

`ktl.helm.render` renders a chart on request (the "Render" lenses) and answers the manifests.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.uris import from_fs_path, to_fs_path

from ktl_lsp.aio import Coalescer, background
from ktl_lsp.checks.findings import Finding
from ktl_lsp.errors import UserError
from ktl_lsp.lsp.arguments import ArgumentError
from ktl_lsp.lsp.checker import Checker
from ktl_lsp.lsp.feature import Feature, command
from ktl_lsp.lsp.server import KtlServer

OWNER = "helm-render"
MAX_HOVER_LINES = 60
STACK_FILE_NAMES = ("stack.yaml", "stack.yml", "release.yaml", "release.yml")


@dataclass
class HelmRenderArgs:
    uri: str  #: any file of the chart (Chart.yaml, a template, a values file), or its directory
    valuesFiles: list[str] = field(default_factory=list)  #: URIs or paths (relative: the chart)
    set: dict[str, str | int | float | bool] = field(default_factory=dict)
    release: str = "release-name"
    namespace: str = "default"


def _fs_path(uri: str) -> Path | None:
    path = to_fs_path(uri) if "://" in uri else uri
    return Path(path).expanduser() if path else None


def _scalar(value: str | int | float | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def render_answer(rendered: Any, chart_dir: Path) -> dict[str, Any]:
    """`ktl.helm.render`'s answer: manifests by template path, and the error with its place."""
    error = rendered.error
    answer: dict[str, Any] = {
        "chart": str(chart_dir),
        "label": rendered.request.label,
        "manifests": dict(sorted(rendered.manifests.items())),
        "cutShort": rendered.cut_short,
        "error": None,
    }
    if error is not None:
        answer["error"] = {"message": error.message}
        if error.template is not None and error.line is not None:
            target = chart_dir / error.template
            answer["error"].update(
                uri=from_fs_path(str(target)) or target.as_uri(),
                template=error.template,
                line=error.line,
                character=error.column or 0,
            )
    return answer


class HelmCharts(Feature):
    def __init__(self, server: KtlServer, checker: Checker) -> None:
        self.server = server
        self.checker = checker
        self._renderer: Any = None  # helm.render.Renderer, made on first need
        self._timers: dict[Path, asyncio.TimerHandle] = {}
        self._renders = Coalescer(self._guarded, "ktl-helm")
        self._generation: dict[Path, int] = {}
        self._published: dict[Path, set[str]] = {}  # chart -> uris it published findings on
        self._stack_roots: list[Path] | None = None
        self._readers: dict[Path, set[Path]] = {}  # values file outside a chart -> its charts
        self._told = False
        self.last_render: dict[Path, tuple[Any, dict[Path, str]]] = {}
        """Per chart, its last render with the default values (`Rendered`) and the texts it was
        made from (the editor's buffers)."""
        checker.on_edit(self.edited)

    # -- the renderer -----------------------------------------------------------------------
    def renderer(self) -> Any:
        if self._renderer is None:
            from ktl_lsp.helm.render import Renderer

            helm = self.server.settings.helm
            self._renderer = Renderer(helm.renderer, timeout_s=helm.render_timeout)
        return self._renderer

    def _tell_once(self, reason: str) -> None:
        if self._told:
            return
        self._told = True
        self.server.window_show_message(
            lsp.ShowMessageParams(type=lsp.MessageType.Info, message=f"ktl: {reason}")
        )
        self.server.log(f"ktl: {reason}", lsp.MessageType.Info)

    # -- editor events ----------------------------------------------------------------------
    def edited(self, uri: str, event: str) -> None:
        path = _fs_path(uri) if uri.startswith("file:") else None
        if path is None:
            return
        if path.name in STACK_FILE_NAMES and event == "save":
            self._stack_roots = None  # releases may use other charts now
        background(self._locate(path, event), "ktl-helm-locate")

    async def _locate(self, path: Path, event: str) -> None:
        """Schedules the charts the file is part of, or whose renders read it (a stack
        release's values file); a buffer closed unsaved renders from the disk again."""
        from ktl_lsp.helm.charts import chart_root

        path = await asyncio.to_thread(path.resolve)
        chart = await asyncio.to_thread(chart_root, path)
        charts = {chart} if chart is not None else set()
        charts |= self._readers.get(path, set())
        if event == "close":
            charts &= set(self._generation)  # only what was rendered with its buffer
        for found in charts:
            self.schedule(found)

    def schedule(self, chart: Path, delay: float = 0.0) -> None:
        """Renders `chart` after `delay` seconds (at once by default). An edit while a render of
        the chart is under way gives one more render when it ends, of the newest texts: a burst
        of keystrokes is two renders, never a queue (as the checks of other files)."""
        self._generation[chart] = self._generation.get(chart, 0) + 1
        timer = self._timers.pop(chart, None)
        if timer is not None:
            timer.cancel()
        if delay <= 0:
            self._start(chart)
        else:
            self._timers[chart] = asyncio.get_running_loop().call_later(delay, self._start, chart)

    def _start(self, chart: Path) -> None:
        self._timers.pop(chart, None)
        self._renders.request(chart)

    async def _guarded(self, chart: Path) -> None:
        try:
            await self.render_chart(chart)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.server.report_server_error(exc, self)

    # -- rendering a chart ------------------------------------------------------------------
    def overlay(self) -> dict[Path, str]:
        """The editor's open documents: path -> text."""
        out: dict[Path, str] = {}
        for uri, doc in list(self.server.workspace.text_documents.items()):
            path = _fs_path(uri) if uri.startswith("file:") else None
            if path is not None:
                out[path.resolve()] = doc.source
        return out

    async def render_chart(self, chart: Path) -> None:
        from ktl_lsp.helm.lint import lint_findings
        from ktl_lsp.helm.render_findings import chart_findings, chart_plan, merge_findings

        generation = self._generation.get(chart, 0)
        texts = self.overlay()
        renderer = self.renderer()
        version, releases, user_values = await asyncio.to_thread(self._inputs, chart)
        requests, findings = await asyncio.to_thread(
            chart_plan, chart, version, releases, user_values, texts
        )
        for request in requests:
            for values in request.values_files:
                if not values.is_relative_to(chart):
                    self._readers.setdefault(values, set()).add(chart)
        renders = []
        if requests and not renderer.available():
            self._tell_once(renderer.unavailable_reason())
        elif requests:
            for request in requests:
                renders.append(await renderer.render(request, texts))
                if self._generation.get(chart) != generation:
                    return  # edited meanwhile: the newer render publishes
            self.last_render[chart] = (renders[0], texts)
            lint = await renderer.lint(chart, texts, version)
            if self._generation.get(chart) != generation:
                return
            crds = self.checker.workspace.crds
            found = await asyncio.to_thread(
                lambda: chart_findings(chart, renders, version, texts, crds())
            )
            findings = merge_findings(
                findings, found, lint_findings(chart, lint or [], version, texts)
            )
        if self._generation.get(chart) == generation:
            self._publish(chart, findings, texts)

    def _inputs(self, chart: Path) -> tuple[str, list[dict[str, Any]], list[Path]]:
        """(Kubernetes version, stack releases using the chart, picked values files)."""
        from ktl_lsp.helm.charts import find_stack_roots, releases_using

        if self._stack_roots is None:
            self._stack_roots = find_stack_roots(self.checker.folder_roots())
        releases = releases_using(chart, self._stack_roots)
        roots = self.checker.folder_roots()
        picked: list[Path] = []
        for key, files in self.server.settings.helm.values_files.items():
            base = Path(key).expanduser()
            if not base.is_absolute() and roots:
                base = roots[0] / base
            if base.resolve() == chart:
                picked += [(chart / f).resolve() for f in files]
        return self.checker.workspace.k8s_version, releases, picked

    def _publish(
        self, chart: Path, findings: dict[Path, list[Finding]], texts: dict[Path, str]
    ) -> None:
        open_uris = {
            p.resolve(): u for u in self.server.workspace.text_documents if (p := _fs_path(u))
        }
        now: set[str] = set()
        for path, found in findings.items():
            uri = open_uris.get(path) or from_fs_path(str(path)) or path.as_uri()
            now.add(uri)
            self.checker.set_extra(uri, OWNER, found, texts.get(path) or _read(path))
        for uri in self._published.get(chart, set()) - now:
            self.checker.set_extra(uri, OWNER, [], "")
        self._published[chart] = now

    # -- the command ------------------------------------------------------------------------
    @command("ktl.helm.render")
    async def render(self, args: HelmRenderArgs) -> dict[str, Any]:
        chart, rendered = await self.render_for(args)
        return render_answer(rendered, chart)

    async def render_for(self, args: HelmRenderArgs, include_crds: bool = False) -> Any:
        """(chart directory, `Rendered`) of the chart `args.uri` is part of, with the editor's
        buffers; `UserError` when nothing can render it."""
        from ktl_lsp.helm.model import RenderRequest

        chart, values = await asyncio.to_thread(self._chart_and_values, args)
        renderer = self.renderer()
        if not renderer.available():
            raise UserError(renderer.unavailable_reason())
        version = await asyncio.to_thread(lambda: self.checker.workspace.k8s_version)
        label = ", ".join(v.name for v in values) or "values.yaml"
        request = RenderRequest(
            chart,
            tuple(values),
            tuple((k, _scalar(v)) for k, v in args.set.items()),
            args.release,
            args.namespace,
            version,
            label,
            include_crds,
        )
        return chart, await renderer.render(request, self.overlay())

    def rendered_markdown(self, path: Path, text: str, line: int) -> str | None:
        """Hover text for a template line: what it rendered to in the chart's last render with
        the default values; None when the line wrote nothing, or the template changed since."""
        from ktl_lsp.helm.charts import chart_root
        from ktl_lsp.helm.rendered_lines import rendered_lines

        path = path.resolve()
        chart = chart_root(path)
        last = self.last_render.get(chart) if chart is not None else None
        if chart is None or last is None:
            return None
        rendered, texts = last
        if (texts.get(path) if path in texts else _read(path)) != text:
            return None  # a render of the newer text is on its way
        key = path.relative_to(chart).as_posix()
        out = rendered.manifests.get(key)
        if not out:
            return None
        lines = rendered_lines(text, out, line)
        if not lines:
            return None
        if len(lines) > MAX_HOVER_LINES:
            lines = [*lines[:MAX_HOVER_LINES], f"# … {len(lines) - MAX_HOVER_LINES} more lines"]
        body = "\n".join(lines)
        return f"Rendered ({rendered.request.label}):\n\n```yaml\n{body}\n```"

    @staticmethod
    def chart_of(uri: str) -> Path | None:
        """The chart a file or directory belongs to, when it is the chart's own (Chart.yaml, a
        template, a values file; not a plain manifest of its `crds/`)."""
        from ktl_lsp.helm.charts import chart_root

        path = _fs_path(uri) if uri.startswith("file:") or "://" not in uri else None
        if path is None or not path.is_absolute():
            return None
        path = path.resolve()
        chart = chart_root(path)
        if chart is None or path.is_relative_to(chart / "crds"):
            return None
        return chart

    def _chart_and_values(self, args: HelmRenderArgs) -> tuple[Path, list[Path]]:
        from ktl_lsp.helm.charts import chart_root

        path = _fs_path(args.uri)
        if path is None:
            raise ArgumentError(f"field 'uri': not a file: {args.uri}")
        if not path.is_absolute():
            roots = self.checker.folder_roots()
            path = (roots[0] if roots else Path(os.getcwd())) / path
        chart = chart_root(path.resolve())
        if chart is None:
            raise UserError(f"{path} is not in a Helm chart (no Chart.yaml above it)")
        values = []
        for item in args.valuesFiles:
            value = _fs_path(item)
            if value is None:
                raise ArgumentError(f"field 'valuesFiles': not a file: {item}")
            values.append((chart / value).resolve())
        return chart, values


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
