"""Bad inputs raise an error naming the argument and what it accepts: never a silent
truncation, an inf/NaN result, or a failure deep inside JAX."""

import dataclasses
import functools
import math

import equinox as eqx
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo import _checks, data, presets, samplers, sdes, train

NET = functools.partial(zoo.ScoreNet, width=32, depth=2, embedding_dim=16, dropout=0.0)
VP = sdes.VP(0.1, 20.0)  # t in [1e-3, 1]
MODEL = zoo.transform(zoo.ScoreSDE, sde=VP, net=NET)
X = np.asarray(data.nine_gaussians().train_set(256))
KEY = jax.random.PRNGKey(0)


def _gaussian_score(x, t):
    """The exact score of N(0, 0.25 I) data: the flow is not trivial, so an adaptive solver
    needs tens of steps."""
    return -x / (jnp.exp(2.0 * VP.log_alpha(t)) * 0.25 + VP.variance(t))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(steps=2.7), TypeError, "steps must be an integer >= 1, got 2.7"),
        (dict(steps=0), ValueError, "steps must be an integer >= 1, got 0"),
        (dict(steps=2**31), ValueError, r"steps must be an integer <= 2\*\*31 - 1"),
        (dict(seeds=[0, 0]), ValueError, r"seeds must be distinct .* \[0\] repeated"),
        (dict(seeds=0), TypeError, r"seeds must be a sequence of integers, e.g. \[0, 1, 2\]"),
        (dict(seeds=[0.5]), TypeError, "seeds must be an integer, got 0.5"),
        # PRNGKey keeps a seed's low 32 bits: these would rerun seeds 0 and 2**32 - 1
        (dict(seeds=[0, 2**32]), ValueError, r"seeds must be an integer in \[0, 2\*\*32 - 1\]"),
        (dict(seeds=[-1]), ValueError, r"seeds must be an integer in \[0, 2\*\*32 - 1\]"),
        (dict(log_every=0), ValueError, "log_every must be an integer >= 1, got 0"),
        (dict(batch_size=2.5), TypeError, "batch_size must be an integer >= 1, got 2.5"),
        (dict(optimizer=optax.adamw), TypeError, "optimizer must be an optax.GradientTrans"),
    ],
)
def test_fit_refuses_bad_arguments(kwargs, error, match):
    kwargs = {"steps": 2, **kwargs}
    with pytest.raises(error, match=match):
        train.fit(MODEL, X, **kwargs)


@pytest.mark.parametrize("rate", [-1e-3, 0.0, float("nan")])
def test_a_learning_rate_that_cannot_train_is_refused(rate):
    message = f"learning_rate must be a finite number > 0, got {rate}"
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(presets.toy("vp"), learning_rate=rate)
    with pytest.raises(ValueError, match=message):
        train.default_optimizer(rate)


@pytest.mark.parametrize(
    "field, value, error",
    [("steps", 0, ValueError), ("steps", 2.5, TypeError), ("batch_size", 0, ValueError)],
)
def test_a_preset_refuses_counts_that_cannot_train(field, value, error):
    with pytest.raises(error, match=f"{field} must be an integer >= 1, got {value}"):
        dataclasses.replace(presets.toy("vp"), **{field: value})


def test_a_toy_preset_of_zero_steps_is_refused_when_made():
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        presets.toy("vp", steps=0)


def test_log_likelihood_names_a_model_passed_for_its_process():
    from zoo import likelihood

    with pytest.raises(
        TypeError, match="sde must be a zoo.sdes.SDE .for a model, model.sde., got Model"
    ):
        likelihood.log_likelihood(MODEL, _gaussian_score, jnp.zeros((3, 2)))


def test_a_dataset_refuses_a_seed_that_repeats_another_when_made():
    with pytest.raises(ValueError, match=r"train_seed must be an integer in \[0, 2\*\*32 - 1\]"):
        dataclasses.replace(data.nine_gaussians(), train_seed=2**32 + 12345)


@functools.cache
def _params():
    return MODEL.init(KEY, X[:4])


@pytest.mark.parametrize("t", [0.0, -0.5, 5.0, np.nan, np.array([0.5, 0.5, 0.5, 2.0])])
def test_score_refuses_a_concrete_time_outside_the_process(t):
    with pytest.raises(ValueError, match=r"t must lie in \[t_min, T\] = \[0.001, 1\]"):
        MODEL.score(_params(), X[:4], t)


def test_score_names_the_shapes_it_expects():
    with pytest.raises(ValueError, match=r"x must have shape \[batch, 2\] .* got \(4, 3\)"):
        MODEL.score(_params(), np.zeros((4, 3), np.float32), 0.5)
    with pytest.raises(ValueError, match=r"t must be a scalar or one time per example"):
        MODEL.score(_params(), X[:4], np.full(3, 0.5))


