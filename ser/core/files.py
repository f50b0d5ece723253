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


def write_npz_chunks(path, chunked: dict, **arrays):
    """``write_npz`` where each array of ``chunked`` (name -> ``(dtype, length, chunks)``) is
    written chunk by chunk and never joined in memory: the file holds the bytes ``np.savez``
    writes for the joined arrays (uncompressed zip64 members, NPY format 1.0)."""
    import zipfile

    from numpy.lib import format as npy

    with atomic_path(path, suffix=".npz") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED,
                                                                 allowZip64=True) as archive:
        for name, (dtype, length, chunks) in chunked.items():
            header = npy.header_data_from_array_1_0(np.zeros(0, dtype))
            header["shape"] = (int(length),)
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                npy.write_array_header_1_0(member, header)
                written = 0
                for chunk in chunks:
                    chunk = np.ascontiguousarray(chunk, dtype=dtype)
                    member.write(chunk.data)
                    written += len(chunk)
                if written != length:
                    raise ValueError(f"{path}: {name} has {written} values, not the {length} declared")
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                npy.write_array(member, np.asanyarray(value))


def read_npz_mapped(path, name: str) -> np.ndarray:
    """Array ``name`` of the uncompressed ``.npz`` at ``path``, memory-mapped (read-only): its
    pages are read when used, so a pack of any size costs no memory to open. A compressed
    member is read whole."""
    import struct
    import zipfile

    from numpy.lib import format as npy

    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        with np.load(path) as data:
            return data[name]
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)   # the local file header: its name and extra field lengths end it
        f.seek(info.header_offset + 30 + sum(struct.unpack("<HH", local[26:30])))
        version = npy.read_magic(f)
        shape, fortran, dtype = (npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0)(f)
        offset = f.tell()
    if not shape or 0 in shape:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


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
