"""The ``ktl-lsp`` command: one module per subcommand, assembled in :mod:`ktl_lsp.cli.main`."""

from ktl_lsp.cli.main import main

__all__ = ["main"]
