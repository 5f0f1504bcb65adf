"""The committed results of the zoo's benchmark (``benchmarks/results/``), and ``python -m
benchmarks``, the same command as ``zoo-bench`` (:mod:`zoo.bench`) from a checkout."""
