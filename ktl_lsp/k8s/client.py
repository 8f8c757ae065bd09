"""Cluster access: kubeconfig discovery, contexts, and one lazily built client per context.

Kubeconfig files are found the way kubectl finds them: the ``KUBECONFIG`` list (first file that
sets a value wins), else ``~/.kube/config``, else the in-cluster service account. The official
``kubernetes`` client (its asyncio flavour, ``kubernetes.aio``) does the authentication (tokens,
client certificates, exec plugins) and the transport; it is imported on first use so the
language server starts fast.

``Cluster.request`` is the one way to call the API: it counts requests, reads the ``Status`` body
of an error into an ``ApiError`` and turns transport failures into ``Unreachable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ktl_lsp.aio import import_off_loop
from ktl_lsp.k8s.errors import ApiError, ConfigError, K8sError, Unreachable, api_error

log = logging.getLogger(__name__)

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER = "in-cluster"
REQUEST_TIMEOUT_S = 30.0
#: Answers bigger than this are JSON-decoded in a worker thread (~5 ms of decoding).
DECODE_OFF_LOOP_BYTES = 256 * 1024


@dataclass(frozen=True)
class ContextInfo:
    name: str
    cluster: str
    namespace: str | None = None
    user: str | None = None
    #: The cluster's API server URL, as the kubeconfig says (sessions record it).
    server: str | None = None

    def to_lsp(self) -> dict[str, Any]:
        return {"name": self.name, "cluster": self.cluster, "namespace": self.namespace}


@dataclass(frozen=True)
class KubeConfig:
    """The merged view of the kubeconfig files (or the in-cluster account)."""

    files: tuple[str, ...]
    current: str | None
    contexts: tuple[ContextInfo, ...]
    in_cluster: bool = False

    def context(self, name: str | None) -> ContextInfo:
        wanted = name or self.current
        if not wanted:
            raise ConfigError(
                "no current context in the kubeconfig; pick one with ktl.k8s.contexts "
                "and pass 'context'"
            )
        for ctx in self.contexts:
            if ctx.name == wanted:
                return ctx
        names = ", ".join(c.name for c in self.contexts) or "none"
        raise ConfigError(f'context "{wanted}" is not in the kubeconfig (contexts: {names})')


def kubeconfig_files(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    listed = env.get("KUBECONFIG")
    if listed:
        return [p for p in (os.path.expanduser(x) for x in listed.split(os.pathsep)) if p]
    default = Path(env.get("HOME") or Path.home()) / ".kube" / "config"
    return [str(default)]


def in_cluster_available(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT / "token").is_file()


def load_kubeconfig(environ: Mapping[str, str] | None = None) -> KubeConfig:
    """Reads and merges the kubeconfig files (first one to set a name or the context wins).

    Blocking (a thread's work); YAML is imported here, not at server start."""
    import yaml

    files = [f for f in kubeconfig_files(environ) if os.path.isfile(f)]
    if not files:
        if in_cluster_available(environ):
            ns_file = SERVICE_ACCOUNT / "namespace"
            ns = ns_file.read_text().strip() if ns_file.is_file() else None
            env = os.environ if environ is None else environ
            host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
            shown = f"[{host}]" if host and ":" in host else host
            server = f"https://{shown}:{port or 443}" if host else None
            ctx = ContextInfo(IN_CLUSTER, IN_CLUSTER, ns, server=server)
            return KubeConfig((), IN_CLUSTER, (ctx,), in_cluster=True)
        where = os.pathsep.join(kubeconfig_files(environ))
        raise ConfigError(
            f"no kubeconfig found (looked at {where}) and not running inside a cluster; "
            "set KUBECONFIG or create ~/.kube/config"
        )
    current: str | None = None
    contexts: dict[str, ContextInfo] = {}
    servers: dict[str, str] = {}
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"kubeconfig {path} is not a mapping")
        if current is None and data.get("current-context"):
            current = str(data["current-context"])
        for item in data.get("clusters") or []:
            found = item.get("cluster") if isinstance(item, dict) else None
            if isinstance(found, dict) and item.get("name") and found.get("server"):
                servers.setdefault(str(item["name"]), str(found["server"]))
        for item in data.get("contexts") or []:
            if not isinstance(item, dict) or not item.get("name"):
                continue
            name = str(item["name"])
            found = item.get("context")
            body: dict[str, Any] = found if isinstance(found, dict) else {}
            contexts.setdefault(
                name,
                ContextInfo(
                    name,
                    str(body.get("cluster") or ""),
                    str(body["namespace"]) if body.get("namespace") else None,
                    str(body["user"]) if body.get("user") else None,
                ),
            )
    with_servers = (replace(c, server=servers.get(c.cluster)) for c in contexts.values())
    return KubeConfig(tuple(files), current, tuple(with_servers))


