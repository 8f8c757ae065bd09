"""The server's features, one capability each (``ktl_lsp/lsp/feature.py`` says what one is).

``FEATURES`` is the order they are added in: each after the ones its ``__init__`` names.
"""

from __future__ import annotations

from ktl_lsp.lsp.checker import Checker
from ktl_lsp.lsp.features.approvals import Approvals
from ktl_lsp.lsp.features.cluster_crds import ClusterCrds
from ktl_lsp.lsp.features.cluster_objects import ClusterObjects
from ktl_lsp.lsp.features.code_actions import CodeActions
from ktl_lsp.lsp.features.codelens import CodeLenses
from ktl_lsp.lsp.features.completion import Completions
from ktl_lsp.lsp.features.diagnostics import Diagnostics
from ktl_lsp.lsp.features.helm import HelmCharts
from ktl_lsp.lsp.features.hover import Hovers
from ktl_lsp.lsp.features.k8s import K8sCommands
from ktl_lsp.lsp.features.k8s_browse import K8sBrowse
from ktl_lsp.lsp.features.k8s_context import KubeContext
from ktl_lsp.lsp.features.k8s_drift import K8sDrift
from ktl_lsp.lsp.features.k8s_edit import K8sEdit
from ktl_lsp.lsp.features.k8s_exec import K8sExec
from ktl_lsp.lsp.features.k8s_explorer import ClusterExplorer
from ktl_lsp.lsp.features.lifecycle import Lifecycle
from ktl_lsp.lsp.features.navigation import Navigation
from ktl_lsp.lsp.features.plans import Plans
from ktl_lsp.lsp.features.port_forward import PortForwards
from ktl_lsp.lsp.features.remote import RemoteSessions
from ktl_lsp.lsp.features.replay import Replay
from ktl_lsp.lsp.features.session_host import SessionHost
from ktl_lsp.lsp.features.sessions import Sessions
from ktl_lsp.lsp.features.shells import Shells
from ktl_lsp.lsp.features.stats import Stats
from ktl_lsp.lsp.features.stream import EditorFeed
from ktl_lsp.lsp.features.symbols import DocumentSymbols
from ktl_lsp.lsp.runs import Runs

FEATURES: tuple[type, ...] = (
    Checker,
    Diagnostics,
    Replay,
    HelmCharts,
    Lifecycle,
    EditorFeed,
    SessionHost,
    Runs,
    Approvals,
    RemoteSessions,
    Sessions,
    Shells,
    Stats,
    CodeLenses,
    Hovers,
    Completions,
    DocumentSymbols,
    Navigation,
    CodeActions,
    KubeContext,
    ClusterCrds,
    ClusterObjects,
    K8sCommands,
    K8sBrowse,
    K8sExec,
    ClusterExplorer,
    K8sDrift,
    K8sEdit,
    PortForwards,
    Plans,
)
