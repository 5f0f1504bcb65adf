"""The zoo's benchmark: every model family on toy data over several seeds, each family's
samplers, and sample quality next to the noise floor.

Run ``python -m benchmarks --profile quick`` (or ``zoo-bench``); ``--help`` lists the flags.
Speed of training and of the Diffrax samplers: ``python -m benchmarks.speed``.
"""
