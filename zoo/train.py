"""Training: fused in ``lax.scan`` over steps, vmapped over runs (seeds x datasets), the run
axis sharded over all devices; EMA of parameters; runs that diverge are named. Checkpoints
(:mod:`zoo.checkpoints`) hold everything a run needs to go on; ``save``, ``load`` and
``load_model`` are also here, beside :func:`fit`, which continues a loaded run.

Each call of the step function from Python costs a dispatch, so ``fit`` fuses ``log_every``
steps in one ``lax.scan`` and vmaps the runs inside it; one call trains every seed (and every
dataset of one shape) of a model at once, and ``zoo-bench speed`` measures it against
a minimal ``lax.scan`` loop of the same loss and optimizer::

    state, curve = zoo.train.fit(model, zoo.data.nine_gaussians(), steps=20_000, seeds=[0, 1, 2])
    params = zoo.train.run_params(state, 0)      # EMA parameters of the first run

a class-conditional model (``num_classes`` set) trains on labelled examples, read from the
dataset (``train_labels``, as :class:`zoo.images.Digits` has) or given beside an array::

    state, curve = zoo.train.fit(model, images, labels=classes, steps=5_000)

and a saved run continues where it stopped (``N`` steps, save, load, ``M`` steps equal ``N + M``
steps)::

    zoo.train.save("runs/ddpm", jax.tree_util.tree_map(lambda a: a[0], state), model)
    state, curve = zoo.train.fit(model, data, steps=10_000, state=zoo.train.load("runs/ddpm"))
"""

from __future__ import annotations

import functools
import math
import numbers
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from zoo._checks import INT32_MAX, MAX_SEED, check_integer, check_positive, check_seed
from zoo.checkpoints import load, load_model, save
from zoo.models import Model

__all__ = [
    "MAX_SEED",
    "TrainState",
    "SavedOptState",
    "DivergenceWarning",
    "fit",
    "diverged",
    "run_params",
    "save",
    "load",
    "load_model",
    "default_optimizer",
]


class TrainState(NamedTuple):
    """Everything a run needs to go on; every leaf has a leading run axis after :func:`fit`,
    none after :func:`load` (one run)."""

    params: Any
    ema_params: Any
    opt_state: Any
    key: jax.Array
    step: jax.Array


class SavedOptState(NamedTuple):
    """An optimizer state as :func:`load` reads it: its leaves in ``jax.tree_util`` order,
    without the optimizer's structure, which only the optimizer knows. :func:`fit` puts them
    back into the structure of its ``optimizer.init(params)``."""

    leaves: tuple


class DivergenceWarning(RuntimeWarning):
    """Warned by :func:`fit` when some of its runs diverged (see :func:`diverged`)."""


def default_optimizer(learning_rate: float = 1e-3) -> optax.GradientTransformation:
    """The case study's ``adamw(1e-3)`` with optax's default weight decay."""
    return optax.adamw(check_positive(learning_rate, "learning_rate"))


def _ema_decay(steps_done, decay, every: int = 1):
    """The decay of the EMA update after ``steps_done`` steps that stands for the ``every``
    steps before it: :math:`\\prod_{s = n - k}^{n - 1} \\min(d, (1 + s)/(10 + s))`, the
    product of the per-step decays, so an update every ``k`` steps keeps the time constant
    (and the warm-up) of an update every step."""
    # Warm-up (as in TF's ExponentialMovingAverage with num_updates): early parameters,
    # far from the optimum, are forgotten quickly in short runs.
    s = steps_done - every + jnp.arange(every)
    return jnp.prod(jnp.minimum(decay, (1.0 + s) / (10.0 + s)))


def _as_datasets(data, num_train: int, event_ndim: int) -> np.ndarray:
    """``[D, N, *event]`` training sets from a toy distribution, an array or a list of either.

    An array is a stack of datasets when it has two more axes than an example
    (``event_ndim``), else one dataset: ``[N, 8, 8, 1]`` images are one set, not eight."""
    items = data if isinstance(data, (list, tuple)) else [data]
    arrays = []
    for item in items:
        if hasattr(item, "train_set"):
            arrays.append(np.asarray(item.train_set(num_train)))
        else:
            arr = _as_float32(item)
            is_stack = arr.ndim == event_ndim + 2 and not isinstance(data, (list, tuple))
            arrays.extend(arr if is_stack else [arr])
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"data: every dataset must have the same shape, got {sorted(shapes)}")
    stacked = np.stack(arrays).astype(np.float32)
    if stacked.ndim < 3 or stacked.shape[1] < 1:
        raise ValueError(
            f"data must be [N, *event_shape] (or a stack of such), got {stacked.shape[1:]}"
        )
    if not np.all(np.isfinite(stacked)):
        raise ValueError("data contains NaN or inf values")
    return stacked


