"""``zoo-bench`` (``python -m zoo.bench``, ``python -m benchmarks``): every experiment of the
harness as a subcommand; without one, the comparison.

Only the standard library is imported here: each subcommand imports JAX and the zoo itself,
once Ctrl-C is one line (:mod:`zoo.bench.commands.entry`).
"""

from __future__ import annotations

import sys

from zoo.bench.commands import entry

__all__ = ["COMMANDS", "cli", "main", "usage"]

USAGE_ERROR = 2

#: subcommand -> (module, what it measures); the first is the default
COMMANDS = {
    "compare": (
        "zoo.bench.commands.compare",
        "every family on toy data or digits, over seeds and samplers, against the noise floor "
        "(the default)",
    ),
    "frontier": (
        "zoo.bench.commands.frontier",
        "the fast samplers on the exact score of Gaussian mixtures, per NFE",
    ),
    "nll-split": (
        "zoo.bench.commands.nll_split",
        "at which noise levels a results folder's excess NLL arises (exact score)",
    ),
    "guidance": (
        "zoo.bench.commands.guidance",
        "classifier-free guidance on the digits, every family",
    ),
    "summarize": (
        "zoo.bench.commands.summarize",
        "the decision table (which method for which question) from the committed results",
    ),
    "speed": ("zoo.bench.commands.speed", "how fast the zoo trains and samples here"),
    "gpu": (
        "zoo.bench.commands.gpu",
        "make bench-gpu: the gpu profile family by family, then the speed benchmark",
    ),
    "distributed": (
        "zoo.bench.commands.distributed",
        "one comparison over several processes joined by jax.distributed",
    ),
}


def usage() -> str:
    """The list of subcommands that ``zoo-bench --help`` prints."""
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    return (
        "usage: zoo-bench [COMMAND] [FLAGS ...]\n\nexperiments:\n"
        + "\n".join(lines)
        + "\n\n`zoo-bench COMMAND --help` lists a command's flags; without a COMMAND, "
        "zoo-bench runs compare with the flags given."
    )


def main(argv: list[str] | None = None) -> int:
    """Run the subcommand named first in ``argv`` (``compare`` when none is) with the rest."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    if argv[:1] and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        print(
            f"zoo-bench: error: unknown command {argv[0]!r}; the commands are "
            f"{', '.join(COMMANDS)} (zoo-bench --help)",
            file=sys.stderr,
        )
        return USAGE_ERROR
    name, rest = (argv[0], argv[1:]) if argv[:1] and argv[0] in COMMANDS else ("compare", argv)
    if name == "compare":  # its own Ctrl-C line says what the cache holds
        from zoo.bench.commands.compare import main as compare

        return compare(rest)
    return entry.run(f"zoo-bench {name}", COMMANDS[name][0], rest)


def cli() -> None:
    """The ``zoo-bench`` console script: :func:`main`, ended by :func:`entry.finish`."""
    entry.finish(main())


if __name__ == "__main__":
    cli()
