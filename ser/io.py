"""Atomic writers: an output is either complete or absent, never half-written."""

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path, data):
    """Write ``data`` as indented JSON (keys kept in insertion order)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def write_csv(path, frame):
    """Write a DataFrame as CSV without its index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_npz(path, **arrays):
    """Write arrays to an uncompressed .npz file."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def read_csv(path):
    """Read a CSV written by this package (strings stay strings, empty stays empty)."""
    import pandas as pd  # imported here: prediction never needs pandas, and it costs ~0.3 s

    return pd.read_csv(path, dtype=str, keep_default_na=False)
