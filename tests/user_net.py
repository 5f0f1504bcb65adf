"""A user's network for ``zoo-bench --net tests.user_net:factory`` (tests/test_user_inputs.py):
a small MLP whose parameters live under a name no zoo network uses, ``user_mlp``, so a
trained run shows whose network it is."""

import haiku as hk
import jax
import jax.numpy as jnp


class UserMLP(hk.Module):
    """``(x, t, is_training) -> like x``: one hidden layer over ``x`` and ``t``."""

    def __init__(self, hidden: int = 16):
        super().__init__(name="user_mlp")
        self.hidden = hidden

    def __call__(self, x, t, is_training=False):
        t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:-1])[..., None]  # [B, 1]
        h = jax.nn.gelu(hk.Linear(self.hidden)(jnp.concatenate([x, t], axis=-1)))
        return hk.Linear(x.shape[-1])(h)


def factory() -> UserMLP:
    return UserMLP()


def wrong_shape_factory():
    """A network that breaks the contract: its output has one coordinate too many."""
    return lambda x, t, is_training=False: hk.Linear(x.shape[-1] + 1)(x)


NOT_A_FACTORY = 3


# Factories that break the contract, each named in one line by ``zoo-bench --net``.


def raising_factory():
    raise RuntimeError("no weights file here")


def none_factory():
    return None


def needs_width_factory(width):
    return UserMLP(width)


def raising_net_factory():
    def net(x, t, is_training=False):
        raise KeyError("time_embedding")

    return net


def one_level_unet():
    """The zoo's UNet at one resolution and 8 channels: the digits harness's tests compile it
    in about half the time of the two-level default."""
    from zoo.nets import UNet

    return UNet(channels=8, channel_mults=(1,), groups=4, dropout=0.0)
