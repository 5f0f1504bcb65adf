r"""Sample-quality metrics for generated digit images, each beside its noise floor.

A small classifier trained on the real training digits (:func:`digit_classifier`: an sklearn
MLP 64 -> 128 -> 64 -> 10, ReLU, fixed seed, about 98% accuracy on the held-out digits,
trained once per process, or once per machine with ``ZOO_CACHE_DIR`` set) gives a feature
space (its last hidden layer, 64-D) and class probabilities. For samples :math:`x_{1..n}` and
the real training images:

- ``frechet``: the Frechet distance between Gaussians fitted to the features (FID's formula
  with this classifier in place of Inception),
  :math:`\|\mu_r - \mu_g\|^2 + \mathrm{tr}(\Sigma_r + \Sigma_g - 2(\Sigma_r\Sigma_g)^{1/2})`.
  It is biased upwards by :math:`O(1/n)`, so compare at equal ``n``.
- ``class_kl``: :math:`KL(\hat p \,\|\, U) = \sum_c \hat p_c \log(10\,\hat p_c)` of the
  histogram of predicted classes against uniform (0 when every digit is drawn equally often;
  :math:`\log 10 = 2.30` when one digit only).
- ``confidence``: the mean of the largest predicted class probability (low for blurry or
  ambiguous images).
- ``nearest_train``: the mean L2 distance (pixel space, ``[-1, 1]``) to the nearest training
  image. Below the floor's value means samples sit closer to training images than new real
  digits do: memorisation.

The floor (:func:`image_noise_floor`) is the same metrics for the held-out test digits
evaluated as if they were samples: what a perfect model scores at that sample size.

``bpd`` (:func:`bits_per_dim_by_ode`) is the model's negative log-likelihood of held-out
digits in bits per dimension through the probability-flow ODE (:mod:`zoo.likelihood`, a
Hutchinson divergence with ``num_probes`` Rademacher probes). The data are dequantised, and the
continuous density on ``[-1, 1]`` is turned into a bound on the discrete likelihood of the
:math:`K = 17` grey levels (bin width :math:`w = 2/K`):

.. math::
    -\log_2 P(v) \le \frac{E_u[-\log p(x)] - D\log w}{D \ln 2} \quad\text{bits per dim}.

(:math:`-D \log w > 0`: a density of :math:`p` over a bin of volume :math:`w^D` has
probability :math:`p\,w^D`.) The uniform distribution over the levels scores
:math:`\log_2 17 = 4.09`.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import warnings
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from zoo import images, likelihood
from zoo._files import write_atomic

__all__ = [
    "DigitClassifier",
    "bits_per_dim_by_ode",
    "digit_classifier",
    "evaluate_images",
    "frechet_distance",
    "image_noise_floor",
    "nearest_distance",
]

NUM_CLASSES = 10


class DigitClassifier:
    """A fitted MLP on flattened digits in ``[-1, 1]`` (its layers' ``weights`` and
    ``biases``), read through ``features`` (the last hidden layer) and ``probabilities``."""

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], test_accuracy: float):
        self.weights = [np.asarray(w, np.float64) for w in weights]
        self.biases = [np.asarray(b, np.float64) for b in biases]
        self.test_accuracy = test_accuracy

    def features(self, x) -> np.ndarray:
        """Last hidden layer activations ``[n, 64]`` of images ``[n, 8, 8, 1]``."""
        h = _flat(x)
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = np.maximum(h @ w + b, 0.0)  # ReLU layers, as sklearn's MLPClassifier applies them
        return h

    def probabilities(self, x) -> np.ndarray:
        """Class probabilities ``[n, 10]``: the softmax of the output layer."""
        logits = self.features(x) @ self.weights[-1] + self.biases[-1]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def _flat(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"images must have shape [n, 8, 8, 1], got {x.shape}")
    return x.reshape(len(x), -1)


def _check_images(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4 or x.shape[1:] != images.Digits.event_shape:
        raise ValueError(f"{name} must have shape [n, 8, 8, 1], got {x.shape}")
    if len(x) < 2:
        raise ValueError(f"{name} must hold at least 2 images, got {len(x)}")
    return x


def digit_classifier(data: images.Digits | None = None) -> DigitClassifier:
    """The classifier of ``data``'s training digits (default split), trained once per process
    and split (dequantised or not, the same classifier); with the environment variable
    ``ZOO_CACHE_DIR`` set, kept there and read by every later process (a file named by a hash
    of its training and test data, the MLP's settings and the scikit-learn version; a damaged
    one is trained again).

    Inputs are the training images at their bin centres plus one dequantised copy, so
    that continuous samples are read like real digits.
    """
    data = images.digits() if data is None else data
    return _classifier(float(data.test_fraction), int(data.seed))


#: sklearn's ``MLPClassifier`` settings of :func:`digit_classifier`
_MLP = dict(hidden_layer_sizes=(128, 64), max_iter=150, random_state=0)


@functools.cache
def _classifier(test_fraction: float, seed: int) -> DigitClassifier:
    import sklearn

    data = images.digits(dequantize=True, test_fraction=test_fraction, seed=seed)
    copies = [data.train_images(), data.train_images(jax.random.PRNGKey(1000))]
    x = np.concatenate([_flat(c) for c in copies])
    y = np.tile(data.labels, len(copies))
    test, test_labels = _flat(data.test_set()), np.asarray(data.test_labels)
    key = hashlib.sha256(repr((_MLP, sklearn.__version__)).encode())
    for array in (x, y, test, test_labels):
        key.update(np.ascontiguousarray(array).tobytes())
    folder = os.environ.get("ZOO_CACHE_DIR")
    path = Path(folder, f"digit_classifier-{key.hexdigest()[:16]}.npz") if folder else None
    if path is not None and path.exists():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # damaged: trained again and written over
    classifier = _train(x, y, test, test_labels)
    if path is not None:
        try:
            _save(classifier, path)
        except OSError as error:  # the metrics stand without the cache; the user should know
            warnings.warn(
                f"ZOO_CACHE_DIR={folder}: cannot keep the digit classifier there ({error}); "
                "it is trained again in every process",
                stacklevel=3,
            )
    return classifier


def _train(x, y, test, test_labels) -> DigitClassifier:
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(**_MLP).fit(x, y)
    if list(mlp.classes_) != list(range(NUM_CLASSES)) or mlp.out_activation_ != "softmax":
        raise RuntimeError(f"expected a softmax over the classes 0-9, got {mlp.classes_}")
    accuracy = float(np.mean(mlp.predict(test) == test_labels))
    return DigitClassifier(mlp.coefs_, mlp.intercepts_, accuracy)


def _save(classifier: DigitClassifier, path: Path) -> None:
    arrays = {f"w{i}": w for i, w in enumerate(classifier.weights)}
    arrays |= {f"b{i}": b for i, b in enumerate(classifier.biases)}
    write_atomic(path, lambda f: np.savez(f, accuracy=classifier.test_accuracy, **arrays))


def _load(path: Path) -> DigitClassifier:
    with np.load(path) as z:
        layers = sum(name.startswith("w") for name in z.files)
        weights = [z[f"w{i}"] for i in range(layers)]
        biases = [z[f"b{i}"] for i in range(layers)]
        return DigitClassifier(weights, biases, float(z["accuracy"]))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """:math:`\\|\\mu_a - \\mu_b\\|^2 + \\mathrm{tr}(\\Sigma_a + \\Sigma_b - 2(\\Sigma_a
    \\Sigma_b)^{1/2})` between Gaussians fitted to feature sets ``a: [n, k]``, ``b: [m, k]``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr (A B)^{1/2} = tr (A^{1/2} B A^{1/2})^{1/2}: the symmetric form needs only eigh and
    # stays real when A is singular (dead ReLU features have zero variance).
    root_a = _psd_sqrt(cov_a)
    eig = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def nearest_distance(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """L2 distance of each image of ``x`` to its nearest image in ``reference``, ``[n]``."""
    a, b = _flat(x), _flat(reference)
    d2 = np.sum(a**2, 1)[:, None] - 2 * a @ b.T + np.sum(b**2, 1)[None, :]
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0))


