"""Each family trains (its loss falls) and, after a short run, samples far better than its prior;
each also takes images."""

import functools

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo import data, metrics, presets, samplers, sdes

NINE = data.nine_gaussians()
# Training steps per family, the fewest with a margin under the 0.25 bound below (seed 0):
# after 1,000 steps NCSN's and VE's samples sit at 0.03 and 0.02 of the prior's distance, DDPM's
# still at 0.26; after 1,500 the others at 0.16-0.20 (flow 0.20).
STEPS = {"ncsn": 1000, "ve": 1000}
# Cheap samplers: the point is the trained score, not the sampler's own accuracy.
CHEAP = {
    "ddpm": samplers.DDIM(steps=50),
    "ncsn": samplers.AnnealedLangevin(levels=25, steps_per_level=20, step_size=1e-4),
    "vp": samplers.EulerMaruyama(steps=200),
    "subvp": samplers.EulerMaruyama(steps=200),
    "ve": samplers.EulerMaruyama(steps=200),
    "flow": samplers.DDIM(steps=20),
}


@functools.cache
def trained(family):
    steps = STEPS.get(family, 1500)
    preset = presets.toy(family, steps=steps)
    state, curve = preset.fit(seeds=[0], batch_size=128, log_every=steps // 10)
    return preset, zoo.train.run_params(state, 0), curve[0]


@pytest.mark.parametrize("family", presets.FAMILIES)
def test_family_learns_the_nine_gaussians(family):
    preset, params, curve = trained(family)
    assert np.all(np.isfinite(curve))
    # The loss on one large batch (same times and noise) falls well below its value at init.
    batch, key = NINE.sample(jax.random.PRNGKey(4), (4096,)), jax.random.PRNGKey(8)
    initial = preset.model.init(jax.random.PRNGKey(0), batch)
    before = float(jnp.mean(preset.model.loss(initial, key, batch)))
    after = float(jnp.mean(preset.model.loss(params, key, batch)))
    assert after < 0.8 * before, (before, after)
    n, key = 1000, jax.random.PRNGKey(5)
    x = preset.model.sample(params, key, (n,), CHEAP[family]).x
    reference = NINE.sample(jax.random.PRNGKey(6), (n,))
    prior = preset.model.sde.prior_sample(key, (n, 2))
    swd = float(metrics.sliced_w2(x, reference, key))
    swd_prior = float(metrics.sliced_w2(prior, reference, key))
    assert swd < 0.25 * swd_prior, (swd, swd_prior)


@pytest.mark.parametrize(
    "config",
    [
        dict(predict="score"),
        dict(predict="x0"),
        dict(predict="v"),
        dict(predict="edm", sigma_data=1.6, time_sampling="edm"),
        dict(predict="edm", sigma_data=1.6, time_sampling="edm", time_input="c_noise"),
        dict(predict="edm", sigma_data=1.6, weighting="likelihood", time_sampling="importance"),
    ],
    ids=lambda c: "-".join([c["predict"], *(c[k] for k in ("time_input", "weighting") if k in c)]),
)
def test_other_parametrisations_train(config):
    model = zoo.transform(zoo.ScoreSDE, sde=sdes.VP(), **config)
    _, curve = zoo.train.fit(model, NINE, steps=600, log_every=200, num_train=2000)
    assert np.all(np.isfinite(curve)) and curve[0, -1] < curve[0, 0]


# Each family of the table on tiny processes of its kind (a new family needs its entry here).
TINY_PROCESSES = {
    "ddpm": (sdes.ddpm_linear(1e-4, 0.02, 20), samplers.Ancestral()),
    "ncsn": (sdes.ncsn_geometric(5.0, 0.01, 4), samplers.AnnealedLangevin(steps_per_level=2)),
    "vp": (sdes.VP(), samplers.DDIM(steps=4)),
    "subvp": (sdes.SubVP(), samplers.EulerMaruyama(steps=4)),
    "ve": (sdes.VE(0.01, 5.0), samplers.ProbabilityFlow(steps=4)),
    "flow": (sdes.FlowPath(), samplers.DDIM(steps=4)),
}


class _ImageNet(hk.Module):
    """``(x, t, is_training) -> like x`` on images: one 3x3 convolution of the image and its
    time as a second channel. The families are under test here, not the network (the UNet
    has tests of its own), and this one compiles in a fraction of a UNet's seconds."""

    def __init__(self):
        super().__init__(name="image_net")

    def __call__(self, x, t, is_training=False):
        t = jnp.reshape(jnp.asarray(t, x.dtype), (-1, 1, 1, 1))
        t = jnp.broadcast_to(t, (*x.shape[:-1], 1))
        return hk.Conv2D(x.shape[-1], 3)(jnp.concatenate([x, t], axis=-1))


@pytest.mark.parametrize("family", presets.FAMILIES)
def test_every_family_has_a_loss_and_samples_on_8x8_images(family):
    process, sampler = TINY_PROCESSES[family]
    model = presets.FAMILY_TABLE[family].transform(
        _ImageNet, process=process, event_shape=(8, 8, 1)
    )
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 8, 8, 1), minval=-1, maxval=1)
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    # The model keeps its network's parameters under "<family>/~_params/net/".
    (name,) = params
    assert name.split("/~_params/")[1] == "net/image_net/conv2_d"
    assert params[name]["w"].shape == (3, 3, 2, 1)  # the image and its time in, the image out
    losses = model.loss(params, jax.random.PRNGKey(2), x)
    assert losses.shape == (4,) and np.all(np.isfinite(losses)) and np.all(losses > 0)
    out = model.sample(params, jax.random.PRNGKey(3), (3,), sampler)
    assert out.x.shape == (3, 8, 8, 1) and np.all(np.isfinite(out.x))
    assert int(out.nfe) > 0


