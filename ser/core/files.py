"""Outputs written atomically (complete or absent, never half-written) and read back: JSON, CSV,
``.npz`` and whole folders of outputs (``publish_tree``)."""

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import NamedTuple

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


class Chunked(NamedTuple):
    """An array for ``write_npz_chunks`` given as its pieces: ``dtype``, its whole ``shape`` (or
    length), and an iterable of ``chunks`` along the first axis, drawn one at a time."""

    dtype: object
    shape: object
    chunks: object


def write_npz_chunks(path, members: dict):
    """``write_npz`` of ``members`` (name -> array or ``Chunked``), in that order, where a
    ``Chunked`` array is written chunk by chunk and never joined in memory: the file holds the
    bytes ``np.savez`` writes for the joined arrays (uncompressed zip64 members, NPY format 1.0)."""
    import zipfile

    from numpy.lib import format as npy

    with atomic_path(path, suffix=".npz") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED,
                                                                 allowZip64=True) as archive:
        for name, value in members.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                if not isinstance(value, Chunked):
                    npy.write_array(member, np.asanyarray(value))
                    continue
                shape = (int(value.shape),) if np.ndim(value.shape) == 0 else tuple(int(n) for n in value.shape)
                header = npy.header_data_from_array_1_0(np.zeros((0,) + shape[1:], value.dtype))
                header["shape"] = shape
                npy.write_array_header_1_0(member, header)
                written = 0
                for chunk in value.chunks:
                    chunk = np.ascontiguousarray(chunk, dtype=value.dtype)
                    if chunk.shape[1:] != shape[1:]:
                        raise ValueError(f"{path}: {name} has a chunk of shape {chunk.shape}, not (n, *{shape[1:]})")
                    member.write(chunk.data)
                    written += len(chunk)
                if written != shape[0]:
                    raise ValueError(f"{path}: {name} has {written} rows, not the {shape[0]} declared")


def npz_member(path, name: str):
    """Where array ``name`` of the ``.npz`` at ``path`` lies: ``(byte offset of its data, dtype,
    shape)``, read from the zip and NPY headers alone; None when the member is compressed (then
    only ``np.load`` can read it)."""
    import struct
    import zipfile

    from numpy.lib import format as npy

    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)   # the local file header: its name and extra field lengths end it
        f.seek(info.header_offset + 30 + sum(struct.unpack("<HH", local[26:30])))
        version = npy.read_magic(f)
        shape, fortran, dtype = (npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0)(f)
        if fortran and len(shape) > 1:
            raise ValueError(f"{path}: {name} is stored in Fortran order")
        return f.tell(), dtype, shape


def read_npz_mapped(path, name: str) -> np.ndarray:
    """Array ``name`` of the uncompressed ``.npz`` at ``path``, memory-mapped (read-only): for
    reading a few rows of a large array. (Reading all of it this way leaves every page counted
    in the process's memory: whole passes use ``read_at``.) A compressed member is read whole."""
    layout = npz_member(path, name)
    if layout is None:
        with np.load(path) as data:
            return data[name]
    offset, dtype, shape = layout
    if not shape or 0 in shape:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def read_at(fd: int, offset: int, dtype, shape) -> np.ndarray:
    """A new array of ``dtype`` and ``shape`` read from file ``fd`` at byte ``offset`` with
    ``pread`` (nothing mapped, nothing cached in this process); ``EOFError`` if the file ends first."""
    out = np.empty(shape, dtype)
    view = memoryview(out.reshape(-1).view(np.uint8))
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if not got:
            raise EOFError(f"{len(view)} bytes at offset {offset}: the file ends after {done}")
        done += got
    return out


class Spill:
    """Arrays appended one by one to an unnamed temporary file, read back by index in any
    order: a stage's per-clip results held on disk, not in memory, until it writes its output.

    Each array (a *record*) has any length along its first axis and the trailing ``shape``.
    The file lives in ``directory`` (use the output's: it has room for the output) and has no
    name, so it is gone when the Spill is closed or collected, or the process ends however it
    ends: no half-written leftovers. Reading uses ``pread``: the records read do not stay in
    this process's memory (unlike pages of a memory map)."""

    def __init__(self, directory, dtype, shape=()):
        import tempfile

        Path(directory).mkdir(parents=True, exist_ok=True)
        self._file = tempfile.TemporaryFile(dir=directory)
        self.dtype, self.shape = np.dtype(dtype), tuple(shape)
        self._row_bytes = self.dtype.itemsize * int(np.prod(self.shape, dtype=np.int64))
        self._lengths, self._end, self._offsets = [], 0, None

    def append(self, array) -> None:
        array = np.ascontiguousarray(array, dtype=self.dtype)
        if array.shape[1:] != self.shape:
            raise ValueError(f"a record of shape {array.shape} in a spill of (n, *{self.shape})")
        data = memoryview(array.reshape(-1).view(np.uint8))   # bytes (cast() refuses empty arrays)
        while data:
            written = os.pwrite(self._file.fileno(), data, self._end)
            data, self._end = data[written:], self._end + written
        self._lengths.append(len(array))
        self._offsets = None

    @property
    def lengths(self) -> np.ndarray:
        """Each record's length along its first axis."""
        return np.array(self._lengths, dtype=np.int64)

    def __len__(self):
        return len(self._lengths)

    def __getitem__(self, i) -> np.ndarray:
        if self._offsets is None:
            self._offsets = np.concatenate([[0], np.cumsum(self._lengths, dtype=np.int64)]) * self._row_bytes
        start, end = self._offsets[i], self._offsets[i + 1]
        return read_at(self._file.fileno(), int(start), self.dtype, ((end - start) // max(self._row_bytes, 1),) + self.shape)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def view(self, order) -> "SpillView":
        """The records in ``order`` (indices), as a read-only sequence."""
        return SpillView(self, np.asarray(order, dtype=np.int64))

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SpillView:
    """Records of a ``Spill`` in a chosen order: ``len``, indexing, iteration and ``lengths``;
    it keeps the spill open while it is used."""

    def __init__(self, spill: Spill, order: np.ndarray):
        self.spill, self.order = spill, order

    @property
    def lengths(self) -> np.ndarray:
        return self.spill.lengths[self.order] if len(self.order) else np.zeros(0, np.int64)

    def __len__(self):
        return len(self.order)

    def __getitem__(self, i) -> np.ndarray:
        return self.spill[int(self.order[i])]

    def __iter__(self):
        return (self.spill[int(i)] for i in self.order)


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
