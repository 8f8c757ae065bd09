"""Rendering charts without putting the server at risk: Helm's Go SDK in a worker process, or a
`helm` binary, each render under a time and a size limit.

`Renderer.render` (async, for the language server) and `Renderer.render_sync` (the CLI) take a
`RenderRequest` and give a `Rendered`; neither raises for anything a chart or Helm does.

- **library** (the `helm` extra, `helm_python`): a long-lived worker (`python -m
  ktl_lsp.helm.worker`), started on first need and again after it died. Requests and answers
  are JSON lines on its stdin/stdout: `{"id", "op": "render", "chart", "values": [{"path",
  "text"}], "set": [[key, value]], "release", "namespace", "kube_version", "max_bytes",
  "include_crds"}` ->
  `{"id", "manifests", "too_big"?}` or `{"id", "error": {"kind", "message", "file"?}}`. A render
  that outlives its time limit gets the worker killed (the next render starts a new one) and
  comes back `cut_short`. `{"id", "op": "lint", "chart", "namespace", "kube_version"}` ->
  `{"id", "messages": [{"severity", "path", "error"}]}`: `helm lint`'s findings.
- **binary**: `helm template` on PATH, killed at the time limit.

Unsaved editor buffers are rendered as the editor shows them: the chart is rendered from a
temporary copy made of links to its files with the buffers written over them (`overlay_chart`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Literal

from ktl_lsp.helm.model import LintMessage, Rendered, RenderError, RenderRequest, TemplateSpot
from ktl_lsp.helm.wire import dumps_line, loads
from ktl_lsp.helm.worker import kube_version_option

Mode = Literal["auto", "library", "binary", "none"]
Backend = Literal["library", "binary"]

DEFAULT_TIMEOUT_S = 10.0
#: Rendered text kept per render; past it the render is `cut_short` (whole manifests kept).
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
#: Time for the worker to start and load the library.
START_TIMEOUT_S = 30.0
MAX_MESSAGE = 1000
ENABLE_HINT = (
    "Helm templates are not rendered: install the helm extra (pip install 'ktl-lsp[helm]') "
    "or put a helm binary on PATH (setting helm.renderer)"
)


def library_installed() -> bool:
    """helm_python can be imported (looked up only: the library loads in the worker)."""
    return importlib.util.find_spec("helm_python") is not None


class _Dead(Exception):
    """The worker is gone (it crashed, or was killed)."""


class _TimedOut(Exception):
    pass


class LibraryUnavailable(Exception):
    """The worker could not load helm_python."""


class _WorkerProcess:
    """One incarnation of `python -m ktl_lsp.helm.worker`."""

    def __init__(self) -> None:
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ktl_lsp.helm.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            start_new_session=True,  # a Ctrl-C in the server's terminal is not for the worker
        )
        self.next_id = 0
        self._expired = False
        hello = self._next(time.monotonic() + START_TIMEOUT_S)
        if not hello.get("ready"):
            self.kill()
            raise LibraryUnavailable(str(hello.get("error") or "the worker did not start"))
        self.helm_version = str(hello.get("helm") or "")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _expire(self) -> None:
        self._expired = True
        with contextlib.suppress(OSError):
            self.proc.kill()

    def _next(self, deadline: float) -> dict[str, Any]:
        """The worker's next answer; a watchdog kills the worker at `deadline` (the read then
        ends), so the answer is read on this thread, with no hand-over between threads."""
        stdout = self.proc.stdout
        assert stdout is not None
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            line = stdout.readline()
        finally:
            watchdog.cancel()
        if not line:
            if self._expired:
                raise _TimedOut
            raise _Dead(self._last_words())
        answer = loads(line)
        return answer if isinstance(answer, dict) else {}

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.next_id += 1
        request_id = self.next_id
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(dumps_line({**request, "id": request_id}))
            stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _Dead(self._last_words()) from exc
        deadline = time.monotonic() + timeout
        while True:
            answer = self._next(deadline)
            if answer.get("id") == request_id:
                return answer

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _last_words(self) -> str:
        code = self.proc.wait(5) if self.proc.poll() is None else self.proc.returncode
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - 2000))
        tail = self.stderr.read().decode("utf-8", "replace").strip()
        lines = tail.splitlines()[-5:]
        return f"exit {code}" + (": " + " ".join(lines) if lines else "")

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class Renderer:
    """Renders charts in the backend `mode` asks for ("auto": the library, else a helm binary)."""

    def __init__(
        self,
        mode: Mode = "auto",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.mode = mode
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # one render at a time: one worker, one mirror per chart
        self._mirrors = Mirrors()
        self._worker: _WorkerProcess | None = None
        self._library_error: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.starts = 0
        """How many worker processes were started (the first, and one after each death)."""

    # -- which backend ---------------------------------------------------------------------
    def backend(self) -> Backend | None:
        if self.mode in ("auto", "library") and library_installed() and not self._library_error:
            return "library"
        if self.mode in ("auto", "binary") and shutil.which("helm"):
            return "binary"
        return None

    def available(self) -> bool:
        return self.backend() is not None

    def unavailable_reason(self) -> str:
        """What is missing, and what would enable rendering (for the one message users see)."""
        if self.mode == "none":
            return 'Helm templates are not rendered (setting helm.renderer is "none")'
        if self.mode == "library":
            why = self._library_error or "helm_python is not installed"
            return f"Helm templates are not rendered: {why} (pip install 'ktl-lsp[helm]')"
        if self.mode == "binary":
            return "Helm templates are not rendered: no helm binary on PATH"
        return ENABLE_HINT

    @property
    def worker_pid(self) -> int | None:
        worker = self._worker
        return worker.pid if worker is not None and worker.alive() else None

    # -- rendering --------------------------------------------------------------------------
    async def render(
        self, request: RenderRequest, overlay: Mapping[Path, str] | None = None
    ) -> Rendered:
        """`render_sync` on a thread of the renderer's own (the event loop never waits for Helm,
        and renders never take the threads other work uses)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ktl-helm")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.render_sync, request, overlay)

    async def lint(
        self,
        chart_dir: Path,
        overlay: Mapping[Path, str] | None = None,
        kube_version: str | None = None,
    ) -> list[LintMessage] | None:
        """`lint_sync` on the renderer's thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ktl-helm")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self.lint_sync, chart_dir, overlay, kube_version
        )

    def render_sync(
        self, request: RenderRequest, overlay: Mapping[Path, str] | None = None
    ) -> Rendered:
        """Renders `request` with `overlay` (path -> text: editor buffers) over the files."""
        texts = dict(overlay or {})
        backend = self.backend()
        if backend is None:
            return Rendered(request, error=RenderError(self.unavailable_reason()))
        values = []
        for path in request.values_files:
            text = texts.get(path)
            if text is None:
                try:
                    text = path.read_text("utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    error = RenderError(f"cannot read values file {path}: {exc}", values_file=path)
                    return Rendered(request, error=error)
            values.append((path, text))
        with self._lock:
            chart = self._mirrors.chart(request.chart_dir, texts)
            if backend == "library":
                try:
                    answer = self._call_worker(request, chart, values)
                except LibraryUnavailable:
                    answer = None
            else:
                answer = self._helm_template(request, chart, values)
        if answer is None:
            return self.render_sync(request, overlay)  # the library failed: the next backend
        return self._rendered(request, answer, texts)

    def _call_worker(
        self, request: RenderRequest, chart: Path, values: list[tuple[Path, str]]
    ) -> dict[str, Any]:
        message = {
            "op": "render",
            "chart": str(chart),
            "values": [{"path": str(p), "text": t} for p, t in values],
            "set": [list(pair) for pair in request.set_values],
            "release": request.release,
            "namespace": request.namespace,
            "kube_version": request.kube_version,
            "max_bytes": self.max_bytes,
            "include_crds": request.include_crds,
        }
        return self._ask(message)

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        """The worker's answer to `message` (a worker started if none runs), or `timeout`, or
        a `crash` error; the caller holds the lock."""
        worker = self._worker
        if worker is None or not worker.alive():
            if worker is not None:
                worker.kill()
            try:
                worker = self._worker = _WorkerProcess()
            except LibraryUnavailable as exc:
                self._worker = None
                self._library_error = str(exc)
                raise
            except _TimedOut:
                self._worker = None
                return {"timeout": START_TIMEOUT_S}
            self.starts += 1
        try:
            return worker.call(message, self.timeout_s)
        except _TimedOut:
            worker.kill()
            self._worker = None
            return {"timeout": self.timeout_s}
        except _Dead as exc:
            worker.kill()
            self._worker = None
            return {"error": {"kind": "crash", "message": f"the render worker died ({exc})"}}

    def lint_sync(
        self,
        chart_dir: Path,
        overlay: Mapping[Path, str] | None = None,
        kube_version: str | None = None,
    ) -> list[LintMessage] | None:
        """`helm lint` of the chart (with `overlay` over its files); None when it could not run
        (no renderer, a timeout, a crash): lint findings are advice, a failure is not one."""
        backend = self.backend()
        if backend is None:
            return None
        with self._lock:
            chart = self._mirrors.chart(chart_dir, dict(overlay or {}))
            if backend == "library":
                message = {"op": "lint", "chart": str(chart), "kube_version": kube_version}
                try:
                    answer = self._ask(message)
                except LibraryUnavailable:
                    return self.lint_sync(chart_dir, overlay, kube_version)
            else:
                answer = self._helm_lint(chart, kube_version)
        if "messages" not in answer:
            return None
        return [
            LintMessage(int(m.get("severity") or 0), str(m.get("path") or ""), str(m["error"]))
            for m in answer["messages"]
            if isinstance(m, dict) and m.get("error")
        ]

    def _helm_lint(self, chart: Path, kube_version: str | None) -> dict[str, Any]:
        """`helm lint`'s `[LEVEL] path: message` lines, as the library answers them."""
        args = [shutil.which("helm") or "helm", "lint", str(chart), "--skip-schema-validation"]
        option = kube_version_option(kube_version)
        if option:
            args += ["--kube-version", option]
        try:
            done = subprocess.run(
                args, capture_output=True, timeout=self.timeout_s, stdin=subprocess.DEVNULL
            )
        except (subprocess.TimeoutExpired, OSError):
            return {}
        levels = {"INFO": 1, "WARNING": 2, "ERROR": 3}
        messages = []
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            match = re.match(r"\[(INFO|WARNING|ERROR)\] ([^:]*): (.*)", line.strip())
            if match:
                level, path, text = match.groups()
                messages.append({"severity": levels[level], "path": path, "error": text})
        return {"messages": messages}

    def _helm_template(
        self,
        request: RenderRequest,
        chart: Path,
        values: list[tuple[Path, str]],
    ) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="ktl-helm-values-") as tmp:
            return self._run_helm_template(request, chart, values, Path(tmp))

    def _run_helm_template(
        self,
        request: RenderRequest,
        chart: Path,
        values: list[tuple[Path, str]],
        tmp: Path,
    ) -> dict[str, Any]:
        helm = shutil.which("helm") or "helm"
        args = [helm, "template", request.release, str(chart), "--namespace", request.namespace]
        for i, (path, text) in enumerate(values):
            copy = tmp / f"values-{i}{path.suffix or '.yaml'}"
            copy.write_text(text, "utf-8")
            args += ["--values", str(copy)]
        for key, value in request.set_values:
            args += ["--set", f"{key}={value}"]
        kube_version = kube_version_option(request.kube_version)
        if kube_version:
            args += ["--kube-version", kube_version]
        if request.include_crds:
            args.append("--include-crds")
        try:
            done = subprocess.run(
                args, capture_output=True, timeout=self.timeout_s, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            return {"timeout": self.timeout_s}
        except OSError as exc:
            return {"error": {"kind": "crash", "message": f"cannot run helm: {exc}"}}
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", "replace").splitlines()
            text = "\n".join(line for line in lines if not line.startswith("WARNING"))
            return {"error": {"kind": "render", "message": text.removeprefix("Error: ").strip()}}
        manifests = split_template_output(done.stdout.decode("utf-8", "replace"))
        total = sum(len(t) for t in manifests.values())
        if total > self.max_bytes:
            return {"manifests": {}, "too_big": True}
        return {"manifests": manifests}

    def _rendered(
        self, request: RenderRequest, answer: dict[str, Any], texts: Mapping[Path, str]
    ) -> Rendered:
        if "timeout" in answer:
            message = (
                f"rendering stopped after {answer['timeout']:g} s (setting helm.renderTimeout)"
            )
            return Rendered(request, error=RenderError(message), cut_short=True)
        manifests = {  # NOTES.txt is shown after an install, never applied (nor templated)
            _relative_key(k): v
            for k, v in (answer.get("manifests") or {}).items()
            if k and not k.endswith("/NOTES.txt")
        }
        if answer.get("too_big"):
            size = self.max_bytes // (1024 * 1024)
            message = f"rendered output larger than {size} MiB; only part of it is checked"
            return Rendered(request, manifests, RenderError(message), cut_short=True)
        error = answer.get("error")
        if not isinstance(error, dict):
            return Rendered(request, manifests)
        kind = error.get("kind")
        text = str(error.get("message") or "render failed")
        if kind == "values":
            file = error.get("file")
            return Rendered(
                request,
                error=RenderError(
                    _clip(" ".join(text.split())), values_file=Path(file) if file else None
                ),
            )
        if kind in ("render", "load"):
            return Rendered(request, error=self._render_error(request, text, texts))
        return Rendered(request, error=RenderError(_clip(text)))

    def _render_error(
        self, request: RenderRequest, text: str, texts: Mapping[Path, str]
    ) -> RenderError:
        message, spots = parse_helm_error(text)
        placed = [_in_code_points(s, request.chart_dir, texts) for s in spots]
        values_file = request.values_files[-1] if request.values_files else None
        if not placed:
            return RenderError(message, values_file=values_file)
        last = placed[-1]
        return RenderError(
            message,
            template=last.template,
            line=last.line,
            column=last.column,
            values_file=values_file,
            via=tuple(placed[:-1]),
        )

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.kill()
                self._worker = None
            self._mirrors.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


# -- Helm's words ---------------------------------------------------------------------------

#: `mychart/templates/svc.yaml:8:28` (and `mychart/charts/sub/templates/x.yaml:3`).
_SPOT = re.compile(
    r"(?P<tpl>[^\s:()<>\"]+/(?:templates|charts)/[^\s:()<>\"]+):(?P<line>\d+)(?::(?P<col>\d+))?"
)


def parse_helm_error(text: str) -> tuple[str, list[TemplateSpot]]:
    """Helm's error as (message, template spots outermost first, chart-name prefix removed).

    Formats: `execution error at (c/templates/x.yaml:5:10): msg` (`required`, `fail`), `parse
    error at (c/templates/x.yaml:2): msg`, `template: c/templates/x.yaml:6:15: executing ...`
    (one line, Helm 3), and Helm 4's one line per call:
    `c/templates/x.yaml:2:6\\n  executing ... error calling include:\\nc/templates/_h.tpl:2:13...`.
    Lines are 1-based in Helm's text and 0-based in the spots; columns stay Helm's bytes."""
    spots: list[TemplateSpot] = []
    end = 0
    before = ""  # the text between the last two places: a message that ends in a place
    for match in _SPOT.finditer(text):
        before = text[end : match.start()]
        column = match.group("col")
        spot = TemplateSpot(
            _relative_key(match.group("tpl")),
            max(0, int(match.group("line")) - 1),
            int(column) if column is not None else None,
        )
        if spot not in spots:  # an include that recurses names the same call a thousand times
            spots.append(spot)
        end = match.end()
    tail = " ".join(text[end:].split()) if spots else " ".join(text.split())
    tail = tail.lstrip("):").strip()
    if not tail and spots:  # "unclosed action started at c/templates/x.yaml:1"
        lead = " ".join(before.split()).lstrip("):").strip()
        if lead:
            tail = f"{lead} {spots[-1].template}:{spots[-1].line + 1}"
    tail = re.sub(r'^executing "[^"]*" ', "", tail)
    return _clip(tail or "render failed"), spots


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _relative_key(key: str) -> str:
    """Helm's `mychart/templates/x.yaml` -> `templates/x.yaml` (relative to the chart dir)."""
    return key.split("/", 1)[1] if "/" in key else key


def _in_code_points(spot: TemplateSpot, chart_dir: Path, texts: Mapping[Path, str]) -> TemplateSpot:
    """Helm counts a column in bytes; the spot counts code points of the template's line."""
    if not spot.column:
        return spot
    path = chart_dir / spot.template
    text = texts.get(path)
    if text is None:
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return spot
    lines = text.splitlines()
    if spot.line >= len(lines):
        return spot
    encoded = lines[spot.line].encode("utf-8")[: spot.column]
    return TemplateSpot(spot.template, spot.line, len(encoded.decode("utf-8", "ignore")))


def split_template_output(text: str) -> dict[str, str]:
    """`helm template`'s stream (`---` / `# Source: c/templates/x.yaml` / text) by template."""
    out: dict[str, list[str]] = {}
    current: str | None = None
    for block in re.split(r"^---[ \t]*$\n?", text, flags=re.MULTILINE):
        lines = block.split("\n", 1)
        if lines and lines[0].startswith("# Source: "):
            current = lines[0].removeprefix("# Source: ").strip()
            body = lines[1] if len(lines) > 1 else ""
            out.setdefault(current, []).append(body)
        elif current is not None and block.strip():
            out[current].append(block)
    return {k: "---\n".join(v) for k, v in out.items()}


# -- the editor's buffers over the chart's files ---------------------------------------------


class Mirrors:
    """Per chart, a directory of symbolic links to its files (Helm follows them) with the
    editor's unsaved texts written in their place; kept between renders and brought up to date
    before each, so an edit costs a write, not a copy of the chart."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self._dirs: dict[Path, Path] = {}
        self._written: dict[Path, dict[Path, str]] = {}

    def chart(self, chart_dir: Path, texts: Mapping[Path, str]) -> Path:
        """The directory to render `chart_dir` from: itself, or when some text of `texts` is one
        of its files or a schema of it `$ref`s an outside document, its mirror with those texts
        in place and those schemas left out (Helm would fetch the reference over the network
        while validating; the checkers validate values files against it offline)."""
        inside = {
            p.relative_to(chart_dir): t for p, t in texts.items() if p.is_relative_to(chart_dir)
        }
        hidden = _remote_schemas(chart_dir, inside)
        if not inside and not hidden:
            return chart_dir
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="ktl-helm-"))
            # Gone at exit even when nobody calls close() (a server that is simply stopped).
            weakref.finalize(self, shutil.rmtree, str(self.root), True)
        target = self._dirs.get(chart_dir)
        if target is None:
            target = self.root / str(len(self._dirs)) / chart_dir.name
            self._dirs[chart_dir] = target
        written = self._written.setdefault(chart_dir, {})
        needed = {
            parent for rel in [*inside, *hidden] for parent in rel.parents if parent != Path(".")
        }
        _sync(chart_dir, target, Path("."), inside, needed, written, hidden)
        return target

    def close(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
        self._dirs.clear()
        self._written.clear()


SCHEMA_FILE = "values.schema.json"
_REMOTE_REF = re.compile(r'"\$ref"\s*:\s*"(?!#)')


def _remote_schemas(chart_dir: Path, inside: Mapping[Path, str]) -> set[Path]:
    """The `values.schema.json` files (the chart's, its directory subcharts') that `$ref` a
    document outside themselves: Helm would fetch it while rendering, so the mirror leaves them
    out (values files are checked against them offline, rule helm-values-schema)."""
    out: set[Path] = set()
    pending = [Path(".")]
    while pending and len(out) < 100:
        rel = pending.pop()
        schema = rel / SCHEMA_FILE
        text = inside.get(schema)
        if text is None:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                text = (chart_dir / schema).read_text("utf-8")
        if text is not None and _REMOTE_REF.search(text):
            out.add(schema)
        with contextlib.suppress(OSError):
            pending += [
                rel / "charts" / e.name
                for e in os.scandir(chart_dir / rel / "charts")
                if e.is_dir() and len(pending) < 1000
            ]
    return out


def _sync(
    src: Path,
    dst: Path,
    rel: Path,
    inside: Mapping[Path, str],
    needed: set[Path],
    written: dict[Path, str],
    hidden: AbstractSet[Path] = frozenset(),
) -> None:
    """Makes `dst` mirror `src`: texts of `inside` as files, the directories leading to them as
    directories, the files of `hidden` absent, everything else a link to the original."""
    dst.mkdir(parents=True, exist_ok=True)
    names: set[str] = set()
    with contextlib.suppress(OSError):
        names = {e.name for e in os.scandir(src)}
    names |= {r.name for r in [*inside, *needed] if r.parent == rel}
    names -= {r.name for r in hidden if r.parent == rel}
    existing = {e.name: e for e in os.scandir(dst)}
    for name, old in existing.items():
        if name not in names:
            _remove(old)
            written.pop(rel / name, None)
    for name in names:
        r = rel / name
        entry: os.DirEntry[str] | None = existing.get(name)
        is_link = entry is not None and entry.is_symlink()
        is_dir = entry is not None and not is_link and entry.is_dir(follow_symlinks=False)
        if r in inside:
            if entry is not None and (is_link or is_dir):
                _remove(entry)
                entry = None
            if entry is None or written.get(r) != inside[r]:
                (dst / name).write_text(inside[r], "utf-8")
                written[r] = inside[r]
        elif r in needed:
            if entry is not None and not is_dir:
                _remove(entry)
            _sync(src / name, dst / name, r, inside, needed, written, hidden)
        elif not is_link:
            if entry is not None:
                _remove(entry)
            written.pop(r, None)
            _link(src / name, dst / name)


def _remove(entry: os.DirEntry[str]) -> None:
    if entry.is_dir(follow_symlinks=False):
        shutil.rmtree(entry.path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)


def _link(src: Path, dst: Path) -> None:
    try:
        os.symlink(src, dst, target_is_directory=src.is_dir())
    except OSError:  # no symlinks here (Windows without the privilege): copy
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True)
        elif src.exists():
            shutil.copy2(src, dst)