def test_loss_and_sample_share_parameters():
    model = zoo.transform(zoo.DDPM, schedule=sdes.ddpm_linear(num_steps=20))
    key = jax.random.PRNGKey(0)
    params = model.init(key, NINE.sample(key, (8,)))
    shifted = jax.tree_util.tree_map(lambda p: p + 0.1, params)
    a = model.sample(params, key, (4,)).x
    b = model.sample(shifted, key, (4,)).x
    assert not np.allclose(a, b)  # sampling reads the very parameters that loss trains


def test_model_errors_are_named():
    model = zoo.transform(zoo.DDPM)
    key = jax.random.PRNGKey(0)
    params = model.init(key, jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"x0 must have shape \[batch, 2\]"):
        model.loss(params, key, jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="x contains NaN"):
        model.loss(params, key, jnp.array([[0.0, jnp.nan]]))
    with pytest.raises(TypeError, match="sampler must be a zoo.samplers.Sampler"):
        model.sample(params, key, (4,), sampler="ddim")
    with pytest.raises(ValueError, match=r"sample_shape must be \(n,\)"):
        model.sample(params, key, (4, 2))
    with pytest.raises(TypeError, match="schedule must be a zoo.sdes.DDPMSchedule"):
        zoo.transform(zoo.DDPM, schedule=sdes.VP())
    with pytest.raises(TypeError, match="schedule must be a zoo.sdes.NCSNSchedule"):
        zoo.transform(zoo.NCSN, schedule=sdes.ddpm_linear())
    with pytest.raises(ValueError, match="predict must be one of"):
        zoo.transform(zoo.ScoreSDE, predict="noise")
    with pytest.raises(ValueError, match="family must be one of"):
        presets.toy("ddim")
    with pytest.raises(ValueError, match="data: examples have shape"):
        zoo.train.fit(model, np.zeros((100, 3), np.float32), steps=1)
    with pytest.raises(ValueError, match="data contains NaN"):
        zoo.train.fit(model, np.full((100, 2), np.nan, np.float32), steps=1)
