from __future__ import annotations

import sys
from pathlib import Path

#: The installed command, started as a user starts it (its entry point included).
KTL_LSP = str(Path(sys.executable).with_name("ktl-lsp"))
