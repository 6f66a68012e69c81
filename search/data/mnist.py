"""MNIST loaders: reconstruction (`mnist`) and Gaussian-noise denoising (`mnist-denoise`).

As in the study, models train on the training split and validate on the official test split.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from search.data.base import DataError, DataOptions, Split, resolve_data_dir

MNIST_FILE = "mnist.npz"
# Mixed into the seed so the noise stream is unrelated to other seeded draws (splits, patches).
_NOISE_STREAM = 0x4E015E


def _from_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path) as archive:
            return archive["x_train"], archive["x_test"]
    except KeyError as exc:
        raise DataError(f"{path} lacks {exc}: expected Keras' mnist.npz layout "
                        "(x_train, y_train, x_test, y_test)") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def _from_keras() -> tuple[np.ndarray, np.ndarray]:
    import keras  # lazily: `import search.data` must not load TensorFlow

    try:
        (x_train, _), (x_test, _) = keras.datasets.mnist.load_data()
    except Exception as exc:  # network errors come in many types
        raise DataError(
            f"no {MNIST_FILE} found locally and downloading MNIST failed ({exc}); "
            f"pass a data dir holding {MNIST_FILE} or set $SEARCH_DATA_DIR"
        ) from exc
    return x_train, x_test


def _raw(options: DataOptions) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (train, test) images: from the data dir's mnist.npz, else Keras' download."""
    if options.data_dir is not None:
        path = Path(options.data_dir) / MNIST_FILE
        if not path.is_file():
            raise DataError(f"data dir {options.data_dir} has no {MNIST_FILE} (looked for {path})")
        return _from_npz(path)
    resolved = resolve_data_dir(None)
    if resolved is not None and (resolved / MNIST_FILE).is_file():
        return _from_npz(resolved / MNIST_FILE)
    return _from_keras()


def _take(images: np.ndarray, count: int | None, what: str) -> np.ndarray:
    if images.ndim != 3:
        raise DataError(f"MNIST {what} images have shape {images.shape}, expected (N, H, W)")
    if count is not None and count > len(images):
        raise DataError(f"{what} subset {count} exceeds the {len(images)} MNIST {what} images")
    return images[:count]


def _normalize(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / np.float32(255.0))[..., None]


def _check(options: DataOptions) -> None:
    if options.resize is not None:
        raise DataError("resize applies to the text task only; MNIST images stay 28x28")


def load_mnist(options: DataOptions) -> Split:
    """Reconstruction: targets are the inputs."""
    _check(options)
    train, test = _raw(options)
    x = _normalize(_take(train, options.subset, "training"))
    v = _normalize(_take(test, options.val_subset, "validation"))
    return Split(train=((x, x),), val=((v, v),))


def _noise(shape: tuple[int, ...], seed: int, stream: int) -> np.ndarray:
    """N(0, 1) noise for a WHOLE split from a fixed seed; callers slice it, so image i gets the
    same noise whatever the subset, in every trial and process."""
    rng = np.random.default_rng((seed, _NOISE_STREAM, stream))
    return rng.standard_normal((*shape, 1), dtype=np.float32)


def load_mnist_denoise(options: DataOptions) -> Split:
    """Denoising: inputs are clip(clean + noise * N(0, 1), 0, 1), targets the clean images."""
    _check(options)
    if not (options.noise >= 0 and np.isfinite(options.noise)):
        raise DataError(f"noise must be a finite number >= 0, got {options.noise}")
    train, test = _raw(options)
    # Validate the subsets before drawing noise for whole splits.
    n_train = len(_take(train, options.subset, "training"))
    n_val = len(_take(test, options.val_subset, "validation"))
    groups = []
    for stream, (images, count) in enumerate(((train, n_train), (test, n_val))):
        clean = _normalize(images[:count])
        gauss = _noise(images.shape, options.seed, stream)[:count]
        noisy = np.clip(clean + np.float32(options.noise) * gauss, 0.0, 1.0)
        groups.append((noisy, clean))
    return Split(train=(groups[0],), val=(groups[1],))
