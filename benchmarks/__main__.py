"""``python -m benchmarks``: ``zoo-bench`` (:mod:`zoo.bench.__main__`) from a checkout."""

from zoo.bench.__main__ import cli

if __name__ == "__main__":
    cli()
