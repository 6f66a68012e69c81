"""MNIST loaders: reconstruction (`mnist`) and Gaussian-noise denoising (`mnist-denoise`).

Validation is a seeded share (`val_fraction`) of the training images; the official test split
is the test split, which only the finalists stage reads (the study validated on it, so that
its published figure sits on the same images as our final one).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from search.data.base import DataError, DataOptions, Split, resolve_data_dir, split_record

MNIST_FILE = "mnist.npz"
# Mixed into the seed so the noise stream is unrelated to other seeded draws (splits, patches).
_NOISE_STREAM = 0x4E015E
_SPLIT_STREAM = 0x5917  # the validation carve-out's draws (as the text task's split)


_KEYS = ("x_train", "y_train", "x_test", "y_test")
MNIST_SHAPE = (28, 28)  # what the task's models, bounds and guard are sized for


def _what(array: np.ndarray) -> str:
    """An array as its error message describes it: dtype and shape."""
    return f"{array.dtype} array of shape {array.shape}"


def _checked_images(array: np.ndarray, source: str, key: str) -> np.ndarray:
    """`array` if it holds MNIST images in a range we know, else a DataError naming the key.

    uint8 (0..255, Keras' layout) is scaled by 255 later; floats must be in [0, 1] already and
    are used as they are. Any other dtype (uint16, int, bool) has no range we could assume.
    """
    where = f"{source}: {key}"
    if array.ndim != 3 or array.shape[1:] != MNIST_SHAPE or len(array) == 0:
        raise DataError(f"{where} is a {_what(array)}, expected (N, {MNIST_SHAPE[0]}, "
                        f"{MNIST_SHAPE[1]}) images with N >= 1")
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise DataError(f"{where} is a {_what(array)} holding NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise DataError(f"{where} is a {_what(array)} with values {low:g}..{high:g}; float "
                            f"images must be in [0, 1] (or store uint8 0..255)")
        return array
    raise DataError(f"{where} is a {_what(array)}: expected uint8 (0..255) or float in [0, 1]")


def _checked_labels(labels: np.ndarray, images: np.ndarray, source: str, key: str) -> None:
    """Labels are unused, but a file whose labels do not match its images is not MNIST."""
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{source}: {key} is a {_what(labels)}, expected one label per image "
                        f"({len(images)}, as its images)")


def _checked(arrays: dict[str, np.ndarray], source: str) -> tuple[np.ndarray, np.ndarray]:
    """(x_train, x_test) of Keras' layout, each checked (see `_checked_images`)."""
    x_train = _checked_images(arrays["x_train"], source, "x_train")
    x_test = _checked_images(arrays["x_test"], source, "x_test")
    _checked_labels(arrays["y_train"], x_train, source, "y_train")
    _checked_labels(arrays["y_test"], x_test, source, "y_test")
    return x_train, x_test


def _from_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        loaded = np.load(path)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a plain .npy (or pickle) renamed
            raise DataError(f"{path} is a single array, not an .npz archive: expected Keras' "
                            f"mnist.npz layout ({', '.join(_KEYS)})")
        with loaded as archive:
            missing = [key for key in _KEYS if key not in archive.files]
            if missing:
                raise DataError(f"{path} lacks {', '.join(missing)}: expected Keras' mnist.npz "
                                f"layout ({', '.join(_KEYS)}); it holds "
                                f"{', '.join(archive.files) or 'nothing'}")
            arrays = {key: archive[key] for key in _KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    return _checked(arrays, str(path))


def _from_keras() -> tuple[np.ndarray, np.ndarray]:
    import keras  # lazily: `import search.data` must not load TensorFlow

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:  # network errors come in many types
        raise DataError(
            f"no {MNIST_FILE} found locally and downloading MNIST failed ({exc}); "
            f"pass --data-dir DIR with {MNIST_FILE} in DIR, or set $SEARCH_DATA_DIR"
        ) from exc
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return _checked(arrays, "keras.datasets.mnist")


def _raw(options: DataOptions) -> tuple[np.ndarray, np.ndarray]:
    """Checked (train, test) images, uint8 or float in [0, 1]: from the data dir's mnist.npz,
    else Keras' download."""
    if options.data_dir is not None:
        path = Path(options.data_dir) / MNIST_FILE
        if not path.is_file():
            raise DataError(f"--data-dir {options.data_dir} has no {MNIST_FILE} (looked for "
                            f"{path}); point --data-dir at the folder that holds it")
        return _from_npz(path)
    resolved = resolve_data_dir(None)
    if resolved is not None and (resolved / MNIST_FILE).is_file():
        return _from_npz(resolved / MNIST_FILE)
    return _from_keras()


def _normalize(images: np.ndarray) -> np.ndarray:
    """float32 NHWC in [0, 1]: uint8 scaled by 255, float images (checked in [0, 1]) as they are."""
    if images.dtype == np.uint8:
        return (images.astype(np.float32) / np.float32(255.0))[..., None]
    return images.astype(np.float32)[..., None]


def _check(options: DataOptions) -> None:
    if options.resize is not None:
        raise DataError("resize applies to the text task only; MNIST images stay 28x28")


def split_indices(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices into the training images: `val_fraction` of them held out for
    validation, seeded, each in file order (so a `subset` keeps the file's first images)."""
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
    held = min(count - 1, max(1, round(val_fraction * count)))
    if held < 1:
        raise DataError(f"{count} MNIST training image(s): too few to hold out validation")
    order = np.random.default_rng((seed, _SPLIT_STREAM)).permutation(count)
    return np.sort(order[held:]), np.sort(order[:held])


def _parts(options: DataOptions, train: np.ndarray, test: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """The (train, val) indices, after the subsets, and the split's record."""
    train_idx, val_idx = split_indices(len(train), options.val_fraction, options.seed)
    record = split_record(train_idx.tolist(), val_idx.tolist(), range(len(test)),
                          seed=options.seed, val_fraction=options.val_fraction,
                          test_source="the official MNIST test split")
    for what, index, count in (("training", train_idx, options.subset),
                               ("validation", val_idx, options.val_subset)):
        if count is not None and count > len(index):
            raise DataError(f"{what} subset {count} exceeds the {len(index)} MNIST {what} "
                            f"images (validation is {options.val_fraction:g} of the "
                            f"{len(train)} training images)")
    return train_idx[:options.subset], val_idx[:options.val_subset], record


def load_mnist(options: DataOptions) -> Split:
    """Reconstruction: targets are the inputs. Validation is carved from the training images;
    the official test split is the test split (the finalists stage's, never a trial's)."""
    _check(options)
    train, test = _raw(options)
    train_idx, val_idx, record = _parts(options, train, test)
    x = _normalize(train[train_idx])
    v = _normalize(train[val_idx])
    t = _normalize(test)
    return Split(train=((x, x),), val=((v, v),), test=((t, t),), record=record)


def _noise(shape: tuple[int, ...], seed: int, stream: int) -> np.ndarray:
    """N(0, 1) noise for a WHOLE split from a fixed seed; callers slice it, so image i gets the
    same noise whatever the subset, in every trial and process."""
    rng = np.random.default_rng((seed, _NOISE_STREAM, stream))
    return rng.standard_normal((*shape, 1), dtype=np.float32)


def load_mnist_denoise(options: DataOptions) -> Split:
    """Denoising: inputs are clip(clean + noise * N(0, 1), 0, 1), targets the clean images.

    Image i of the training file has the same noise whichever split it falls in."""
    _check(options)
    if not (options.noise >= 0 and np.isfinite(options.noise)):
        raise DataError(f"noise must be a finite number >= 0, got {options.noise}")
    train, test = _raw(options)
    train_idx, val_idx, record = _parts(options, train, test)  # checked before drawing noise
    groups = []
    for stream, images, index in ((0, train, train_idx), (0, train, val_idx),
                                  (1, test, np.arange(len(test)))):
        clean = _normalize(images[index])
        gauss = _noise(images.shape, options.seed, stream)[index]
        noisy = np.clip(clean + np.float32(options.noise) * gauss, 0.0, 1.0)
        groups.append((noisy, clean))
    return Split(train=(groups[0],), val=(groups[1],), test=(groups[2],), record=record)
