"""Agents: the Model Context Protocol server over the same sessions, store and clusters.

``tools`` answers the read-only tools as plain data (no MCP in it), ``record`` makes each call
an ``agent`` session, ``writes`` decides whether a changing call may go ahead (approvals),
``server`` builds the MCP server from them, ``http`` serves it under ``/mcp`` on the gateway.
"""
