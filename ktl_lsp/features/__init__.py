"""LSP features: one module each, each set up through ``setup(server)``."""