def _as_float32(item) -> np.ndarray:
    """``item`` as float32; ``ValueError`` if it holds finite values beyond float32's range,
    which the cast would make inf (named here, not taken for a diverging model)."""
    raw = np.asarray(item)
    if raw.dtype.kind == "f" and raw.dtype.itemsize > 4:
        finite = np.abs(raw[np.isfinite(raw)])
        largest = float(finite.max()) if finite.size else 0.0
        if largest > np.finfo(np.float32).max:
            raise ValueError(
                f"data has values up to {largest:.3g}, beyond the range of float32 "
                f"(+-{np.finfo(np.float32).max:.3g}) that the model computes in; rescale it "
                "(the processes assume data of about unit scale)"
            )
    return np.asarray(raw, dtype=np.float32)


#: the largest |x| of data that a divergence warning does not blame: the processes and the
#: presets' learning rates assume data of about unit scale
UNIT_SCALE = 1e3


def _as_labels(labels, data, datasets: np.ndarray, model: Model, num_train: int):
    """``[D, N]`` int32 classes of ``datasets`` for a conditional model (``labels`` given, or
    the dataset's ``train_labels(num_train)``), ``None`` for an unconditional one."""
    num_classes = model.config.get("num_classes")
    if num_classes is None:
        if labels is not None:
            raise ValueError(
                "labels given for an unconditional model; transform it with num_classes=K "
                "to train by class"
            )
        return None
    if labels is None:
        if not hasattr(data, "train_labels"):
            raise ValueError(
                f"a conditional model (num_classes={num_classes}) needs labels: pass "
                "labels=[N] integer classes of the examples (or a dataset with train_labels)"
            )
        labels = data.train_labels(num_train)
    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be integer classes, got dtype {arr.dtype}")
    arr = arr.reshape((1, -1)) if arr.ndim == 1 else arr
    if arr.shape != datasets.shape[:2] and arr.shape != (1, datasets.shape[1]):
        raise ValueError(
            f"labels must hold one class per example, shape [{datasets.shape[1]}] (or "
            f"[{len(datasets)}, {datasets.shape[1]}] for a stack of datasets), got "
            f"{np.shape(labels)}"
        )
    if arr.min() < 0 or arr.max() >= num_classes:
        raise ValueError(
            f"labels must lie in 0..{num_classes - 1} (num_classes={num_classes}), got values "
            f"in {arr.min()}..{arr.max()}"
        )
    return np.broadcast_to(arr, datasets.shape[:2]).astype(np.int32)


def _run_sharding(num_runs: int):
    """Shard the leading run axis over this process's devices when it divides evenly; else
    replicate. (Under ``jax.distributed`` the processes split the runs between them.)"""
    devices = jax.local_devices()
    if len(devices) == 1 or num_runs % len(devices):
        return None
    return NamedSharding(Mesh(np.asarray(devices), ("runs",)), PartitionSpec("runs"))


