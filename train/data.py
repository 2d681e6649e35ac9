"""Training data: scikit-learn's ``load_digits`` (the default) and MNIST from local IDX files.

Nothing is downloaded: ``load_digits`` ships inside the scikit-learn wheel, and MNIST is read from a
folder the user names (``--data mnist:DIR``). Images are float32 in ``[0, 1]``, shape
``(n, H, W)``; labels are int64 class indices.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "load_digits_split", "load_mnist", "read_idx", "write_idx", "load_data",
           "DataError", "MNIST_FILES"]

#: Fixed seed of the digits split: every run and every recipe sees the same 1,437 / 360 images.
DIGITS_SPLIT_SEED = 0
DIGITS_TEST = 360

#: The four MNIST files (each may also be gzipped, ``<name>.gz``).
MNIST_FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
               "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


class DataError(ValueError):
    """Unusable data (missing folder or file, malformed IDX); one-line message naming ``--data``."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray     # (n, H, W) float32 in [0, 1]
    y_train: np.ndarray     # (n,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    @property
    def shape(self):
        """``(H, W)`` of one image."""
        return self.x_train.shape[1:]


def _stratified_split(y, n_test, rng):
    """Indices ``(train, test)``: each class contributes to the test set in proportion to its size
    (largest remainders get the leftover places), so both sets keep the class balance."""
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * n_test / len(y)
    take = np.floor(exact).astype(int)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: n_test - take.sum()]] += 1
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take)])
    mask = np.zeros(len(y), bool)
    mask[test] = True
    return np.flatnonzero(~mask), np.sort(test)


def load_digits_split():
    """scikit-learn's 8x8 digits (1,797 images, 10 classes) in a fixed stratified 1,437 / 360 split;
    pixel values 0..16 scaled to ``[0, 1]``."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    train, test = _stratified_split(y, DIGITS_TEST, np.random.default_rng(DIGITS_SPLIT_SEED))
    return Dataset("digits", x[train], y[train], x[test], y[test], 10)


# -- IDX files (MNIST) ------------------------------------------------------------------------------

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path):
    """An IDX file (optionally gzipped) as a NumPy array; :class:`DataError` if malformed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as e:
        raise DataError(f"--data: cannot read {str(path)!r}: {getattr(e, 'strerror', None) or e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise DataError(f"--data: {str(path)!r} is not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"--data: {str(path)!r} is truncated (header)")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    count = int(np.prod(dims))
    body = raw[4 + 4 * ndim:]
    if len(body) != count * dtype.itemsize:
        raise DataError(f"--data: {str(path)!r} holds {len(body)} data bytes, its header says "
                        f"{count * dtype.itemsize}")
    return np.frombuffer(body, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write ``array`` (uint8) as an IDX file (the tests make tiny MNIST folders with it)."""
    a = np.ascontiguousarray(array, np.uint8)
    Path(path).write_bytes(bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes())


def _find(folder, stem):
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"--data: MNIST folder {str(folder)!r} has no {stem} (or {stem}.gz)")


def load_mnist(folder):
    """MNIST from the four IDX files in ``folder``; pixels scaled to ``[0, 1]``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--data: MNIST folder {str(folder)!r} does not exist")
    arrays = {k: read_idx(_find(folder, stem)) for k, stem in MNIST_FILES.items()}
    for part in ("train", "test"):
        x, y = arrays[f"{part}_x"], arrays[f"{part}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
            raise DataError(f"--data: MNIST {part} files disagree: images {x.shape}, labels {y.shape}")
    y_all = np.concatenate([arrays["train_y"], arrays["test_y"]]).astype(np.int64)
    if y_all.min() < 0:
        raise DataError("--data: MNIST labels must be nonnegative")
    classes = max(10, int(y_all.max()) + 1)
    scale = lambda a: (a.astype(np.float32) / 255.0)     # noqa: E731
    return Dataset("mnist", scale(arrays["train_x"]), arrays["train_y"].astype(np.int64),
                   scale(arrays["test_x"]), arrays["test_y"].astype(np.int64), classes)


def load_data(spec):
    """``"digits"`` or ``"mnist:DIR"``."""
    if spec == "digits":
        return load_digits_split()
    kind, sep, rest = spec.partition(":")
    if kind == "mnist" and sep:
        if not rest:
            raise DataError("--data: mnist needs a folder: --data mnist:DIR")
        return load_mnist(rest)
    raise DataError(f"--data must be digits or mnist:DIR, not {spec!r}")