def test_params_of_another_model_are_named_with_the_shape_expected():
    wider = zoo.transform(zoo.ScoreSDE, sde=VP, net=functools.partial(NET, width=64)).init(
        KEY, X[:4]
    )
    message = r"params\[.*\] has shape \(64,\), this model expects \(32,\): params of another"
    for call in (
        lambda: MODEL.score(wider, X[:4], 0.5),
        lambda: MODEL.loss(wider, KEY, X[:4]),
        lambda: MODEL.sample(wider, KEY, (4,)),
    ):
        with pytest.raises(ValueError, match=message):
            call()


def test_a_traced_time_outside_the_process_fails_when_run():
    jitted = jax.jit(lambda t: MODEL.score(_params(), X[:4], t))
    with pytest.raises(Exception, match=r"t must lie in \[t_min, T\] = \[0.001, 1\]"):
        jax.block_until_ready(jitted(50.0))


def test_score_still_takes_traced_times():
    traced = jax.jit(lambda t: MODEL.score(_params(), X[:4], t))(0.5)
    np.testing.assert_allclose(traced, MODEL.score(_params(), X[:4], 0.5), rtol=1e-5, atol=1e-6)


def test_log_likelihood_refuses_non_finite_points():
    x = np.zeros((3, 2), np.float32)
    x[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN or inf values \(rows \[1\]\)"):
        zoo.log_likelihood(VP, _gaussian_score, x)


def test_log_likelihood_out_of_steps_names_max_steps():
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(eqx.EquinoxRuntimeError, match="log_likelihood: .* max_steps=2 steps"):
        zoo.log_likelihood(VP, _gaussian_score, x, max_steps=2)


def test_log_likelihood_out_of_steps_under_jit_is_raised_without_a_logged_traceback(caplog):
    # Under jit the check runs in a callback, whose failure JAX also logs with its traceback.
    x = np.zeros((3, 2), np.float32)
    fn = jax.jit(lambda x: zoo.log_likelihood(VP, _gaussian_score, x, max_steps=2).log_prob)
    with pytest.raises(jax.errors.JaxRuntimeError, match="log_likelihood: .* max_steps=2 steps"):
        fn(x)
    assert not [r for r in caplog.records if "callback failed" in r.getMessage()], caplog.text


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(max_steps=0), ValueError, "max_steps must be an integer >= 1, got 0"),
        (dict(max_steps=100.5), TypeError, "max_steps must be an integer >= 1, got 100.5"),
        (dict(steps=1), ValueError, "steps must be an integer >= 2, got 1"),
        (dict(steps=10.0), TypeError, "steps must be an integer >= 2, got 10.0"),
        (dict(rtol=-1e-3), ValueError, "rtol must be a finite number > 0, got -0.001"),
        (dict(atol=float("nan")), ValueError, "atol must be a finite number > 0, got nan"),
        (dict(trajectory_points=-1), ValueError, "trajectory_points must be an integer >= 0"),
        (dict(solver="tsit5"), TypeError, "solver must be a Diffrax solver"),
    ],
)
def test_probability_flow_refuses_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        samplers.ProbabilityFlow(**kwargs)


def test_probability_flow_out_of_steps_says_how_many_to_allow():
    adaptive = samplers.ProbabilityFlow(max_steps=3)
    raise_it = r"ProbabilityFlow: the ODE solver took max_steps=3 steps .* \(e.g. to 12\)"
    with pytest.raises(eqx.EquinoxRuntimeError, match=raise_it):
        adaptive.sample(VP, _gaussian_score, KEY, (8, 2))
    with pytest.raises(eqx.EquinoxRuntimeError, match=raise_it):  # through a model's jit too
        MODEL.sample(_params(), KEY, (8,), adaptive)
    grid = samplers.ProbabilityFlow(steps=20, max_steps=4)
    with pytest.raises(ValueError, match=r"takes 19 solver steps, .* raise max_steps to 19"):
        grid.sample(VP, _gaussian_score, KEY, (8, 2))
    enough = samplers.ProbabilityFlow(steps=20, max_steps=19, denoise=False)
    assert int(enough.sample(VP, _gaussian_score, KEY, (8, 2)).nfe) > 0


@pytest.mark.parametrize(
    "make",
    [
        lambda n: zoo.DPMSolverPP(steps=n),
        lambda n: zoo.IPNDM(steps=n),
        lambda n: samplers.DDIM(steps=n),
        lambda n: samplers.EDMHeun(steps=n),
        lambda n: samplers.ReverseSDE(steps=n),
        lambda n: samplers.AnnealedLangevin(steps_per_level=n),
        lambda n: presets.toy("vp", steps=n),
    ],
    ids=["dpm", "ipndm", "ddim", "edm", "sde", "langevin", "preset"],
)
def test_a_count_beyond_int32_is_refused_when_made(make):
    # a table or grid of 2**40 steps would be a MemoryError, not a message
    with pytest.raises(ValueError, match=r"must be an integer <= 2\*\*31 - 1 \(an int32 count\)"):
        make(2**40)


