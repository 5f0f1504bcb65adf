"""``python -m benchmarks`` / ``zoo-bench``: run a profile, write the reports, print the table."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

from benchmarks import cli

__all__ = ["main"]

USAGE_ERROR = 2
INTERRUPTED = 130


def _fail(message: str) -> None:
    print(f"zoo-bench: error: {message}", file=sys.stderr)
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
    try:
        config = cli.parse(argv)
    except cli.UsageError as e:
        _fail(str(e))
    out = Path(config.out)
    try:
        from benchmarks import cache  # the heavy imports wait until the arguments are known

        cache.check_writable(out)
    except OSError as e:
        _fail(f"cannot write to output folder {config.out!r}: {e.strerror or e}")
    from benchmarks import report, runner

    previous = _previous_config(out)
    if previous is not None and previous != json.loads(json.dumps(dataclasses.asdict(config))):
        print(
            f"zoo-bench: note: {out} holds the reports of another configuration; they are "
            "replaced (that configuration's cached pieces stay in its cache/)",
            file=sys.stderr,
        )
    try:
        outcome = runner.run(config)
    except KeyboardInterrupt:
        print("\nzoo-bench: interrupted; run the same command again to resume", file=sys.stderr)
        return INTERRUPTED
    command = shlex.join(["zoo-bench", *(sys.argv[1:] if argv is None else argv)])
    text = report.write(config, outcome, start, command)
    print(text)
    print(
        f"zoo-bench {config.profile}: {len(outcome.rows)} rows in "
        f"{time.perf_counter() - start:.1f} s ({outcome.trained} runs trained, "
        f"{outcome.computed} cells computed, {outcome.reused} reused) -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
