"""The UNet: shapes, time dependence, the two convolutions, and argument checks."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoo import nets

# Small enough to compile in seconds on a CPU; still has a down/up level and attention.
TINY = dict(channels=8, channel_mults=(1, 2), groups=4, dropout=0.0)


def _transform(config):
    return hk.without_apply_rng(hk.transform(lambda x, t: nets.UNet(**config)(x, t, False)))


def _apply(config, x, t, seed=0):
    f = _transform(config)
    params = jax.jit(f.init)(jax.random.PRNGKey(seed), x, t)
    return jax.jit(f.apply), params


@pytest.fixture(scope="module")
def tiny():
    """One compiled init and apply of the TINY UNet on ``[3, 8, 8, 1]`` images, shared: its
    init alone compiles for ~15 s on a CPU (a threefry kernel per parameter)."""
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 8, 8, 1))
    f, params = _apply(TINY, x, jnp.zeros(3))
    return f, params, x


def test_output_shape_and_time_dependence(tiny):
    f, params, x = tiny
    early = f(params, x, jnp.full(3, 0.05))
    late = f(params, x, jnp.full(3, 0.95))
    assert early.shape == x.shape and np.all(np.isfinite(early))
    assert float(jnp.max(jnp.abs(early - late))) > 1e-3
    # A scalar time means the same time for every image.
    np.testing.assert_allclose(f(params, x, 0.05), early, atol=1e-6)


def test_rectangular_and_multichannel_images():
    # Shapes only: traced, not compiled.
    f, x, t = _transform(TINY), jnp.ones((2, 4, 8, 3)), jnp.zeros(2)
    params = jax.eval_shape(f.init, jax.random.PRNGKey(0), x, t)
    assert params["u_net/conv_in"]["w"].shape == (3, 3, 3, 8)
    assert jax.eval_shape(f.apply, params, x, t).shape == (2, 4, 8, 3)


def _shapes(tree):
    return jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), tree)


def test_matmul_convolution_matches_lax(tiny):
    """The im2col convolutions compute what hk.Conv2D does with the same parameters."""
    f, params, x = tiny
    t = jnp.array([0.1, 0.7, 0.4])
    g = hk.without_apply_rng(hk.transform(lambda x, t: nets.UNet(**TINY, conv="lax")(x, t, False)))
    # hk.Conv2D keeps its parameters one module deeper ("<name>/conv").
    lax_params = {(k + "/conv" if v.get("w", jnp.zeros(())).ndim == 4 else k): v
                  for k, v in params.items()}  # fmt: skip
    expected = jax.eval_shape(g.init, jax.random.PRNGKey(0), x, t)  # the structure, uncompiled
    assert jax.tree_util.tree_structure(lax_params) == jax.tree_util.tree_structure(expected)
    assert _shapes(lax_params) == _shapes(expected)
    np.testing.assert_allclose(
        jax.jit(g.apply)(lax_params, x, t), f(params, x, t), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize(
    "config, match",
    [
        (dict(channels=12, groups=8), "divisible by groups=8"),
        (dict(channel_mults=()), "channel_mults must be a non-empty"),
        (dict(channel_mults=(1, 0)), "channel_mults must be a non-empty"),
        (dict(dropout=1.0), r"dropout must lie in \[0, 1\)"),
        (dict(attention_levels=(2,)), r"attention_levels must be level indices in \[0, 1\]"),
        (dict(num_heads=3), "num_heads=3 must divide"),
        (dict(channels=0), "channels must be a positive int"),
        (dict(conv="fft"), "conv must be 'matmul' or 'lax'"),
    ],
)
def test_bad_arguments_raise(config, match):
    with pytest.raises(ValueError, match=match):
        hk.transform(lambda: nets.UNet(**config)).init(None)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"divisible by 2\*\*\(len\(channel_mults\) - 1\) = 4"):
        _apply(dict(TINY, channel_mults=(1, 1, 1)), jnp.ones((1, 6, 8, 1)), jnp.zeros(1))
    with pytest.raises(ValueError, match=r"x must be images \[B, H, W, C\]"):
        _apply(TINY, jnp.ones((1, 8, 8)), jnp.zeros(1))
