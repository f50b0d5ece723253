"""Outputs written atomically (complete or absent, never half-written) and read back: JSON, CSV,
``.npz`` and whole folders of outputs (``publish_tree``)."""

import contextlib
import json
import os
import secrets
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The temporary file is hidden (``.NAME.XXXXXXXXXX``) and is removed whenever the block does
    not succeed, on any exception: KeyboardInterrupt too, and SIGTERM/SIGHUP in a stage or the
    CLI, which ``ser.core.errors.signals_as_interrupts`` turns into one. Its name is chosen before the
    file is made, inside the ``try``: no moment exists where the file is there but unknown to
    the cleanup."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        while True:
            tmp = path.parent / f".{path.name}.{secrets.token_hex(5)}{suffix or path.suffix}"
            try:
                # 0o666 less the umask: the permissions any new output gets (mkstemp would make 0600).
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
                break
            except FileExistsError:   # another writer's (40 random bits: practically never)
                tmp = None
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
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


def publish_tree(scratch, target, names):
    """Move ``names`` (files or folders) from the ``scratch`` folder into ``target``, each
    replacing what was there, then remove ``scratch``: outputs written piecemeal during a run
    (dvclive's per-epoch files) appear only whole, at its end."""
    import shutil

    scratch, target = Path(scratch), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        new, old = scratch / name, target / name
        if old.is_dir():
            retired = scratch / f".old-{name}"
            os.replace(old, retired)   # a rename: the previous version stays whole until replaced
        os.replace(new, old)
    shutil.rmtree(scratch, ignore_errors=True)
