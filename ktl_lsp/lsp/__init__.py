"""The language server: the server object, its transport and settings, and its features."""
