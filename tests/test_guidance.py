"""Class-conditional models and classifier-free guidance (zoo.guidance): the guided score is
(1 + w) s_c - w s_null for every family, and a tiny conditional model on the digits draws the
asked class far more often than chance."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo import guidance, images, presets, samplers, sdes

TINY_NET = functools.partial(zoo.ScoreNet, width=16, embedding_dim=16, dropout=0.0)


def test_guided_score_mixes_a_stub_conditional_and_unconditional_score():
    calls = []

    def stub(x, t, labels):  # conditional output depends on the label; null = 3
        calls.append(x.shape[0])
        return x * (labels[:, None] + 1.0) + jnp.reshape(t, (-1, 1))

    x = jax.random.normal(jax.random.PRNGKey(0), (5, 2))
    labels = jnp.array([0, 1, 2, 0, 1])
    t = jnp.float32(0.25)
    cond, uncond = stub(x, t, labels), stub(x, t, jnp.full(5, 3))
    for w in (0.5, 1.0, 4.0):
        guided = guidance.guided_score(stub, labels, w, null_label=3)(x, t)
        np.testing.assert_allclose(guided, (1 + w) * cond - w * uncond, rtol=1e-6)
    # w = 0 is the conditional model: one call of the plain batch (a Python 0), or the same
    # values from the doubled batch (an array 0).
    calls.clear()
    np.testing.assert_array_equal(guidance.guided_score(stub, labels, 0, 3)(x, t), cond)
    assert calls == [5]
    np.testing.assert_allclose(guidance.guided_score(stub, labels, jnp.float32(0), 3)(x, t), cond)
    # Per-example times double with the batch.
    ts = jnp.linspace(0.1, 0.9, 5)
    guided = guidance.guided_score(stub, labels, 2.0, 3)(x, ts)
    np.testing.assert_allclose(guided, 3 * stub(x, ts, labels) - 2 * stub(x, ts, jnp.full(5, 3)))


@pytest.mark.parametrize("family", presets.FAMILIES)
def test_every_family_takes_labels_and_a_guidance_scale(family):
    # Eagerly: a tiny network runs in milliseconds, its compilation would take seconds.
    with jax.disable_jit():
        _check_guided_family(family)


def _check_guided_family(family):
    model = presets.FAMILY_TABLE[family].transform(TINY_NET, event_shape=(2,))
    model = zoo.transform(model.family, **model.config, num_classes=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 2))
    params = model.init(jax.random.PRNGKey(1), x)
    labels, null = jnp.array([0, 1, 2, 0, 1, 2]), jnp.full(6, 3)
    t = 0.5 * model.sde.T
    cond, uncond = model.score(params, x, t, labels), model.score(params, x, t, null)
    assert not np.allclose(cond, uncond, atol=1e-3)  # the label reaches the network
    np.testing.assert_allclose(model.score(params, x, t, labels, guidance=0.0), cond)
    guided = model.score(params, x, t, labels, guidance=2.0)
    np.testing.assert_allclose(guided, 3 * cond - 2 * uncond, rtol=1e-4, atol=1e-4)
    out = model.sample(params, jax.random.PRNGKey(2), (6,), samplers.DDIM(steps=2), labels, 1.5)
    assert out.x.shape == (6, 2) and np.all(np.isfinite(out.x))
    assert model.loss(params, jax.random.PRNGKey(3), x, labels).shape == (6,)


def test_label_dropout_at_rate_one_trains_the_unconditional_model():
    with jax.disable_jit():
        _check_label_dropout()


def _check_label_dropout():
    # The shapes of the per-family test's DDPM, so that the eager ops are already compiled.
    schedule = presets.FAMILY_TABLE["ddpm"].process
    config = dict(schedule=schedule, net=TINY_NET, num_classes=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 2))
    labels = jnp.array([0, 1, 2, 0, 1, 2])
    always = zoo.transform(zoo.DDPM, **config, p_uncond=1.0)
    never = zoo.transform(zoo.DDPM, **config, p_uncond=0.0)
    params = always.init(jax.random.PRNGKey(1), x)
    key = jax.random.PRNGKey(2)
    unlabelled = always.loss(params, key, x)  # no labels: every example is the null class
    np.testing.assert_array_equal(always.loss(params, key, x, labels), unlabelled)
    assert not np.allclose(never.loss(params, key, x, labels), unlabelled)
    # The conditional network is the unconditional one plus its label embedding.
    plain = zoo.transform(zoo.DDPM, schedule=schedule, net=TINY_NET)
    plain_params = plain.init(jax.random.PRNGKey(1), x)
    extra = {k: v for k, v in params.items() if k not in plain_params}
    assert list(extra) == ["ddpm/~_params/net/score_net/label_in"]
    assert extra["ddpm/~_params/net/score_net/label_in"]["w"].shape == (4, 16)


def test_bad_labels_and_guidance_are_named():
    # The per-family test's network and shapes, initialised eagerly: its ops are compiled.
    schedule = sdes.ddpm_linear(1e-3, 0.02, 10)
    cond = zoo.transform(zoo.DDPM, schedule=schedule, net=TINY_NET, num_classes=3)
    plain = zoo.transform(zoo.DDPM, schedule=schedule, net=TINY_NET)
    x = jnp.zeros((6, 2))
    with jax.disable_jit():
        params = cond.init(jax.random.PRNGKey(0), x)
        plain_params = plain.init(jax.random.PRNGKey(0), x)
    key, labels = jax.random.PRNGKey(1), jnp.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match="guidance must be a finite scalar >= 0"):
        cond.sample(params, key, (6,), labels=labels, guidance=-1.0)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.3"):
        cond.score(params, x, 0.5, jnp.array([0, 1, 4, 0, 1, 2]))
    with pytest.raises(ValueError, match="guidance needs labels"):
        cond.sample(params, key, (6,), guidance=2.0)
    with pytest.raises(ValueError, match="labels given to an unconditional model"):
        plain.score(plain_params, x, 0.5, labels)
    with pytest.raises(ValueError, match="needs labels"):
        zoo.train.fit(cond, np.zeros((16, 2)), steps=1)
    with pytest.raises(ValueError, match="labels given for an unconditional model"):
        zoo.train.fit(plain, np.zeros((16, 2)), labels=np.zeros(16, int), steps=1)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2"):
        zoo.train.fit(cond, np.zeros((16, 2)), labels=np.full(16, 3), steps=1)
    with pytest.raises(ValueError, match=r"one class per example, shape \[16\]"):
        zoo.train.fit(cond, np.zeros((16, 2)), labels=np.zeros(15, int), steps=1)
    with pytest.raises(ValueError, match=r"p_uncond must lie in \[0, 1\]"):
        zoo.transform(zoo.DDPM, schedule=schedule, net=TINY_NET, num_classes=3, p_uncond=1.5)


def _nearest_mean_classes(x, train, train_labels):
    """The class of the nearest class-mean training digit (pixels): a classifier with no
    training loop, so the test costs the model only."""
    means = np.stack([train[train_labels == c].mean(0) for c in range(10)]).reshape(10, -1)
    flat = np.asarray(x).reshape(len(x), -1)
    return np.argmin(((flat[:, None, :] - means[None]) ** 2).sum(-1), axis=1)


def test_a_tiny_conditional_ddpm_on_digits_draws_the_asked_class():
    data = images.digits()
    train, train_labels = np.asarray(data.train_images()), data.labels
    # The reference classifier reads real held-out digits well.
    test_classes = _nearest_mean_classes(data.test_set(), train, train_labels)
    assert np.mean(test_classes == data.test_labels) > 0.85
    # A conditional DDPM on the flattened digits (an MLP: the UNet's compile alone would cost
    # the test's budget on a 2-core CPU), 300 steps, T = 100.
    net = functools.partial(zoo.ScoreNet, width=128, embedding_dim=64, dropout=0.0)
    model = zoo.transform(
        zoo.DDPM, schedule=sdes.ddpm_linear(1e-4, 0.2, 100), event_shape=(64,), net=net,
        num_classes=10, p_uncond=0.2,
    )  # fmt: skip
    x = np.asarray(data.train_set()).reshape(-1, 64)
    state, _ = zoo.train.fit(
        model, x, labels=train_labels, steps=300, batch_size=128, optimizer=optax.adamw(3e-3)
    )
    params = zoo.train.run_params(state)
    asked = jnp.arange(100) % 10
    accuracy = {}
    for w in (0.0, 3.0):  # arrays: both scales share one compiled sampler
        out = model.sample(params, jax.random.PRNGKey(7), (100,), samplers.DDIM(steps=10),
                           labels=asked, guidance=jnp.float32(w))  # fmt: skip
        classes = _nearest_mean_classes(out.x, train, train_labels)
        accuracy[w] = np.mean(classes == np.asarray(asked))
    # Chance is 0.1. Measured over 3 training seeds x 3 sampling keys at 250 and 400 steps:
    # 0.43-0.64 at w = 0 (the conditional model) and 0.94-1.0 at w = 3.
    assert accuracy[0.0] >= 0.25, accuracy
    assert accuracy[3.0] >= 0.6, accuracy
    assert accuracy[3.0] >= accuracy[0.0] + 0.15, accuracy


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--guidance", "0,-1"], "--guidance"),
        (["--guidance", "nan"], "--guidance"),
        (["--dataset", "moons"], "--dataset"),
        (["--channels", "12"], "--channels"),
        (["--p-uncond", "1"], "--p-uncond"),
        (["--seed", str(2**32)], "--seed"),  # its PRNG key would be seed 0's
        (["--steps", str(2**31)], "--steps"),  # beyond fit's int32 step counter
        (["--per-class", "100000000"], "--per-class"),  # beyond memory, before training
    ],
)
def test_the_guidance_benchmark_names_a_bad_flag_in_one_line(argv, flag, capsys):
    from zoo.bench.commands import guidance as bench

    assert bench.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and "expected" in err


def test_a_sampler_that_cannot_apply_is_refused_before_any_training(capsys, tmp_path):
    from zoo.bench.commands import guidance as bench

    assert bench.main(["--out", str(tmp_path), "--families=ncsn,ddpm", "--sampler=langevin"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "zoo-bench guidance: error: argument --sampler: ddpm: annealed Langevin's step rule is "
        "for variance-exploding processes"
    )
    assert not (tmp_path / "cache").exists()  # nothing was trained


@pytest.mark.parametrize(
    "sampler",
    [zoo.DPMSolverPP(steps=3), zoo.DPMSolverPPSDE(steps=3), zoo.UniPC(steps=3), zoo.IPNDM(steps=3)],
    ids=lambda s: type(s).__name__,
)
def test_the_multistep_samplers_sample_the_guided_model(sampler):
    model = presets.FAMILY_TABLE["vp"].transform(TINY_NET, event_shape=(2,))
    model = zoo.transform(model.family, **model.config, num_classes=3)
    params = model.init(jax.random.PRNGKey(1), jnp.zeros((6, 2)))
    labels, key = jnp.array([0, 1, 2, 0, 1, 2]), jax.random.PRNGKey(2)
    with jax.disable_jit():  # a tiny network: compiling would cost more than running
        draw = lambda w: np.asarray(model.sample(params, key, (6,), sampler, labels, w).x)
        conditional, zero, guided = draw(None), draw(0.0), draw(3.0)
    np.testing.assert_allclose(zero, conditional, rtol=1e-5, atol=1e-6)  # w = 0: conditional
    assert np.abs(guided - conditional).max() > 1e-3  # the guided score reached the sampler
