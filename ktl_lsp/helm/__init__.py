"""Helm charts: finding them, rendering them offline, and reading their templates and values.

Like `checks/`, nothing here imports the language server; findings carry positions.
"""
