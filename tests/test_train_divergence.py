"""fit names the runs that diverged; zoo.train.diverged says which, by a stated rule."""

import functools
import warnings

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo import data, sdes, train

NET = functools.partial(zoo.ScoreNet, width=32, depth=2, embedding_dim=16, dropout=0.0)
MODEL = zoo.transform(zoo.ScoreSDE, sde=sdes.VP(0.1, 20.0), net=NET)
X = np.asarray(data.nine_gaussians().train_set(256))
FIT = dict(steps=20, batch_size=32, log_every=10)


def test_a_huge_learning_rate_diverges_and_fit_warns():
    with pytest.warns(train.DivergenceWarning, match=r"2 of 2 runs diverged: run 0 .*seed 1"):
        state, curve = train.fit(MODEL, X, seeds=[0, 1], optimizer=optax.adamw(1e3), **FIT)
    np.testing.assert_array_equal(train.diverged(curve), [True, True])
    np.testing.assert_array_equal(train.diverged(curve, state), [True, True])


def test_a_normal_learning_rate_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", train.DivergenceWarning)
        state, curve = train.fit(MODEL, X, optimizer=optax.adamw(1e-3), **FIT)
    assert not train.diverged(curve, state).any()


def test_data_beyond_float32_is_named_not_taken_for_divergence():
    with pytest.raises(ValueError, match=r"data has values up to \S+e\+300, beyond the range"):
        train.fit(MODEL, X.astype(np.float64) * 1e300, **FIT)


def test_a_divergence_on_data_far_from_unit_scale_blames_the_scale():
    with pytest.warns(train.DivergenceWarning, match=r"largest \|x\| is \S+e\+30: .* standardise"):
        train.fit(MODEL, X * 1e30, **FIT)


def test_the_rule():
    assert not train.diverged([[1.0, 0.6, 0.5, 0.55]]).any()  # noise, not divergence
    assert train.diverged([[1.0, 0.5, np.nan]]).all()  # not finite
    assert train.diverged([np.full(4, np.nan)]).all()  # a curve of NaN from the start
    assert train.diverged([[1.0, 0.5, np.inf]]).all()
    assert train.diverged([[2e6, 1e6, 5e5]]).all()  # blown up from the first block: ceiling
    assert train.diverged([[1.0, 0.5, 60.0, 0.5]]).all()  # 120x its best before: a spike counts
    assert not train.diverged([[1.0, 0.001, 0.2]]).any()  # 200x a tiny best, below the floor
    np.testing.assert_array_equal(train.diverged([[1.0, 0.5], [1.0, 150.0]]), [False, True])
    np.testing.assert_array_equal(train.diverged([1.0, np.nan]), [True])  # one run's curve
    with pytest.raises(ValueError, match=r"curve must be \[runs, blocks\]"):
        train.diverged(np.zeros((2, 2, 2)))


def test_non_finite_parameters_count_with_a_finite_curve():
    params = {"net": {"w": jnp.array([[1.0, 2.0], [jnp.nan, 0.0]])}}  # run 1 has a NaN
    state = train.TrainState(params, params, None, jnp.zeros((2, 2), jnp.uint32), jnp.zeros(2))
    curve = [[1.0, 0.5], [1.0, 0.5]]
    np.testing.assert_array_equal(train.diverged(curve), [False, False])
    np.testing.assert_array_equal(train.diverged(curve, state), [False, True])
    with pytest.raises(ValueError, match="state holds 2 runs, the curve 1"):
        train.diverged(curve[:1], state)
