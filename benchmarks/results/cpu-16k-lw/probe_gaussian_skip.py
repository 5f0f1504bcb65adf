"""A probe, not part of the zoo: does a network that is exact in the Gaussian limit remove the
excess NLL that nll_split charges to high noise?

The family's network (the toy preset's MLP, same optimizer, batch and 16,000 steps, seeds 0-2)
outputs a residual over the posterior-mean noise of Gaussian data with the training set's
mean m and variance v, eps_gauss(x_t, t) = sigma_t (x_t - alpha_t m) / (alpha_t^2 v +
sigma_t^2), which is the exact answer wherever the noise has washed the data's shape out.
Then the same band split as ``zoo-bench nll-split``, on the same held-out points.

    python benchmarks/results/cpu-16k-lw/probe_gaussian_skip.py vp-lw nine_gaussians
"""

import math
import sys
import time

import haiku as hk
import jax.numpy as jnp
import numpy as np

from zoo import data, presets, train
from zoo.bench.commands import nll_split
from zoo.bench.judge import evaluation

family, dataset = sys.argv[1], sys.argv[2]
toy = data.get(dataset)
preset = presets.toy(family, dataset)
sde = preset.model.sde
xs = np.asarray(toy.train_set(10_000))
mean, var = xs.mean(0), xs.var(0).mean()


class GaussianSkip(hk.Module):
    def __call__(self, x, t, is_training=False, label=None):
        t = jnp.broadcast_to(t, x.shape[:-1])
        alpha, sigma = sde.marginal(t[..., None])
        gauss = sigma * (x - alpha * mean) / (alpha**2 * var + sigma**2)
        return gauss + presets.TOY_NET()(x, t, is_training, label)


model = presets.FAMILY_TABLE[family].transform(GaussianSkip)
start = time.time()
state, _ = train.fit(
    model, toy, steps=16_000, seeds=[0, 1, 2], batch_size=preset.batch_size,
    optimizer=preset.optimizer(),
)  # fmt: skip
print(f"{family} with the Gaussian skip on {dataset}: trained in {time.time() - start:.0f} s")
x = evaluation.heldout(toy, 1000)
own = float(-np.mean(np.asarray(toy.log_prob(x), np.float64)))
likelihood = nll_split.likelihood_fn(model, toy, 1e-3)
exact = likelihood(train.run_params(state, 0), x, math.inf)
print("seed, paired (model NLL less the data's own), bands 0-0.1, 0.1-1, 1-10, 10+ (nats)")
for seed in range(3):
    params = train.run_params(state, seed)
    nll = [likelihood(params, x, c) for c in (0.0, 0.1, 1.0, 10.0)]
    bands = -np.diff([*nll, exact])
    print(seed, f"{nll[0] - own:.4f}", " ".join(f"{b:+.4f}" for b in bands), flush=True)
