"""The digits data (zoo.images), DDIM against ancestral sampling, and the image metrics."""

import functools

import jax
import numpy as np
import pytest

from zoo import _files, data, image_metrics, images, metrics, samplers, sdes

DIGITS = images.digits()


def test_digits_shapes_range_and_labels():
    train, test = np.asarray(DIGITS.train_set()), np.asarray(DIGITS.test_set())
    assert train.shape == (DIGITS.num_train, 8, 8, 1) and test.shape[1:] == (8, 8, 1)
    assert len(train) + len(test) == 1797
    assert len(test) == round(0.2 * 1797)
    for x in (train, test, np.asarray(DIGITS.sample(jax.random.PRNGKey(0), (5, 3)))):
        assert x.min() >= -1.0 and x.max() <= 1.0
    assert DIGITS.sample(jax.random.PRNGKey(0), (5, 3)).shape == (5, 3, 8, 8, 1)
    assert set(DIGITS.labels) == set(range(10)) and len(DIGITS.test_labels) == len(test)
    assert data.get("digits") is DIGITS


def test_split_is_a_partition_fixed_by_the_seed():
    from sklearn.datasets import load_digits

    def rows(values):  # the images as sorted tuples of integer grey values
        return sorted(map(tuple, np.asarray(values).reshape(len(values), -1).tolist()))

    split = np.concatenate([DIGITS.train_images(), DIGITS.test_set()])
    grey = np.rint((split + 1.0) * images.DIGITS_LEVELS / 2 - 0.5).astype(int)
    assert rows(grey) == rows(load_digits().images.astype(int))
    np.testing.assert_array_equal(images.digits(seed=0).test_set(), DIGITS.test_set())
    assert not np.array_equal(images.digits(seed=1).test_set(), DIGITS.test_set())


def test_dequantisation_stays_within_one_grey_level():
    centres = np.asarray(DIGITS.train_images())
    noisy = np.asarray(DIGITS.train_set(DIGITS.num_train))
    half_bin = DIGITS.bin_width / 2
    assert np.all(np.abs(noisy - centres) <= half_bin + 1e-6)
    assert np.std(noisy - centres) > 0.2 * half_bin  # noise is really there
    plain = images.digits(dequantize=False)
    np.testing.assert_array_equal(plain.train_set(plain.num_train), centres)
    # A key dequantises the training and test images alike, each within its own bin.
    for exact, key in ((DIGITS.train_images, 1), (DIGITS.test_set, 2)):
        noisy = np.asarray(exact(jax.random.PRNGKey(key)))
        assert np.all(np.abs(noisy - np.asarray(exact())) <= half_bin + 1e-6)
        assert not np.array_equal(noisy, exact())
    np.testing.assert_array_equal(plain.train_images(jax.random.PRNGKey(1)), centres)


def test_grey_levels_map_to_the_centres_of_equal_bins_of_minus_one_to_one():
    k = images.DIGITS_LEVELS
    centres = np.asarray(images.from_grey_levels(np.arange(k)))
    np.testing.assert_allclose(centres, -1 + (2 * np.arange(k) + 1) / k, atol=1e-6)
    np.testing.assert_allclose(np.diff(centres), DIGITS.bin_width, rtol=1e-5)
    # Dequantised values fill each bin [2v/K - 1, 2(v + 1)/K - 1) uniformly.
    v = np.repeat(np.arange(k), 4000)
    x = np.asarray(images.from_grey_levels(v, jax.random.PRNGKey(3)))
    u = (x + 1) * k / 2 - v  # the offset in the bin, U[0, 1)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / len(u))


def test_bad_digits_input_is_named():
    with pytest.raises(ValueError, match=r"test_fraction must lie in \(0, 1\)"):
        images.Digits(test_fraction=1.0)
    with pytest.raises(TypeError, match="seed must be an integer"):
        images.Digits(seed=0.5)
    for n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n must be a positive int"):
            DIGITS.train_set(n)
    with pytest.raises(ValueError, match="shape must be a tuple of non-negative ints"):
        DIGITS.sample(jax.random.PRNGKey(0), (-1,))
    with pytest.raises(ValueError, match="unknown image dataset 'mnist'"):
        images.get("mnist")


def test_ddim_with_eta_one_samples_like_ancestral_in_distribution():
    """Independent draws of DDIM(eta=1) and ancestral sampling with the exact score on a DDPM
    schedule are as close as two independent true samples (3 sd above the floor's mean)."""
    mixture = data.GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.5, -0.5]], [[0.3, 0.6], [0.5, 0.2]])
    schedule = sdes.ddpm_linear(1e-4, 0.02, 1000)
    score = data.oracle_score(mixture, schedule)
    n = 2000

    def draw(sampler, seed):
        return jax.jit(lambda k: sampler.sample(schedule, score, k, (n, 2)).x)(
            jax.random.PRNGKey(seed)
        )

    ddim = draw(samplers.DDIM(eta=1.0), 1)
    ancestral = draw(samplers.Ancestral(), 2)
    quality = functools.partial(metrics.sliced_w2, key=jax.random.PRNGKey(5))
    floor = metrics.noise_floor(
        lambda x, y, key: metrics.sliced_w2(x, y, key),
        lambda key, m: mixture.sample(key, (m,)),
        n,
        jax.random.PRNGKey(9),
        repeats=8,
    )
    bound = float(np.asarray(floor.mean) + 3 * np.asarray(floor.sd))
    assert float(quality(ddim, ancestral)) < bound
    # The bound can fail: the deterministic DDIM (eta=0) of a mis-scaled start cannot pass.
    assert float(quality(ddim, 1.5 * ancestral)) > bound


