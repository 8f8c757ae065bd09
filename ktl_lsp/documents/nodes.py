"""PyYAML's node classes (and its constructor), imported after the package itself.

``from yaml.nodes import X`` takes the submodule's import lock before the package's. A thread
doing that while another thread runs ``import yaml`` (checks and renders import off the event
loop) can deadlock, which Python reports as ``_DeadlockError``. Importing the package first,
here, keeps every import of PyYAML in the same order.
"""

from __future__ import annotations

import yaml  # noqa: F401  (the package before its submodule: see above)
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "ConstructorError",
    "MappingNode",
    "Node",
    "SafeConstructor",
    "ScalarNode",
    "SequenceNode",
]
