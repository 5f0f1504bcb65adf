"""What a benchmark covers, checked before anything runs, and its run matrix
(:mod:`zoo.bench.plan.matrix`)."""