#: every sampler of the public API, found rather than listed: a new one is walked too
SAMPLERS = [
    value
    for value in map(functools.partial(getattr, zoo), zoo.__all__)
    if isinstance(value, type) and issubclass(value, samplers.Sampler)
]


def _made_with_defaults(module):
    """The public dataclasses of ``module`` that can be made from their defaults alone."""
    for name in module.__all__:
        cls = getattr(module, name)
        if isinstance(cls, type) and dataclasses.is_dataclass(cls):
            try:
                _make(cls, {})
            except TypeError:  # required arguments (a mixture's means, a schedule's betas)
                continue
            yield cls


def _make(cls, options):
    if issubclass(cls, hk.Module):  # a Haiku module is made inside a transform
        return hk.transform(lambda: cls(**options)).init(None)
    return cls(**options)


#: the walked constructors: the samplers, the networks, the datasets
WALKED = [
    *SAMPLERS,
    *_made_with_defaults(zoo.nets),
    *_made_with_defaults(data),
    *_made_with_defaults(zoo.images),
]
#: values of the wrong kind for an option annotated bool, int or float
WRONG = {
    bool: ["yes", 1],
    int: [2.5, True, -1, 2**40],
    float: [math.nan, math.inf, True, "0.5"],
}


def _options():
    for cls in WALKED:
        kinds_of = _checks.field_kinds(cls)
        for field in dataclasses.fields(cls):
            kind = next((k for k in (bool, int, float) if k in kinds_of[field.name]), None)
            for value in WRONG.get(kind, []) if field.init else []:
                yield pytest.param(
                    cls, field.name, value, id=f"{cls.__name__}-{field.name}-{value!r}"
                )


def test_the_walk_reaches_every_sampler_network_and_dataset():
    walked = {(p.values[0], p.values[1]) for p in _options()}
    concrete = {
        cls
        for module in (samplers, zoo.multistep)
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, samplers.Sampler)
        and dataclasses.is_dataclass(cls)
    }  # fmt: skip
    assert set(SAMPLERS) == concrete
    assert {cls for cls, _ in walked} == set(WALKED)
    for cls, name in [(zoo.Euler, "steps"), (zoo.UniPC, "order"), (zoo.UNet, "time_scale"),
                      (zoo.ScoreNet, "layer_norm"), (data.Moons, "train_seed"),
                      (zoo.images.Digits, "dequantize")]:  # fmt: skip
        assert (cls, name) in walked


@pytest.mark.parametrize("cls, name, value", list(_options()))
def test_every_option_refuses_a_value_of_the_wrong_kind_when_made(cls, name, value):
    """A truthy string for a flag, a float, bool, negative or over-int32 count, a NaN, inf or
    string for a real: refused when made, by the option's name (never read as something else,
    never failing later inside JAX)."""
    with pytest.raises((TypeError, ValueError), match=rf"^{name} must"):
        _make(cls, {name: value})


@pytest.mark.parametrize("name, value", [("rtol", -1e-3), ("atol", 0.0), ("rtol", math.nan)])
def test_likelihood_tolerances_are_checked_when_the_function_is_made(name, value):
    score = _gaussian_score
    for make in (
        lambda: zoo.likelihood.likelihood_fn(MODEL, **{name: value}),
        lambda: zoo.likelihood.exact_likelihood_fn(VP, score, **{name: value}),
        lambda: zoo.likelihood.log_likelihood(VP, score, X[:4], **{name: value}),
    ):
        with pytest.raises(ValueError, match=rf"^{name} must be a finite number > 0"):
            make()


def test_an_option_is_its_enum_member_or_its_string_and_one_cache_key():
    from zoo.models import Coupling, TimeSampling, Weighting

    names = dict(weighting="likelihood", time_sampling="importance", coupling="ot")
    members = dict(
        weighting=Weighting.LIKELIHOOD, time_sampling=TimeSampling.IMPORTANCE, coupling=Coupling.OT
    )
    by_name = zoo.transform(zoo.ScoreSDE, sde=zoo.VP(), **names)
    by_member = zoo.transform(zoo.ScoreSDE, sde=zoo.VP(), **members)
    assert repr(by_name.config) == repr(by_member.config)
    with pytest.raises(ValueError, match=r"weighting must be one of \('simple', 'likelihood', "):
        zoo.transform(zoo.ScoreSDE, sde=zoo.VP(), weighting="Likelihood")
