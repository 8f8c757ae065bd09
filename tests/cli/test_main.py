"""`ktl-lsp` itself: the parser every command hangs from."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator

from ktl_lsp.cli.main import build_parser
from tests.cli.conftest import ktl_lsp


def test_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ktl_lsp", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("ktl-lsp ")


def _arguments(
    parser: argparse.ArgumentParser, name: str = "ktl-lsp"
) -> Iterator[tuple[str, argparse.Action]]:
    """Every argument of every command and subcommand, with the command it belongs to."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, subparser in action.choices.items():
                yield from _arguments(subparser, f"{name} {command}")
        elif not isinstance(action, argparse._HelpAction):
            yield name, action


def test_every_argument_says_what_it_does_and_its_default() -> None:
    arguments = list(_arguments(build_parser()))
    assert len(arguments) > 40
    for command, action in arguments:
        where = f"{command} {'/'.join(action.option_strings) or action.dest}"
        assert action.help and action.help.strip(), f"{where} has no help"
        takes_a_value = action.nargs != 0
        if takes_a_value and action.default not in (None, argparse.SUPPRESS):
            assert "%(default)s" in action.help, f"{where} does not say its default"


def test_help_shows_the_defaults() -> None:
    listing = ktl_lsp("sessions", "list", "--help", env={**os.environ, "KTL_LSP_STORE": "/s.db"})
    assert "list at most this many (default: 50)" in " ".join(listing.stdout.split())
    top = " ".join(ktl_lsp("--help", env={**os.environ, "KTL_LSP_STORE": "/s.db"}).stdout.split())
    assert "here /s.db)" in top
    check = " ".join(ktl_lsp("check", "--help").stdout.split())
    assert re.search(r"available: 1\.\d+\.\.1\.\d+; default: newest", check), check
