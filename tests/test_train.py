"""Fused, vmapped training: independent runs, sharding changes nothing, checkpoints round-trip."""

import functools
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo import data, sdes, train

NINE = data.nine_gaussians()
MODEL = zoo.transform(zoo.DDPM, schedule=sdes.ddpm_linear(num_steps=50))


def _leaves(tree):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(tree)]


# Every test below reads one of two fits (each a compile of the model's training step):
# TWO_DATASETS trains 2 datasets x 2 seeds; FOUR_SEEDS one dataset x 4 seeds, with
# ema_decay=0, and is what the sharded subprocess repeats on 4 devices.
FIT = dict(steps=20, num_train=1000, log_every=10)


@functools.cache
def _two_datasets():
    second = NINE.train_set(1000) + 1.0
    return zoo.train.fit(MODEL, [NINE.train_set(1000), second], seeds=[0, 1], **FIT)


@functools.cache
def _four_seeds():
    return zoo.train.fit(MODEL, NINE, seeds=[0, 1, 2, 3], ema_decay=0.0, **FIT)


def test_runs_are_independent_and_reproducible():
    state, curve = _two_datasets()
    assert curve.shape == (4, 2)
    leaves = _leaves(state.params)
    # runs: (data 0, seed 0), (data 0, seed 1), (data 1, seed 0), (data 1, seed 1)
    assert not np.allclose(leaves[0][0], leaves[0][1])  # seeds differ
    assert not np.allclose(curve[0], curve[2])  # datasets differ
    # Run (data 0, seed 1) again, in another call beside other runs: the same curve (the
    # curve is the parameters' loss, which the EMA decay does not touch).
    _, curve_again = _four_seeds()
    np.testing.assert_allclose(curve_again[1], curve[1], rtol=1e-5)
    assert int(state.step[0]) == 20


def test_ema_with_zero_decay_is_the_parameters():
    state, _ = _four_seeds()
    for p, e in zip(_leaves(state.params), _leaves(state.ema_params), strict=True):
        np.testing.assert_array_equal(p, e)


def _ramp():
    """An optimizer whose every update is +0.01: after n steps the parameters are
    init + 0.01 n."""

    def update(grads, state, params=None):
        return jax.tree_util.tree_map(lambda g: jnp.full_like(g, 0.01), grads), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _ema_of_ramp(steps, decay, every):
    """The EMA of the parameters init + 0.01 n, n = 1..steps, minus init: its recursion."""
    ema = 0.0
    for n in range(every, steps + 1, every):
        s = np.arange(n - every, n)
        d = np.prod(np.minimum(decay, (1.0 + s) / (10.0 + s)))
        ema = d * ema + (1.0 - d) * 0.01 * n
    return ema


@pytest.mark.filterwarnings("ignore::zoo.train.DivergenceWarning")  # a ramp blows the loss up
@pytest.mark.parametrize("every", [1, 10])
def test_ema_every_k_steps_follows_its_recursion(every):
    # 45 steps: with every=10 the EMA holds the parameters up to step 40.
    state, _ = zoo.train.fit(MODEL, NINE, steps=45, num_train=1000, log_every=15,
                             optimizer=_ramp(), ema_decay=0.9, ema_every=every)  # fmt: skip
    for ema, params in zip(_leaves(state.ema_params), _leaves(state.params), strict=True):
        start = params[0] - 0.01 * 45  # the ramp's first parameters
        np.testing.assert_allclose(ema[0] - start, _ema_of_ramp(45, 0.9, every), atol=5e-6)
    assert abs(_ema_of_ramp(45, 0.9, 10) - _ema_of_ramp(45, 0.9, 1)) > 1e-2


def test_checkpoint_round_trip(tmp_path):
    state, _ = _two_datasets()  # ema_decay 0.999: the EMA is not the parameters
    one = jax.tree_util.tree_map(lambda a: a[0], state)
    path = tmp_path / "ddpm"
    zoo.train.save(path, one, MODEL, note="test")
    loaded, model = zoo.train.load(path), zoo.train.load_model(path)
    assert model.sde == MODEL.sde and model.family is zoo.DDPM
    key = jax.random.PRNGKey(3)
    a = MODEL.sample(one.ema_params, key, (16,)).x
    b = model.sample(loaded.ema_params, key, (16,)).x
    np.testing.assert_array_equal(a, b)
    assert not any(p.suffix == ".pkl" for p in tmp_path.iterdir())


def test_run_axis_is_sharded_over_devices():
    """With 4 (virtual CPU) devices the 4 runs are split over them, with the same results."""
    code = textwrap.dedent(
        """
        import json, jax, zoo
        from zoo import data, sdes
        model = zoo.transform(zoo.DDPM, schedule=sdes.ddpm_linear(num_steps=50))
        state, curve = zoo.train.fit(model, data.nine_gaussians(), seeds=[0, 1, 2, 3],
                                     ema_decay=0.0, **FIT)
        leaf = jax.tree_util.tree_leaves(state.params)[0]
        print(len(leaf.sharding.device_set))
        print(json.dumps(curve.tolist()))
        """
    ).replace("**FIT", ", ".join(f"{k}={v}" for k, v in FIT.items()))
    env = {
        **os.environ,
        # the session's compiler flags (tests/conftest.py) and four devices
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    devices, curve = out.stdout.strip().splitlines()[-2:]
    assert int(devices) == 4
    _, local = _four_seeds()
    np.testing.assert_allclose(np.array(json.loads(curve)), local, rtol=1e-4)


def test_an_image_array_is_one_dataset_and_a_deeper_one_a_stack():
    images = np.zeros((10, 4, 4, 1), np.float32)
    assert train._as_datasets(images, 0, event_ndim=3).shape == (1, 10, 4, 4, 1)
    assert train._as_datasets(images, 0, event_ndim=2).shape == (10, 4, 4, 1)
    with pytest.raises(ValueError, match="same shape"):
        train._as_datasets([np.zeros((5, 2)), np.zeros((6, 2))], 0, event_ndim=1)


def test_a_progress_bar_only_on_a_terminal(capsys, monkeypatch):
    # captured stderr is a file, as in a log: no bar, whose redraws would fill it
    assert train._progress(10, True, "train") is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    bar = train._progress(10, True, "train")
    assert bar is not None and bar.total == 10
    bar.close()
    assert train._progress(10, False, "train") is None