@dataclass(frozen=True)
class Resource:
    """A kind the cluster serves, from discovery."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        return base


Query = Sequence[tuple[str, Any]]


class Cluster:
    """One context's connection; the client is built on the first request."""

    def __init__(self, config: KubeConfig, context: str | None = None) -> None:
        self.config = config
        self.context = config.context(context)
        self.requests = 0
        self._api: Any = None
        self._lock = asyncio.Lock()
        self._discovered: dict[str, dict[str, Resource] | None] = {}
        self._users = 0
        self.host = ""

    @property
    def name(self) -> str:
        return self.context.name

    @property
    def default_namespace(self) -> str:
        return self.context.namespace or "default"

    async def _client(self) -> Any:
        async with self._lock:
            if self._api is None:
                self._api = await self._build()
            return self._api

    async def _build(self) -> Any:
        await import_off_loop(
            "kubernetes.aio.client",
            "kubernetes.aio.config.kube_config",
            "kubernetes.aio.config.incluster_config",
        )
        from kubernetes.aio.client import ApiClient, Configuration
        from kubernetes.aio.config.config_exception import ConfigException

        configuration = Configuration()
        try:
            if self.config.in_cluster:
                from kubernetes.aio.config.incluster_config import load_incluster_config

                load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            else:
                from kubernetes.aio.config.kube_config import KubeConfigLoader, KubeConfigMerger

                merger = await asyncio.to_thread(
                    KubeConfigMerger, os.pathsep.join(self.config.files)
                )
                loader = KubeConfigLoader(  # type: ignore[no-untyped-call]
                    config_dict=merger.config,
                    active_context=self.context.name,
                    config_base_path=None,
                )
                await loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
        except ConfigException as exc:
            raise ConfigError(f"context {self.context.name}: {exc}") from exc
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"context {self.context.name}: cannot load credentials: {exc}"
            ) from exc
        configuration.retries = None  # we decide what to retry (watches and log follows resume)
        self.host = str(configuration.host)
        return ApiClient(configuration=configuration)

    @property
    def idle(self) -> bool:
        return self._users == 0

    @contextlib.asynccontextmanager
    async def using(self) -> AsyncIterator[Cluster]:
        """Holds the connection open for one piece of work; the last user closes it, so an
        idle server keeps no sockets (the discovery cache stays)."""
        self._users += 1
        try:
            yield self
        finally:
            self._users -= 1
            if self._users == 0:
                await self.close()

    async def close(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            with contextlib.suppress(Exception):
                await api.close()

    # -- calls --------------------------------------------------------------------------------
    async def send(
        self,
        method: str,
        path: str,
        query: Query = (),
        body: Any = None,
        content_type: str | None = None,
        timeout: Any = REQUEST_TIMEOUT_S,
        accept: str = "application/json",
    ) -> Any:
        """Sends one request; returns the raw aiohttp response (status not checked)."""
        import aiohttp

        api = await self._client()
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        self.requests += 1
        try:
            serialized = await api.param_serialize(
                method,
                path,
                query_params=[(k, v) for k, v in query if v is not None],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = await api.call_api(*serialized, _request_timeout=timeout)
        except aiohttp.ClientResponseError as exc:
            raise api_error(exc.status, exc.message) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                detail = "timed out"
            raise Unreachable(
                f"cannot reach the cluster of context {self.name} ({self.host}): {detail}"
            ) from exc
        except K8sError:
            raise
        except Exception as exc:
            status = getattr(exc, "status", None)
            if isinstance(status, int) and status:
                raise api_error(status, getattr(exc, "body", None)) from exc
            raise
        return response.response

    async def request(
        self,
        method: str,
        path: str,
        query: Query = (),
        body: Any = None,
        content_type: str | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
        accept: str = "application/json",
    ) -> tuple[int, Any]:
        """One call with a JSON answer: (status, decoded body); errors raise ``ApiError``."""
        import aiohttp

        response = await self.send(method, path, query, body, content_type, timeout, accept)
        try:
            raw = await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Unreachable(f"the cluster of context {self.name} went away: {exc}") from exc
        finally:
            response.release()
        if not 200 <= response.status < 300:
            raise api_error(response.status, raw, f"{method} {path}")
        try:
            if len(raw) > DECODE_OFF_LOOP_BYTES:
                # A big LIST (a cluster's CRDs are several MB) would stall the editor's loop.
                return response.status, await asyncio.to_thread(json.loads, raw)
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode("utf-8", "replace")

    async def stream(
        self, path: str, query: Query = (), accept: str = "application/json", idle_s: float = 60
    ) -> Any:
        """A GET whose body is read as it arrives (watch, log follow); errors raise."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=idle_s)
        response = await self.send("GET", path, query, timeout=timeout, accept=accept)
        if not 200 <= response.status < 300:
            try:
                raw = await response.read()
            finally:
                response.release()
            raise api_error(response.status, raw, f"GET {path}")
        return response

    async def websocket(
        self, path: str, query: Query, protocols: Sequence[str], heartbeat: float | None = 30.0
    ) -> Any:
        """Opens a channel websocket (exec, port-forward) with the context's credentials and TLS.

        The official client builds the URL and the authentication headers and owns the
        connection pool; the upgrade itself asks for our subprotocols so we know which one the
        server chose (v5 adds a close channel). A refused upgrade raises ``ApiError``.
        """
        import aiohttp

        api = await self._client()
        self.requests += 1
        _, url, headers, _, _ = await api.param_serialize(
            "GET",
            path,
            query_params=[(k, v) for k, v in query if v is not None],
            header_params={},
            auth_settings=["BearerToken"],
        )
        rest = api.rest_client
        if rest.pool_manager is None:
            rest.pool_manager = rest._create_pool_manager()
        ws_url = "ws" + url[4:] if url.startswith("http") else url
        try:
            return await rest.pool_manager.ws_connect(
                ws_url,
                protocols=tuple(protocols),
                headers=headers,
                heartbeat=heartbeat,
                max_msg_size=0,
                autoping=True,
            )
        except aiohttp.WSServerHandshakeError as exc:
            # aiohttp keeps no body of a refused upgrade: say what was refused and how.
            parts = path.rstrip("/").split("/")
            what = f"opening the {parts[-1]} stream of pod {parts[-2]}" if len(parts) > 2 else path
            raise api_error(exc.status, None, what) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Unreachable(
                f"cannot reach the cluster of context {self.name} ({self.host}): "
                f"{str(exc) or type(exc).__name__}"
            ) from exc

    # -- discovery ----------------------------------------------------------------------------
    async def _group_version(self, api_version: str, refresh: bool = False) -> dict[str, Resource]:
        if refresh or api_version not in self._discovered:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            try:
                _, data = await self.request("GET", path)
            except ApiError as exc:
                if exc.code != 404:
                    raise
                data = None
            found: dict[str, Resource] = {}
            group, _, version = api_version.rpartition("/")
            for r in (data or {}).get("resources") or []:
                if "/" in str(r.get("name", "")):
                    continue  # subresources
                found[str(r["kind"])] = Resource(
                    group, version, str(r["kind"]), str(r["name"]), bool(r.get("namespaced"))
                )
            self._discovered[api_version] = found
        return self._discovered[api_version] or {}

    def forget(self, api_version: str) -> None:
        """Drops a group version's discovery (its CRD was deleted since it was read)."""
        self._discovered.pop(api_version, None)

    async def resource_for(self, api_version: str, kind: str) -> Resource | None:
        """The served resource of a kind, or None when the cluster does not know it.

        A miss re-reads the group once, so a CRD applied a moment ago is found.
        """
        found = (await self._group_version(api_version)).get(kind)
        if found is None:
            found = (await self._group_version(api_version, refresh=True)).get(kind)
        return found

    async def resource_by_name(self, name: str) -> Resource | None:
        """``deployment``, ``deploy``, ``deployments.apps``: what ``kubectl get X`` accepts."""
        lowered = name.lower()
        for gv in ("v1", "apps/v1", "batch/v1"):
            for res in (await self._group_version(gv)).values():
                if lowered in (res.kind.lower(), res.plural, f"{res.plural}.{res.group}"):
                    return res
        return None


class Clusters:
    """The clusters the server talks to, one per context, rebuilt when the kubeconfig changes."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = environ
        self._by_context: dict[str, Cluster] = {}
        self._stamp: tuple[tuple[str, float], ...] = ()
        self.default_context: str | None = None
        self.default_namespace: str | None = None

    def _files_stamp(self) -> tuple[tuple[str, float], ...]:
        out = []
        for f in kubeconfig_files(self.environ):
            with contextlib.suppress(OSError):
                out.append((f, os.stat(f).st_mtime))
        return tuple(out)

    async def config(self) -> KubeConfig:
        return await asyncio.to_thread(load_kubeconfig, self.environ)

    async def get(self, context: str | None = None) -> Cluster:
        stamp = await asyncio.to_thread(self._files_stamp)
        if stamp != self._stamp:
            old, self._by_context, self._stamp = self._by_context, {}, stamp
            for cluster in old.values():
                if cluster.idle:  # one in use is closed by its last user
                    await cluster.close()
        config = await self.config()
        name = config.context(context or self.default_context).name
        found = self._by_context.get(name)
        if found is None:
            found = self._by_context[name] = Cluster(config, name)
        return found

    async def close(self) -> None:
        for cluster in self._by_context.values():
            await cluster.close()
        self._by_context.clear()
