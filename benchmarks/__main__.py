"""``python -m benchmarks``: ``zoo-bench`` (:mod:`zoo.bench.__main__`) from a checkout."""

import sys

from zoo.bench.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
