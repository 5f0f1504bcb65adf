"""The zoo's benchmark harness: every experiment of ``zoo-bench``, as a path through its stages.

- :mod:`zoo.bench.plan`: what a run covers (profiles, the command line's vocabulary, config
  files, samplers by name, networks, data kinds, memory limits) and its run matrix;
- :mod:`zoo.bench.train`: every family trained in one fused, vmapped call per family, and
  the parameters kept along the way;
- :mod:`zoo.bench.judge`: sample quality against the noise floor, likelihoods, and the error
  split with the exact score;
- :mod:`zoo.bench.report`: tables, figures and the files of a results folder;
- :mod:`zoo.bench.commands`: the experiments, each a subcommand of ``zoo-bench``
  (:mod:`zoo.bench.__main__`).

:mod:`zoo.bench.pipeline` runs a plan through the stages, and :mod:`zoo.bench.cache` keeps
every finished piece in the output folder. ``import zoo`` imports none of this.
"""
