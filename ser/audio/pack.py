"""Clips packed into one file: int16 PCM in an ``.npz`` (``save_pack``), read back lazily (``Pack``)."""

import zipfile

import numpy as np

from ser.core.errors import DataError
from ser.core.files import read_npz_mapped, write_npz_chunks


def to_int16(y: np.ndarray) -> np.ndarray:
    """Float [-1, 1] to 16-bit PCM, clipping anything beyond full scale."""
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def to_float(pcm: np.ndarray) -> np.ndarray:
    """16-bit PCM to float32 in [-1, 1]."""
    return pcm.astype(np.float32) / 32768.0


def save_pack(path, clips) -> None:
    """Store many clips as one .npz (concatenated int16 PCM plus offsets): one file, not
    thousands. Written clip by clip: memory never holds the concatenation."""
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    chunks = (c if c.dtype == np.int16 else to_int16(c) for c in clips)
    write_npz_chunks(path, {"audio": (np.int16, offsets[-1], chunks)}, offsets=offsets)


class Pack:
    """Read access to a pack written by ``save_pack``: ``pack[i]`` is clip i as float32. The
    audio is memory-mapped: opening a pack reads only its offsets, and a clip when it is used."""

    def __init__(self, path):
        try:
            self.audio = read_npz_mapped(path, "audio")
            with np.load(path) as data:
                self.offsets = data["offsets"]
        except FileNotFoundError:
            raise DataError(f"{path}: not found; run `dvc repro` (or `dvc pull`) to make it") from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
            raise DataError(f"{path}: not a readable pack of clips ({type(err).__name__}: damaged or cut "
                            "short); rebuild it with `dvc repro`") from None
        if len(self.offsets) < 1 or self.offsets[-1] != len(self.audio):
            raise DataError(f"{path}: its offsets do not match its audio (damaged); rebuild it with `dvc repro`")

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, i) -> np.ndarray:
        return to_float(self.audio[self.offsets[i]:self.offsets[i + 1]])

    def pcm(self, i) -> np.ndarray:
        """Clip i as stored (int16), for copying between packs without requantising: a plain
        array view of the mapped file (pickled as its values when sent to a worker)."""
        return np.asarray(self.audio[self.offsets[i]:self.offsets[i + 1]])
