"""Clips packed into one file: int16 PCM in an ``.npz`` (``save_pack``), read back lazily (``Pack``)."""

import numpy as np

from ser.core.files import write_npz


def to_int16(y: np.ndarray) -> np.ndarray:
    """Float [-1, 1] to 16-bit PCM, clipping anything beyond full scale."""
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def to_float(pcm: np.ndarray) -> np.ndarray:
    """16-bit PCM to float32 in [-1, 1]."""
    return pcm.astype(np.float32) / 32768.0


def save_pack(path, clips) -> None:
    """Store many clips as one .npz (concatenated int16 PCM plus offsets): one file, not thousands."""
    clips = [to_int16(c) if c.dtype != np.int16 else c for c in clips]
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    audio = np.concatenate(clips) if clips else np.zeros(0, dtype=np.int16)
    write_npz(path, audio=audio, offsets=offsets)


class Pack:
    """Read access to a pack written by ``save_pack``: ``pack[i]`` is clip i as float32."""

    def __init__(self, path):
        with np.load(path) as data:
            self.audio = data["audio"]
            self.offsets = data["offsets"]

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, i) -> np.ndarray:
        return to_float(self.audio[self.offsets[i]:self.offsets[i + 1]])

    def pcm(self, i) -> np.ndarray:
        """Clip i as stored (int16), for copying between packs without requantising."""
        return self.audio[self.offsets[i]:self.offsets[i + 1]]
