"""Kubernetes work: cluster access, apply/diff/delete, API errors mapped to manifest lines, logs,
verify and events. Pure of LSP (``features/k8s.py`` turns it into commands); the ``kubernetes``
client is imported on first use so the server starts fast.
"""