def evaluate_images(samples, data: images.Digits | None = None) -> dict[str, float]:
    """The classifier metrics of ``samples: [n, 8, 8, 1]`` against ``data``'s training digits:
    ``frechet``, ``class_kl``, ``confidence``, ``nearest_train`` (see the module docstring),
    and ``nonfinite``, the fraction of samples with NaN/inf pixels (dropped before scoring)."""
    data = images.digits() if data is None else data
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 4 or x.shape[1:] != images.Digits.event_shape:
        raise ValueError(f"samples must have shape [n, 8, 8, 1], got {x.shape}")
    finite = np.all(np.isfinite(x.reshape(len(x), -1)), axis=1)
    x = _check_images(x[finite], "samples (the finite ones)")
    classifier = digit_classifier(data)
    train = data.train_images()
    probs = classifier.probabilities(x)
    hist = np.bincount(probs.argmax(1), minlength=NUM_CLASSES) / len(x)
    nonzero = hist > 0
    return {
        "frechet": frechet_distance(classifier.features(train), classifier.features(x)),
        "class_kl": float(np.sum(hist[nonzero] * np.log(NUM_CLASSES * hist[nonzero]))),
        "confidence": float(np.mean(probs.max(1))),
        "nearest_train": float(np.mean(nearest_distance(x, train))),
        "nonfinite": float(1.0 - np.mean(finite)),
    }


