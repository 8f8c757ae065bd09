"""ktl-lsp: a language server for Kubernetes work, with every run kept as a replayable session."""

__version__ = "0.1.0"

__all__ = ["__version__"]