@pytest.fixture(scope="module")
def floor():
    return image_metrics.image_noise_floor(DIGITS, n=179)


def test_held_out_digits_score_at_the_floor(floor):
    """The second half of the test set, scored like samples, lands where the first half
    does (the floor)."""
    test = np.asarray(DIGITS.test_set(jax.random.PRNGKey(0)))
    other = image_metrics.evaluate_images(test[179:358], DIGITS)
    assert other["frechet"] < 2.0 * floor["frechet"]
    assert other["class_kl"] < floor["class_kl"] + 0.05
    assert other["confidence"] > floor["confidence"] - 0.05
    assert abs(other["nearest_train"] - floor["nearest_train"]) < 0.1 * floor["nearest_train"]
    assert image_metrics.digit_classifier(DIGITS).test_accuracy > 0.9


def test_the_classifier_is_sklearns_mlp_read_by_hand():
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 8, 8, 1)), np.arange(200) % 10
    mlp = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=20, random_state=0)
    mlp.fit(x.reshape(200, -1), y)
    classifier = image_metrics.DigitClassifier(mlp.coefs_, mlp.intercepts_, 0.0)
    np.testing.assert_allclose(classifier.probabilities(x), mlp.predict_proba(x.reshape(200, -1)))


def test_the_classifier_is_read_from_zoo_cache_dir_and_a_damaged_file_trained_again(
    tmp_path, monkeypatch
):
    classifier = image_metrics.digit_classifier(DIGITS)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    trained = []

    def train(*args):
        trained.append(args)
        return classifier

    monkeypatch.setattr(image_metrics, "_train", train)
    image_metrics._classifier.cache_clear()
    try:
        image_metrics.digit_classifier(DIGITS)  # trained, then written
        (path,) = (tmp_path / "cache").iterdir()
        # readable by others sharing the folder, like any file made under this umask
        assert path.stat().st_mode & 0o777 == 0o666 & ~_files.UMASK
        image_metrics._classifier.cache_clear()
        read = image_metrics.digit_classifier(DIGITS)  # read back: not trained again
        assert len(trained) == 1 and read.test_accuracy == classifier.test_accuracy
        x = DIGITS.test_set()[:20]
        np.testing.assert_array_equal(read.probabilities(x), classifier.probabilities(x))
        path.write_bytes(path.read_bytes()[:100])
        image_metrics._classifier.cache_clear()
        image_metrics.digit_classifier(DIGITS)
        assert len(trained) == 2 and [p.name for p in path.parent.iterdir()] == [path.name]
        image_metrics._load(path)  # written whole again
    finally:
        image_metrics._classifier.cache_clear()


def test_a_zoo_cache_dir_that_cannot_be_written_is_a_warning_naming_it(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(blocked))  # a file, not a folder
    classifier = image_metrics.digit_classifier(DIGITS)
    monkeypatch.setattr(image_metrics, "_train", lambda *args: classifier)
    image_metrics._classifier.cache_clear()
    try:
        with pytest.warns(UserWarning, match=f"ZOO_CACHE_DIR={blocked}: cannot keep"):
            assert image_metrics.digit_classifier(DIGITS) is classifier
    finally:
        image_metrics._classifier.cache_clear()


def test_noise_images_are_far_from_the_floor(floor):
    noise = np.clip(np.random.default_rng(0).normal(size=(179, 8, 8, 1)), -1, 1)
    out = image_metrics.evaluate_images(noise, DIGITS)
    assert out["frechet"] > 10 * floor["frechet"]
    assert out["confidence"] < floor["confidence"] - 0.1
    assert out["nearest_train"] > 2 * floor["nearest_train"]
    # Copies of training digits are flagged by their distance to the training set.
    copies = image_metrics.evaluate_images(DIGITS.train_images()[:179], DIGITS)
    assert copies["nearest_train"] < 0.01 * floor["nearest_train"]


def test_frechet_distance_of_gaussians_is_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    b = 2.0 * rng.normal(size=(20000, 3)) + 1.0
    # Means differ by 1 per axis; covariances I and 4I: 3 + tr(I + 4I - 2*2I) = 3 + 3.
    assert abs(image_metrics.frechet_distance(a, b) - 6.0) < 0.15
    assert abs(image_metrics.frechet_distance(a, a)) < 1e-6


def test_bad_sample_shapes_raise():
    with pytest.raises(ValueError, match=r"samples must have shape \[n, 8, 8, 1\]"):
        image_metrics.evaluate_images(np.zeros((4, 64)), DIGITS)
