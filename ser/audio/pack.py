"""Clips packed into one file: int16 PCM in an ``.npz`` (``save_pack``), read back lazily (``Pack``)."""

import zipfile

import numpy as np

from ser.core.errors import DataError
from ser.core.files import Chunked, npz_member, read_at, write_npz_chunks


def to_int16(y: np.ndarray) -> np.ndarray:
    """Float [-1, 1] to 16-bit PCM, clipping anything beyond full scale."""
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def to_float(pcm: np.ndarray) -> np.ndarray:
    """16-bit PCM to float32 in [-1, 1]."""
    return pcm.astype(np.float32) / 32768.0


def save_pack(path, clips) -> None:
    """Store many clips as one .npz (concatenated int16 PCM plus offsets): one file, not
    thousands. Written clip by clip: memory never holds the concatenation. ``clips`` may be a
    sequence with a ``lengths`` attribute (a ``core.files.SpillView``): then it is read once,
    clip by clip, in order."""
    lengths = getattr(clips, "lengths", None)
    if lengths is None:
        lengths = np.array([len(c) for c in clips], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    chunks = (c if c.dtype == np.int16 else to_int16(c) for c in clips)
    write_npz_chunks(path, {"audio": Chunked(np.int16, offsets[-1], chunks), "offsets": offsets})


class Pack:
    """Read access to a pack written by ``save_pack``: ``pack[i]`` is clip i as float32,
    ``pack.pcm(i)`` as stored. Opening a pack reads only its offsets; a clip is read from the
    file when it is asked for (``pread``: no memory map whose pages would stay counted in this
    process's memory), so a pack of any size costs no memory."""

    def __init__(self, path):
        self.path = str(path)
        try:
            with np.load(path) as data:
                self.offsets = data["offsets"]
            layout = npz_member(path, "audio")
            if layout is None:   # a compressed pack (not one of ours): read whole
                with np.load(path) as data:
                    self._audio, n_samples = data["audio"], len(data["audio"])
            else:
                self._data_offset, dtype, shape = layout
                if dtype != np.int16 or len(shape) != 1:
                    raise ValueError("audio is not 1-D int16")
                self._audio, n_samples = None, shape[0]
                self._file = open(path, "rb")  # noqa: SIM115 - held for the pack's life, closed by close()
        except FileNotFoundError:
            raise DataError(f"{path}: not found; run `dvc repro` (or `dvc pull`) to make it") from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
            raise DataError(f"{path}: not a readable pack of clips ({type(err).__name__}: damaged or cut "
                            "short); rebuild it with `dvc repro`") from None
        if len(self.offsets) < 1 or self.offsets[-1] != n_samples or self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0):
            raise DataError(f"{path}: its offsets do not match its audio (damaged); rebuild it with `dvc repro`")

    def __len__(self):
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Each clip's length in samples."""
        return np.diff(self.offsets)

    def __getitem__(self, i) -> np.ndarray:
        return to_float(self.pcm(i))

    def pcm(self, i) -> np.ndarray:
        """Clip i as stored (int16), for copying between packs without requantising: a plain
        array of its own (pickled as its values when sent to a worker)."""
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        if self._audio is not None:
            return np.array(self._audio[start:end])
        try:
            return read_at(self._file.fileno(), self._data_offset + 2 * start, np.int16, end - start)
        except EOFError:
            raise DataError(f"{self.path}: cut short (clip {i} ends past the end of the file); rebuild it with "
                            "`dvc repro`") from None

    def pcms(self):
        """Every clip as stored (int16), in order, read one at a time when drawn."""
        return (self.pcm(i) for i in range(len(self)))

    @property
    def stored(self) -> "StoredClips":
        """The clips as stored (int16), as a sequence: ``pack.stored[i]`` is ``pack.pcm(i)``."""
        return StoredClips(self)

    def close(self) -> None:
        if self._audio is None:
            self._file.close()


class StoredClips:
    """A ``Pack``'s clips as int16 PCM: ``len``, indexing, iteration and ``lengths``, each clip
    read when asked for (see ``Pack.stored``)."""

    def __init__(self, pack: Pack):
        self.pack = pack

    def __len__(self):
        return len(self.pack)

    @property
    def lengths(self) -> np.ndarray:
        return self.pack.lengths

    def __getitem__(self, i) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.pack.pcm(i % len(self))

    def __iter__(self):
        return self.pack.pcms()
