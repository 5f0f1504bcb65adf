"""Parameters kept during one long fit call equal those of separate shorter calls."""

import functools

import jax
import numpy as np
import pytest

import zoo
from zoo import data, sdes, train

NET = functools.partial(zoo.ScoreNet, width=32, depth=2, embedding_dim=16, dropout=0.0)
MODEL = zoo.transform(zoo.ScoreSDE, sde=sdes.VP(0.1, 20.0), net=NET)
X = np.asarray(data.nine_gaussians().train_set(256))
FIT = dict(seeds=[0, 1], batch_size=32, log_every=10)


def _assert_trees_close(a, b):
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(leaves_a) == len(leaves_b) > 0
    for u, v in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-6, atol=1e-6)


def test_kept_parameters_equal_those_of_a_separate_shorter_call():
    state, curve, kept = train.fit(MODEL, X, steps=45, keep_at=(45, 10), **FIT)
    assert list(kept) == [10, 45]  # increasing, whatever the order asked
    assert curve.shape == (2, 5)  # the blocks of a call without keep_at
    _assert_trees_close(kept[45], state.ema_params)
    short, short_curve = train.fit(MODEL, X, steps=10, **FIT)
    _assert_trees_close(kept[10], short.ema_params)
    assert jax.tree_util.tree_leaves(kept[10])[0].shape[0] == 2  # the run axis
    np.testing.assert_allclose(curve[:, :1], short_curve, rtol=1e-6)


@pytest.mark.parametrize(
    "keep_at, error, message",
    [
        ((15,), ValueError, "not the end of a training block"),
        ((50,), ValueError, "not the end of a training block"),
        ((10, 10), ValueError, "distinct"),
        ((0,), ValueError, ">= 1"),
        (10, TypeError, "sequence of steps"),
        ((10.0,), TypeError, "integer"),
    ],
)
def test_keep_steps_that_are_not_block_ends_are_refused(keep_at, error, message):
    with pytest.raises(error, match=message):
        train.fit(MODEL, X, steps=45, keep_at=keep_at, **FIT)
