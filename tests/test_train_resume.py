"""Checkpoints hold everything a run needs: N steps, save, load, M steps equal N + M steps."""

import functools
import os

import jax
import numpy as np
import optax
import pytest

import zoo
from zoo import data, sdes, train

NET = functools.partial(zoo.ScoreNet, width=32, depth=2, embedding_dim=16, dropout=0.0)
MODEL = zoo.transform(zoo.ScoreSDE, sde=sdes.VP(0.1, 20.0), net=NET)
X = np.asarray(data.nine_gaussians().train_set(256))
FIT = dict(batch_size=32, log_every=10)


def _assert_trees_close(a, b):
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(leaves_a) == len(leaves_b) > 0
    for u, v in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-6, atol=1e-6)


@functools.cache
def _thirty_steps():
    return train.fit(MODEL, X, steps=30, seeds=[0, 1], **FIT)


@functools.cache
def _fifty_steps():
    return train.fit(MODEL, X, steps=50, seeds=[0, 1], **FIT)


def _run(state, r):
    return jax.tree_util.tree_map(lambda a: a[r], state)


def test_n_steps_saved_loaded_and_m_more_equal_n_plus_m_steps(tmp_path):
    state, first = _thirty_steps()
    train.save(tmp_path / "run", _run(state, 1), MODEL)
    loaded = train.load(tmp_path / "run")
    assert int(loaded.step) == 30  # the EMA warm-up goes on from here, not from 0
    resumed, second = train.fit(MODEL, X, steps=20, seeds=[1], state=loaded, **FIT)
    whole, curve = _fifty_steps()
    assert int(resumed.step[0]) == 50
    for name in ("params", "ema_params", "opt_state", "key"):
        _assert_trees_close(getattr(resumed, name), _run(getattr(whole, name), slice(1, 2)))
    np.testing.assert_allclose(np.concatenate([first[1:], second], axis=1), curve[1:], rtol=1e-6)


def test_a_state_from_fit_continues_every_run():
    state, first = _thirty_steps()
    resumed, second = train.fit(MODEL, X, steps=20, seeds=[0, 1], state=state, **FIT)
    whole, curve = _fifty_steps()
    for name in ("params", "ema_params", "opt_state", "key"):
        _assert_trees_close(getattr(resumed, name), getattr(whole, name))
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), curve, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(resumed.step), [50, 50])


def test_a_checkpoint_that_cannot_be_continued_says_why(tmp_path):
    state, _ = _thirty_steps()
    train.save(tmp_path / "run", _run(state, 0), MODEL)
    loaded = train.load(tmp_path / "run")
    with pytest.raises(ValueError, match="one run .* one dataset and one seed"):
        train.fit(MODEL, X, steps=10, seeds=[0, 1], state=loaded, **FIT)
    with pytest.raises(ValueError, match="state.opt_state .*optimizer the state was trained with"):
        train.fit(MODEL, X, steps=10, state=loaded, optimizer=optax.sgd(1e-3), **FIT)
    with pytest.raises(ValueError, match="no optimizer state"):
        train.fit(MODEL, X, steps=10, state=loaded._replace(opt_state=None), **FIT)
    other = zoo.transform(zoo.ScoreSDE, sde=sdes.VP(0.1, 20.0), net=functools.partial(NET, width=8))
    with pytest.raises(ValueError, match="state.params .*another model"):
        train.fit(other, X, steps=10, state=loaded, **FIT)
    with pytest.raises(ValueError, match="state holds 2 runs but data x seeds make 3"):
        train.fit(MODEL, X, steps=10, seeds=[0, 1, 2], state=state, **FIT)


def test_run_params_of_a_loaded_run(tmp_path):
    state, _ = _thirty_steps()
    train.save(tmp_path / "run", _run(state, 0), MODEL)
    loaded = train.load(tmp_path / "run")
    _assert_trees_close(train.run_params(loaded), train.run_params(state, 0))
    _assert_trees_close(train.run_params(loaded, ema=False), train.run_params(state, 0, ema=False))
    with pytest.raises(IndexError, match="run must lie in"):
        train.run_params(loaded, 1)
    with pytest.raises(IndexError, match="run must lie in"):
        train.run_params(state, 2)


def _local():
    def net():
        return zoo.ScoreNet(width=8)

    return net


def user_net():  # importable, but from a module load_model does not import from
    return zoo.ScoreNet(width=8)


@pytest.mark.parametrize(
    "net",
    [lambda: zoo.ScoreNet(width=8), _local(), user_net],
    ids=["lambda", "local function", "user module"],
)
def test_save_refuses_a_net_that_load_model_cannot_rebuild(tmp_path, net):
    model = zoo.transform(zoo.ScoreSDE, net=net)
    state, _ = _thirty_steps()
    with pytest.raises(ValueError, match="net=.* cannot be saved so that load_model rebuilds it"):
        train.save(tmp_path / "run", _run(state, 0), model)
    assert not os.listdir(tmp_path)  # nothing half-written
    train.save(tmp_path / "params_only", _run(state, 0))  # without model=, parameters still save


def test_positional_arguments_of_a_partial_net_round_trip(tmp_path):
    net = functools.partial(zoo.ScoreNet, 16, 2, 8, dropout=0.0)  # width, depth, embedding_dim
    model = zoo.transform(zoo.ScoreSDE, sde=sdes.VP(0.1, 20.0), net=net)
    state, _ = _thirty_steps()
    train.save(tmp_path / "run", _run(state, 0), model)
    rebuilt = train.load_model(tmp_path / "run")
    assert rebuilt.config["net"].args == (16, 2, 8)
    shapes = jax.eval_shape(rebuilt.init, jax.random.PRNGKey(0), X[:4])
    expected = jax.eval_shape(model.init, jax.random.PRNGKey(0), X[:4])
    assert jax.tree_util.tree_map(np.shape, shapes) == jax.tree_util.tree_map(np.shape, expected)


def _saved(tmp_path):
    """A checkpoint of freshly initialised parameters (no training needed to damage one)."""
    params = MODEL.init(jax.random.PRNGKey(0), X[:4])
    key = jax.random.PRNGKey(1)
    state = train.TrainState(params, params, None, key, np.asarray(0))
    train.save(tmp_path / "run", state, MODEL)
    return tmp_path / "run"


#: what happens to files on disk: cut short, emptied, zeroed, one byte flipped mid-file,
#: replaced by garbage
DAMAGE = {
    "truncated": lambda b: b[:50],
    "empty": lambda b: b"",
    "zeroed": lambda b: bytes(len(b)),
    "flipped": lambda b: b[: len(b) // 2] + bytes([b[len(b) // 2] ^ 0xFF]) + b[len(b) // 2 + 1 :],
    "garbage": lambda b: b"not a checkpoint\n" * 8,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_a_damaged_checkpoint_is_named_by_its_path(tmp_path, suffix, damage):
    path = _saved(tmp_path)
    damaged = path.with_name(path.name + suffix)
    damaged.write_bytes(DAMAGE[damage](damaged.read_bytes()))
    load = train.load if suffix == ".npz" else train.load_model
    # a flipped byte is caught too: by the zip's CRC in the .npz, as invalid UTF-8 in the .json
    with pytest.raises(ValueError, match=f"{damaged} is not a whole checkpoint") as error:
        load(path)
    assert error.value.__cause__ is not None  # the reader's own error, chained below


def test_a_deleted_checkpoint_is_file_not_found(tmp_path):
    path = _saved(tmp_path)
    path.with_name(path.name + ".npz").unlink()
    with pytest.raises(FileNotFoundError, match="run.npz"):
        train.load(path)
