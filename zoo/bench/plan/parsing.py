"""The one parser of every ``zoo-bench`` command: :func:`command` builds it, :func:`main_of`
turns a refusal into one line and exit code 2.

A command declares its flags on the parser :func:`command` gives it, from the shared
vocabulary of :mod:`zoo.bench.plan.cli` (flag types such as ``at_least`` and ``names``); a value
that cannot be used, whether argparse finds it or the command's own checks do, is a
:class:`UsageError` whose message names the flag. Only the standard library is imported here,
so that ``zoo-bench gpu`` can name a missing package before anything imports it.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Callable

__all__ = ["USAGE_ERROR", "Parser", "UsageError", "command", "main_of", "plain"]

#: the exit code of a refused command line, as argparse's own
USAGE_ERROR = 2


class UsageError(Exception):
    """A command-line value that cannot be used; its message says what was expected."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are a one-line :class:`UsageError` instead of
    argparse's usage block and exit (``--help`` shows the usage)."""

    def error(self, message):
        raise UsageError(message)


def plain(text: str) -> str:
    """A docstring's reStructuredText as ``--help`` text: a role such as :func:`zoo.presets.toy`
    and a double-backquoted literal keep only their text."""
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text).replace("``", "")


def command(name: str, description: str, *, keep_layout: bool = False, **kwargs) -> Parser:
    """The parser of ``zoo-bench <name>``, with ``--version``; ``description`` may be
    reStructuredText (a docstring). ``keep_layout`` keeps its line breaks (a numbered list)."""
    from zoo import __version__

    if keep_layout:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    p = Parser(prog=f"zoo-bench {name}", description=plain(description), **kwargs)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def main_of(name: str) -> Callable[[Callable[..., int | None]], Callable[..., int]]:
    """Decorate a command's ``main(argv)``: its exit status is 0 for ``None``, and a
    :class:`UsageError` raised anywhere in it is printed as ``zoo-bench <name>: error: ...`` on
    stderr, exit status 2."""

    def decorate(body: Callable[..., int | None]) -> Callable[..., int]:
        @functools.wraps(body)
        def main(argv: list[str] | None = None) -> int:
            try:
                return body(argv) or 0
            except UsageError as e:
                print(f"zoo-bench {name}: error: {e}", file=sys.stderr)
                return USAGE_ERROR

        return main

    return decorate
