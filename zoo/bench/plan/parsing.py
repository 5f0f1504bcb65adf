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
from pathlib import Path

__all__ = [
    "CONFIG",
    "USAGE_ERROR",
    "Parser",
    "UsageError",
    "command",
    "main_of",
    "plain",
    "settings",
]

#: the exit code of a refused command line, as argparse's own
USAGE_ERROR = 2
#: the file in a results folder that holds the settings it was made with
CONFIG = "config.toml"
#: flags that are no setting of a results folder: never written to its config.toml
_NOT_SETTINGS = ("help", "version", "config", "out")


class UsageError(Exception):
    """A command-line value that cannot be used; its message says what was expected."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are a one-line :class:`UsageError` instead of
    argparse's usage block and exit (``--help`` shows the usage).

    With ``rerun=True`` (:func:`command`) it takes ``--config FILE``, the ``config.toml`` that
    the command wrote into a results folder (:func:`settings` gives what goes in it): each of
    its settings is read as the flag of the same name given first, so a flag given beside it
    overrides it, and ``--out`` is the file's folder unless given."""

    def __init__(self, *args, rerun: bool = False, **kwargs):
        super().__init__(*args, allow_abbrev=not rerun, **kwargs)
        self.rerun = rerun
        #: flags that select what the command does rather than what it measures (frontier's
        #: --tables): no setting of a folder
        self.modes: tuple[str, ...] = ()
        if rerun:
            self.add_argument(
                "--config", metavar="FILE",
                help=f"the {CONFIG} of a results folder this command made: its settings, "
                "as if given first (a flag beside it overrides one), into its folder unless "
                "--out is given",
            )  # fmt: skip

    def error(self, message):
        raise UsageError(message)

    def parse_args(self, args=None, namespace=None):
        argv = list(sys.argv[1:] if args is None else args)
        if self.rerun:
            argv = self._with_config(argv)
        return super().parse_args(argv, namespace)

    def _options(self) -> dict[str, argparse.Action]:
        """Each optional flag's action by its ``dest``."""
        return {a.dest: a for a in self._actions if a.option_strings}

    def _with_config(self, argv: list[str]) -> list[str]:
        """``argv`` with a ``--config FILE`` replaced by the flags its settings stand for."""
        import tomllib

        for i, token in enumerate(argv):
            name, eq, value = token.partition("=")
            if name != "--config":
                continue
            if not eq:
                if i + 1 == len(argv):
                    raise UsageError("argument --config: expected one argument")
                value = argv[i + 1]
            rest = argv[:i] + argv[i + (1 if eq else 2) :]
            try:
                with open(value, "rb") as f:
                    found = tomllib.load(f)
            except OSError as e:
                why = e.strerror or e
                raise UsageError(f"argument --config: cannot read {value!r}: {why}") from None
            except tomllib.TOMLDecodeError as e:
                raise UsageError(f"argument --config: {value!r} is not valid TOML: {e}") from None
            found.pop("versions", None)
            options = {d: a for d, a in self._options().items() if d not in _NOT_SETTINGS}
            unknown = sorted(set(found) - set(options))
            if unknown:
                raise UsageError(
                    f"argument --config: {value!r} has unknown settings {', '.join(unknown)}; "
                    f"expected some of {', '.join(options)}"
                )
            flags = []
            for dest, setting in found.items():
                flag = options[dest].option_strings[-1]
                if options[dest].nargs == 0:  # a switch: true or false
                    flags += [flag] if setting is True else []
                else:
                    flags.append(f"{flag}={setting}")
            given_out = any(t == "--out" or t.startswith("--out=") for t in rest)
            if "out" in self._options() and not given_out:
                flags.append(f"--out={Path(value).parent}")
            return flags + rest
        return argv


def plain(text: str) -> str:
    """A docstring's reStructuredText as ``--help`` text: a role such as :func:`zoo.presets.toy`
    and a double-backquoted literal keep only their text."""
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text).replace("``", "")


def command(
    name: str, description: str, *, keep_layout: bool = False, rerun: bool = False, **kwargs
) -> Parser:
    """The parser of ``zoo-bench <name>``, with ``--version``; ``description`` may be
    reStructuredText (a docstring). ``keep_layout`` keeps its line breaks (a numbered list);
    ``rerun`` adds ``--config`` (:class:`Parser`) and refuses abbreviated flags, so that the
    flags of a command line are those of its ``config.toml``."""
    from zoo import __version__

    if keep_layout:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    p = Parser(prog=f"zoo-bench {name}", description=plain(description), rerun=rerun, **kwargs)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def settings(parser: Parser, argv: list[str]) -> dict:
    """What ``config.toml`` holds for the command line ``argv`` of ``parser`` (a ``rerun``
    parser): every flag's value as the text it was given in, or its default written the same
    way (a list comma-joined), a switch as ``true`` or ``false``; not ``--out`` (the file's
    folder), not a flag whose default is ``None`` and that was not given, not the parser's
    ``modes``."""
    argv = parser._with_config(list(argv))
    skip = (*_NOT_SETTINGS, *parser.modes)
    options = {d: a for d, a in parser._options().items() if d not in skip}
    by_flag = {flag: a for a in options.values() for flag in a.option_strings}
    given, i = {}, 0
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        action = by_flag.get(name)
        i += 1
        if action is None:
            continue
        if action.nargs == 0:
            given[action.dest] = True
            continue
        if not eq and i < len(argv):
            value, i = argv[i], i + 1
        given[action.dest] = value
    out = {}
    for dest, action in options.items():
        if dest in given:
            out[dest] = given[dest]
        elif action.nargs == 0:
            out[dest] = False
        elif action.default is not None:
            default = action.default
            if isinstance(default, (list, tuple)):
                default = ",".join(map(str, default))
            out[dest] = str(default)
    return out


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
