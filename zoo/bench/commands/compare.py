"""``zoo-bench compare`` (``zoo-bench`` without a command): run a profile, write the reports,
print the table.

This module imports only the standard library and :mod:`zoo.bench.commands.entry` at the top: JAX
and the zoo take seconds to import, and they are imported inside :func:`main` once Ctrl-C
there is one line (:func:`_interrupted`) rather than a ``KeyboardInterrupt`` traceback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

from zoo.bench.commands import entry

__all__ = ["main"]

USAGE_ERROR = 2


def _interrupted(out: Path | None) -> str:
    """What Ctrl-C or SIGTERM prints (:func:`zoo.bench.commands.entry.stop_at_once`): while starting
    (``out`` not yet held) that nothing was run; during the run what the cache has saved
    (every piece is written aside and moved into place, so stopping anywhere is as safe as a
    kill)."""
    if out is None:
        return "zoo-bench: interrupted while starting; nothing was run"
    from zoo.bench import cache

    saved = cache.Cache(out).count()
    return (
        f"zoo-bench: interrupted; {saved} finished pieces are saved in {out / 'cache'}; "
        "run the same command again to resume"
    )


def _user_frames(error: BaseException) -> str:
    """The traceback of ``error`` (a user's exception: their ``--net`` module failing) with
    only the frames of the user's own files, which are what they can fix; the frames of the
    zoo, of Python's import machinery and of installed packages are left out."""
    import zoo

    ours = Path(zoo.__file__).parent  # the library and this harness
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith("<")
        and "site-packages" not in Path(frame.filename).parts
        and not Path(frame.filename).is_relative_to(ours)
        and not Path(frame.filename).is_relative_to(Path(os.__file__).parent)
    ]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    return "".join(lines + traceback.format_exception_only(error))


def _fail(message: str, cause: BaseException | None = None) -> None:
    """Print ``message`` as one line and exit with code 2; a user's exception that caused
    it follows, with the frames of the user's files."""
    print(f"zoo-bench: error: {message}", file=sys.stderr)
    if cause is not None:
        print(f"\ncaused by your code:\n{_user_frames(cause)}", end="", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


def _previous_config(out: Path) -> dict | None:
    try:
        return json.loads((out / "summary.json").read_text())["config"]
    except (OSError, ValueError, KeyError):
        return None


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the benchmark (resuming from the output folder's cache) and print
    the results; bad input is one line on stderr and exit code 2."""
    start = time.perf_counter()
    held_out: list[Path] = []  # the output folder, once this run holds it
    restore = entry.stop_at_once(lambda: _interrupted(held_out[0] if held_out else None))
    try:
        from zoo.bench import cache
        from zoo.bench.plan import cli

        try:
            config = cli.parse(argv)
        except cli.UsageError as e:
            _fail(str(e), e.__cause__)
        out = Path(config.out)
        try:
            cache.check_writable(out)
            held = cache.lock(out)
        except OSError as e:
            _fail(f"cannot write to output folder {config.out!r}: {e.strerror or e}")
        except cache.Busy as e:
            _fail(f"{e}; wait for it to finish or choose another --out")
        held_out.append(out)
        try:
            return _run(config, out, start, argv)
        finally:
            held.close()
    finally:
        restore()


def _run(config, out: Path, start: float, argv) -> int:
    from zoo.bench import pipeline
    from zoo.bench.plan import config_file
    from zoo.bench.report import files

    previous = _previous_config(out)
    current = json.loads(json.dumps(dataclasses.asdict(config)))
    if previous is not None and {**previous, "out": None} != {**current, "out": None}:
        print(
            f"zoo-bench: note: {out} holds the reports of another configuration; they are "
            "replaced (that configuration's cached pieces stay in its cache/)",
            file=sys.stderr,
        )
    # First, so that a run cut short can be resumed from its folder too.
    settings = config_file.write(config, out)
    outcome = pipeline.run(config)
    command = shlex.join(["zoo-bench", *(sys.argv[1:] if argv is None else argv)])
    text = files.write(config, outcome, start, command)
    print(text)
    print(
        f"zoo-bench {config.profile}: {len(outcome.rows)} rows in "
        f"{time.perf_counter() - start:.1f} s ({outcome.trained} runs trained, "
        f"{outcome.computed} cells computed, {outcome.reused} reused) -> {out}; "
        f"rerun: zoo-bench --config {settings}"
    )
    return 0


if __name__ == "__main__":
    entry.finish(main())