def _as_seeds(seeds) -> list[int]:
    if isinstance(seeds, (str, bytes, numbers.Number)) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"seeds must be a sequence of integers, e.g. [0, 1, 2], got {seeds!r}")
    seeds = [check_seed(s, "seeds") for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(
            f"seeds must be distinct (a repeated seed trains the same run twice), got {seeds}: "
            f"{repeated} repeated"
        )
    return seeds


def fit(
    model: Model,
    data,
    *,
    steps: int,
    labels=None,
    seeds: Sequence[int] = (0,),
    batch_size: int = 64,
    optimizer: optax.GradientTransformation | None = None,
    ema_decay: float = 0.999,
    ema_every: int = 10,
    num_train: int = 10_000,
    log_every: int = 100,
    progress: bool | str = False,
    state: TrainState | None = None,
    keep_at: Sequence[int] | None = None,
) -> tuple[TrainState, np.ndarray] | tuple[TrainState, np.ndarray, dict[int, Any]]:
    """Train ``len(datasets) * len(seeds)`` runs of ``model`` at once.

    ``data``: a toy distribution (its ``train_set(num_train)`` is used), an array
    ``[N, *event]``, or a stack ``[D, N, *event]`` / list of datasets of one shape. Run
    ``r`` trains on dataset ``r // len(seeds)`` with seed ``seeds[r % len(seeds)]`` (distinct
    integers in ``[0, MAX_SEED]``: ``PRNGKey`` keeps 32 bits of a seed). Each step draws a
    minibatch uniformly from its training set; ``steps`` is at most ``2**31 - 1`` (an int32
    step counter).

    ``labels``: for a class-conditional model (``num_classes`` set), the integer class of
    each example, ``[N]`` (or ``[D, N]`` for a stack); ``None`` reads them from a dataset with
    ``train_labels(num_train)`` (e.g. :func:`zoo.images.digits`). Each minibatch takes its
    examples' labels, which the model drops to the null class at its ``p_uncond`` rate.

    ``ema_decay``, ``ema_every``: the EMA of the parameters is updated after every
    ``ema_every``-th step (counted from the run's first step), each time with the product
    :math:`D` of the ``ema_every`` per-step decays :math:`\\min(d, (1 + s)/(10 + s))` it stands
    for, :math:`\\bar\\theta \\leftarrow D \\bar\\theta + (1 - D) \\theta`: the time constant
    (``1 / (1 - ema_decay)`` steps) and warm-up of an update every step, at a tenth of its
    cost by default. After ``N`` steps the EMA holds the parameters up to the last multiple of
    ``ema_every``; ``ema_every=1`` updates it every step.

    ``progress``: a progress bar of the steps (labelled with the string, if one), on a
    terminal or in a notebook only: none where stderr is a file.

    Returns the final state (leading run axis) and the loss curve ``[runs, blocks]``: the mean
    loss of each block of ``log_every`` steps (a last, shorter block holds the remainder of
    ``steps``). Runs whose curve or parameters :func:`diverged` are named in a
    :class:`DivergenceWarning`.

    ``state`` continues training: a state from :func:`fit` (one leading entry per run of this
    call) or one run from :func:`load` (then ``data`` is one dataset and ``seeds`` one seed).
    Its step count, key, optimizer state and EMA go on (so does the EMA warm-up); ``seeds``
    then only count the runs. With the same model, data, ``batch_size``, ``optimizer`` and
    ``ema_decay``, ``N`` steps and then ``M`` more from the returned (or saved and loaded)
    state give the parameters of ``N + M`` steps in one call, and, when ``log_every`` divides
    ``N``, the same curve.

    ``keep_at``: steps of this call (multiples of ``log_every``, or ``steps`` itself) at which
    to keep every run's EMA parameters, e.g. ``(1000, 2000, 4000)`` for quality against
    training steps. With it, ``fit`` returns a third value, ``{step: ema_params}`` in
    increasing order, each tree with the leading run axis; the state and curve are those of a
    call without it. Nothing is recompiled: the kept steps are ends of the ``log_every``
    blocks that are trained anyway, so the parameters kept at step ``N`` are those of a
    separate ``N``-step call with the same arguments::

        state, curve, kept = zoo.train.fit(model, data, steps=8000, keep_at=(1000, 2000, 4000))
        params = jax.tree_util.tree_map(lambda a: a[0], kept[2000])  # run 0 at step 2000
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a zoo.Model from zoo.transform, got {model!r}")
    # the step counter (and the EMA warm-up read from it) is int32
    steps = check_integer(steps, "steps", maximum=INT32_MAX)
    batch_size = check_integer(batch_size, "batch_size")
    log_every = check_integer(log_every, "log_every")
    num_train = check_integer(num_train, "num_train")
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay}")
    ema_every = check_integer(ema_every, "ema_every")
    seeds = _as_seeds(seeds)
    keep = () if keep_at is None else _as_keep_steps(keep_at, steps, log_every)
    optimizer = default_optimizer() if optimizer is None else optimizer
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"optimizer must be an optax.GradientTransformation (e.g. optax.adamw(1e-3)), "
            f"got {optimizer!r}"
        )
    datasets = _as_datasets(data, num_train, len(model.event_shape))
    if datasets.shape[2:] != model.event_shape:
        raise ValueError(
            f"data: examples have shape {datasets.shape[2:]}, the model expects "
            f"event_shape={model.event_shape}"
        )
    run_labels = _as_labels(labels, data, datasets, model, num_train)
    num_runs = len(datasets) * len(seeds)
    # One dataset is shared by every run (in_axes None: one gather from one array, not a copy
    # per run); several are repeated to one per run.
    shared = len(datasets) == 1
    run_data = datasets[0] if shared else np.repeat(datasets, len(seeds), axis=0)
    if run_labels is not None:
        run_labels = run_labels[0] if shared else np.repeat(run_labels, len(seeds), axis=0)
    run_keys = jnp.stack([jax.random.PRNGKey(s) for _ in datasets for s in seeds])

    def init(key, x):
        init_key, key = jax.random.split(key)
        params = model.init(init_key, x[:batch_size])
        return TrainState(params, params, optimizer.init(params), key, jnp.zeros((), jnp.int32))

    def train_step(x, y, state, _):
        key, batch_key, loss_key = jax.random.split(state.key, 3)
        index = jax.random.randint(batch_key, (batch_size,), 0, x.shape[0])
        batch, batch_labels = x[index], None if y is None else y[index]
        loss, grads = jax.value_and_grad(
            lambda p: jnp.mean(model.loss(p, loss_key, batch, batch_labels))
        )(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        done = state.step + 1

        def update_ema():  # ema <- D * ema + (1 - D) * params
            decay = _ema_decay(done, ema_decay, ema_every)
            return optax.incremental_update(params, state.ema_params, 1.0 - decay)

        if ema_every == 1:
            ema = update_ema()
        else:  # by the global step count, so N + M steps resumed equal N + M in one call
            ema = jax.lax.cond(done % ema_every == 0, update_ema, lambda: state.ema_params)
        return TrainState(params, ema, opt_state, key, done), loss

    def one_run(x, y, state, length):
        step = functools.partial(train_step, x, y)
        state, losses = jax.lax.scan(step, state, None, length=length)
        return state, jnp.mean(losses)

    x_axis = None if shared else 0
    y_axis = None if run_labels is None else x_axis

    @functools.partial(jax.jit, static_argnums=3)
    def train_block(x, y, state, length):
        if num_runs == 1:
            # No vmap over a run axis of size 1: on a 2-core CPU, XLA's code for the batched
            # matmuls and gather of a vmapped step took ~1.3x the time of the unbatched step.
            one = jax.tree_util.tree_map(lambda a: a[0], state)
            first = shared or y is None
            state, loss = one_run(x if shared else x[0], y if first else y[0], one, length)
            return jax.tree_util.tree_map(lambda a: a[None], (state, loss))
        return jax.vmap(one_run, in_axes=(x_axis, y_axis, 0, None))(x, y, state, length)

    sharding = _run_sharding(num_runs)
    put = (lambda a: jax.device_put(a, sharding)) if sharding is not None else jnp.asarray
    if shared and sharding is not None:  # every device holds the one dataset
        run_data = jax.device_put(run_data, NamedSharding(sharding.mesh, PartitionSpec()))
    else:
        run_data = jnp.asarray(run_data) if shared else put(run_data)
    if run_labels is not None:
        run_labels = jnp.asarray(run_labels) if shared or sharding is None else put(run_labels)
    init_runs = jax.vmap(init, in_axes=(0, x_axis))
    if state is None:
        state = jax.jit(init_runs)(put(run_keys), run_data)
    else:
        fresh = jax.eval_shape(init_runs, run_keys, run_data)
        state = jax.tree_util.tree_map(put, _resumed(state, fresh, num_runs))
    blocks = [log_every] * (steps // log_every) + ([steps % log_every] if steps % log_every else [])
    curve, kept, done = [], {}, 0
    # A string names the bar (e.g. the benchmark's "vp", "subvp", "ve": all three are ScoreSDE).
    label = progress if isinstance(progress, str) else model.family.__name__
    bar = _progress(steps, bool(progress), f"train {label} x{num_runs}")
    for length in blocks:
        state, loss = train_block(run_data, run_labels, state, length)
        curve.append(loss)
        done += length
        if done in keep:  # no copy needed: train_block makes new arrays, donates none
            kept[done] = state.ema_params
        if bar is not None:
            bar.update(length)
            bar.set_postfix(loss=f"{float(jnp.mean(loss)):.4f}")
    if bar is not None:
        bar.close()
    curve = np.asarray(jnp.stack(curve, axis=1))
    bad = np.flatnonzero(diverged(curve, state))
    if len(bad):
        runs = ", ".join(
            f"run {r} (dataset {r // len(seeds)}, seed {seeds[r % len(seeds)]})" for r in bad[:5]
        )
        largest = float(np.max(np.abs(datasets)))
        advice = (
            f"the data's largest |x| is {largest:.3g}: the processes assume data of about unit "
            "scale, so standardise it"
            if largest > UNIT_SCALE
            else "lower the learning rate"
        )
        warnings.warn(
            f"fit: {len(bad)} of {num_runs} runs diverged: {runs}{', ...' if len(bad) > 5 else ''}"
            f" (loss not finite or blown up, see zoo.train.diverged); {advice}",
            DivergenceWarning,
            stacklevel=2,
        )
    if keep_at is None:
        return state, curve
    return state, curve, kept


def _as_keep_steps(keep_at, steps: int, log_every: int) -> tuple[int, ...]:
    """``keep_at`` as sorted distinct steps, each the end of one of :func:`fit`'s blocks
    (a multiple of ``log_every`` or ``steps`` itself), or a clear error."""
    if isinstance(keep_at, (str, bytes, numbers.Number)) or not hasattr(keep_at, "__iter__"):
        raise TypeError(f"keep_at must be a sequence of steps, e.g. (1000, 2000), got {keep_at!r}")
    keep = [check_integer(k, "keep_at") for k in keep_at]
    if len(set(keep)) != len(keep):
        raise ValueError(f"keep_at must name distinct steps, got {keep}")
    for k in keep:
        if k > steps or (k % log_every and k != steps):
            raise ValueError(
                f"keep_at: step {k} is not the end of a training block; keep steps are "
                f"multiples of log_every={log_every} up to steps={steps}, or steps itself "
                "(other steps would need other block lengths, each compiled apart)"
            )
    return tuple(sorted(keep))


def _resumed(state: TrainState, fresh: TrainState, num_runs: int) -> TrainState:
    """``state`` with a leading run axis and its optimizer state in the structure of ``fresh``
    (the shapes of a new state), or a clear error saying what does not match."""
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a zoo.train.TrainState (from fit or load), got {state!r}")
    if np.ndim(state.step) == 0:
        if num_runs != 1:
            raise ValueError(
                f"state is one run (as zoo.train.load returns) but data x seeds make {num_runs} "
                "runs: continue it with one dataset and one seed"
            )
        state = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], state)
    elif np.shape(state.step) != (num_runs,):
        raise ValueError(
            f"state holds {np.shape(state.step)[0]} runs but data x seeds make {num_runs}: "
            "continue it with the data and seeds it was trained with"
        )
    model_hint = "it was trained with another model or config"
    for name, hint in [
        ("params", model_hint),
        ("ema_params", model_hint),
        ("key", "keys are jax.random.PRNGKey"),
    ]:
        _check_tree(getattr(state, name), getattr(fresh, name), f"state.{name}", hint)
    opt_state = state.opt_state
    if opt_state is None:
        raise ValueError(
            "state has no optimizer state (opt_state is None, as in a checkpoint written before "
            "save kept it): continuing would restart the optimizer"
        )
    optimizer_hint = "pass the optimizer the state was trained with"
    if isinstance(opt_state, SavedOptState):
        expected = jax.tree_util.tree_leaves(fresh.opt_state)
        _check_leaves(
            jax.tree_util.tree_leaves(opt_state), expected, "state.opt_state", optimizer_hint
        )
        opt_state = jax.tree_util.tree_unflatten(
            jax.tree_util.tree_structure(fresh.opt_state),
            [jnp.asarray(a, b.dtype) for a, b in zip(opt_state.leaves, expected, strict=True)],
        )
    _check_tree(opt_state, fresh.opt_state, "state.opt_state", optimizer_hint)
    return state._replace(opt_state=opt_state)


def _check_tree(tree, expected, name, hint):
    if jax.tree_util.tree_structure(tree) != jax.tree_util.tree_structure(expected):
        raise ValueError(f"{name} does not have the structure this fit expects: {hint}")
    _check_leaves(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(expected), name, hint)


def _check_leaves(leaves, expected, name, hint):
    if len(leaves) != len(expected):
        raise ValueError(
            f"{name} has {len(leaves)} arrays, this fit expects {len(expected)}: {hint}"
        )
    for a, b in zip(leaves, expected, strict=True):
        if np.shape(a) != b.shape:
            raise ValueError(
                f"{name} holds an array of shape {np.shape(a)} where this fit expects "
                f"{b.shape}: {hint}"
            )


def diverged(
    curve,
    state: TrainState | None = None,
    *,
    factor: float = 100.0,
    floor: float = 1.0,
    ceiling: float = 1e6,
) -> np.ndarray:
    r"""Which runs diverged: ``[runs]`` booleans from a loss curve ``[runs, blocks]`` as
    :func:`fit` returns it (a 1-D curve is one run) and, optionally, the runs' ``state``.

    Run ``r`` diverged when a block mean :math:`L_k` of its curve is not finite, or exceeds
    ``ceiling``, or rises far above the run's best before it,

    .. math:: L_k > \max\big(\mathrm{factor} \cdot \min_{j<k} L_j,\ \mathrm{floor}\big),

    or when a parameter of its ``state`` is not finite. The losses are in noise units, where
    a network predicting no noise scores :math:`E_t[\lambda(t)]` (1 for the simple
    weighting): ``ceiling`` is far above any untrained network (a blow-up in the first block
    has no best before it), and ``floor`` keeps a rise from a very small best from counting.
    """
    curve = np.asarray(curve, np.float64)
    if curve.ndim == 1:
        curve = curve[None]
    if curve.ndim != 2:
        raise ValueError(f"curve must be [runs, blocks] (as fit returns), got shape {curve.shape}")
    bad = ~np.all(np.isfinite(curve), axis=1) | np.any(curve > ceiling, axis=1)
    best_before = np.fmin.accumulate(curve, axis=1)[:, :-1]  # NaN-ignoring running minimum
    with np.errstate(invalid="ignore", over="ignore"):
        bad |= np.any(curve[:, 1:] > np.maximum(factor * best_before, floor), axis=1)
    if state is not None:
        runs = 1 if np.ndim(state.step) == 0 else np.shape(state.step)[0]
        if runs != len(curve):
            raise ValueError(f"state holds {runs} runs, the curve {len(curve)}")
        finite = [
            jnp.all(jnp.isfinite(jnp.reshape(leaf, (runs, -1))), axis=1)
            for leaf in jax.tree_util.tree_leaves(state.params)
        ]
        bad |= ~np.asarray(jnp.all(jnp.stack(finite), axis=0))
    return bad


def _progress(total, enabled, desc):
    """A tqdm bar on a terminal or in a notebook; none where stderr is a file, whose log
    would fill with the bar's carriage-return redraws."""
    if not enabled:
        return None
    from tqdm.auto import tqdm
    from tqdm.notebook import tqdm as notebook

    if not issubclass(tqdm, notebook) and not sys.stderr.isatty():
        return None
    return tqdm(total=total, desc=desc, unit="step", leave=False)


def run_params(state: TrainState, run: int = 0, ema: bool = True):
    """Parameters of run ``run`` (EMA by default) of a state from :func:`fit` (leading run
    axis), or of the one run a state from :func:`load` holds (``run`` 0)."""
    tree = state.ema_params if ema else state.params
    run = check_integer(run, "run", minimum=None)
    runs = 1 if np.ndim(state.step) == 0 else np.shape(state.step)[0]
    if not -runs <= run < runs:
        raise IndexError(f"run must lie in [0, {runs}) for a state of {runs} runs, got {run}")
    if np.ndim(state.step) == 0:  # one run, as load returns it: no run axis to index
        return tree
    return jax.tree_util.tree_map(lambda a: a[run], tree)


def num_parameters(params) -> int:
    return sum(math.prod(np.shape(a)) for a in jax.tree_util.tree_leaves(params))