def image_noise_floor(data: images.Digits | None = None, n: int | None = None) -> dict:
    """:func:`evaluate_images` of ``n`` held-out test digits (default: all of them),
    dequantised with a fixed key when ``data.dequantize``: the score of a perfect model."""
    data = images.digits() if data is None else data
    test = np.asarray(data.test_set(jax.random.PRNGKey(0) if data.dequantize else None))
    return evaluate_images(test if n is None else test[:n], data)


def bits_per_dim_by_ode(
    sde,
    score_fn,
    x: jax.Array,
    key: jax.Array,
    *,
    bin_width: float = 2.0 / images.DIGITS_LEVELS,
    num_probes: int = 1,
    rtol: float = 1e-3,
    atol: float = 1e-3,
    batch_size: int = 64,
) -> dict[str, float]:
    """Mean and standard error of the discrete NLL bound in bits per dimension of dequantised
    images ``x: [n, *event]`` with grey levels ``bin_width`` wide (module docstring):
    :math:`(-\\log p(x) - D\\log w)/(D\\ln 2)`, ``-log p`` by the probability-flow ODE with
    Hutchinson's estimator (``num_probes`` Rademacher probes per image, adaptive Tsit5 with
    ``rtol``/``atol``), in batches of ``batch_size``. Also returns the mean ``nfe``."""
    if bin_width <= 0:
        raise ValueError(f"bin_width must be > 0, got {bin_width}")
    x = jnp.asarray(x, jnp.float32)
    dim = math.prod(x.shape[1:])

    @jax.jit
    def one_batch(xb, k):
        out = likelihood.log_likelihood(
            sde, score_fn, xb, key=k, divergence="hutchinson", num_probes=num_probes,
            rtol=rtol, atol=atol,
        )  # fmt: skip
        return out.log_prob, out.nfe

    nll, nfes = [], []
    for i, start in enumerate(range(0, len(x), batch_size)):
        log_prob, nfe = one_batch(x[start : start + batch_size], jax.random.fold_in(key, i))
        nll.append(np.asarray(-log_prob))
        nfes.append(int(nfe))
    bpd = (np.concatenate(nll) - dim * math.log(bin_width)) / (dim * math.log(2.0))
    return {
        "bpd": float(np.mean(bpd)),
        "bpd_stderr": float(np.std(bpd) / math.sqrt(len(bpd))),
        "nfe": float(np.mean(nfes)),
        "num_probes": num_probes,
    }
