"""Decoding: any audio file to mono float32 at one rate, whole (``load``) or streamed in pieces
(``segments``), with its sample rate and magnitude checked and the channel with the voice kept."""

import os
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from ser.audio.dsp import resample
from ser.audio.headers import (
    TRUNCATED,
    UNKNOWN_FRAMES,
    header_mismatch,
    read_blocks,
    read_decodable,
)
from ser.core.errors import DataError


def probe(path) -> str | None:
    """Return None if ``path`` looks like a readable, non-empty audio file, else a short reason."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "empty file"
        info = sf.info(os.fsencode(path))
    except (RuntimeError, sf.LibsndfileError, OSError) as err:
        return f"not readable as audio ({str(err).splitlines()[0][:120]})"
    if info.frames == 0:
        return "no audio frames"
    return None


def _reason(err: Exception) -> str:
    """``Type: first line of the message`` (just the type when the message is empty)."""
    text = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


RATE_RANGE = (1000, 384_000)   # Hz a recording may have: a header outside it is damaged, and


                               # resampling from 1 Hz would cost hours
MAX_MAGNITUDE = 1000.0         # float audio lives within +-1: 60 dB over that is a damaged file


def check_rate(rate: int, path) -> None:
    """``DataError`` for a sample rate outside ``RATE_RANGE``, before any resampling."""
    if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise DataError(f"{path}: sample rate {rate} Hz is outside {RATE_RANGE[0] // 1000}-{RATE_RANGE[1] // 1000} kHz "
                        "(a damaged header?)")


def load(path, sample_rate: int) -> np.ndarray:
    """Decode any sample rate, mono or multichannel, to mono float32 at ``sample_rate``.

    libsndfile (wav, flac, ogg, mp3) is read directly, which is what ``librosa.load`` does
    first anyway, minus its overhead (and its imports); anything else goes through
    ``librosa.load``'s fallbacks. Of several channels the one with the most speech is kept
    (``voice_channel``), and resampling uses soxr_hq, as ``librosa.load`` would. A file cut
    short is decoded up to the cut (``header_mismatch`` says so to callers).
    Raises ``DataError`` naming the file when it cannot be decoded or holds no samples.
    """
    first_reason = None
    try:
        try:
            info = sf.info(os.fsencode(path))
            check_rate(info.samplerate, path)
            if info.frames >= UNKNOWN_FRAMES:   # libsndfile needs a length it can seek to: it cannot read these
                raise DataError(f"{path}: cannot decode audio (its header gives no length; re-encode it, e.g. "
                                "`sox in.flac out.wav`)")
            try:
                data, file_rate = sf.read(os.fsencode(path), dtype="float32", always_2d=True)
            except sf.LibsndfileError:
                # A file cut short (a FLAC "lost sync") is decoded up to the cut; its callers say
                # so (``header_mismatch``). Any other failure goes on to the fallbacks below.
                data, file_rate = read_decodable(path)
                if not len(data) or not (header_mismatch(path) or "").startswith(TRUNCATED):
                    raise
            y = to_mono(data, file_rate, sample_rate, path)
        except sf.LibsndfileError as err:
            first_reason = _reason(err)  # libsndfile says what is wrong; the fallbacks rarely do
            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # audioread fallback warnings: the error below is the message
                data, _ = librosa.load(str(path), sr=sample_rate, mono=False)
            y = to_mono(np.atleast_2d(data).T, sample_rate, sample_rate, path)
    except DataError:
        raise
    except Exception as err:  # decoders raise many types (LibsndfileError, EOFError, NoBackendError, ...)
        raise DataError(f"{path}: cannot decode audio ({first_reason or _reason(err)})") from None
    return _checked(y, path)


def _checked(y: np.ndarray, path) -> np.ndarray:
    if y.size == 0:
        raise DataError(f"{path}: no audio samples")
    if not np.all(np.isfinite(y)):
        raise DataError(f"{path}: audio contains NaN or infinite samples")
    return np.ascontiguousarray(y, dtype=np.float32)


def check_magnitude(data: np.ndarray, path) -> None:
    """``DataError`` for decoded samples far outside +-1 (checked before resampling spreads them)."""
    with np.errstate(invalid="ignore"):
        peak = float(np.nanmax(np.abs(data))) if data.size else 0.0
    if peak > MAX_MAGNITUDE:
        raise DataError(f"{path}: samples up to {peak:.3g} in size, where audio lies within +-1 (a damaged file?)")


def to_mono(data: np.ndarray, file_rate: int, sample_rate: int, path) -> np.ndarray:
    """Decoded ``[frames, channels]`` audio at ``file_rate`` as mono at ``sample_rate``: its
    magnitude checked, its voice channel (``voice_channel``), its mean removed (a DC offset is
    a step at the clip's edges, which resampling would turn into ringing that no later
    high-pass removes), resampled."""
    check_magnitude(data, path)
    y = voice_channel(data, file_rate)
    if y.size:
        with np.errstate(invalid="ignore"):
            y = (y - np.float32(np.mean(y, dtype=np.float64))).astype(np.float32)
    if file_rate != sample_rate and y.size:
        y = resample(y, file_rate, sample_rate)
    return y


def voice_channel(data: np.ndarray, sample_rate: int) -> np.ndarray:
    """The channel of ``[frames, channels]`` audio with the most voiced speech (Silero VAD,
    ``ser.audio.speech``), the loudest (highest RMS) of those tied; a mono file is itself.

    Averaging would dilute a voice recorded on one channel of several (a lavalier on channel 3
    of a 6-channel recorder) with the others' noise, and cancel out-of-phase stereo; the loudest
    channel loses the voice when the other one carries a louder hum. The detector costs about
    5 ms per second of audio per channel, and only multichannel files pay it."""
    if data.shape[1] == 1:
        return data[:, 0]
    from ser.audio.speech import CHANNEL_THRESHOLD, speech_seconds

    power = np.einsum("ij,ij->j", data, data, dtype=np.float64)
    voiced = [speech_seconds(np.ascontiguousarray(data[:, c]), sample_rate, CHANNEL_THRESHOLD) if power[c] > 0 else 0.0
              for c in range(data.shape[1])]
    best = max(range(data.shape[1]), key=lambda c: (voiced[c], power[c]))
    return np.ascontiguousarray(data[:, best])


def duration(path) -> float | None:
    """Seconds of audio in ``path`` from its header, or None when libsndfile cannot tell."""
    try:
        info = sf.info(os.fsencode(path))
    except (RuntimeError, sf.LibsndfileError, OSError):
        return None
    if not info.samplerate or info.frames >= UNKNOWN_FRAMES:   # e.g. a streamed FLAC: length not in the header
        return None
    return info.frames / info.samplerate


def segments(path, sample_rate: int, seconds: float | None = None):
    """Yield ``(start_sample, mono float32 at sample_rate)`` for consecutive ``seconds``-long
    segments of ``path`` (the whole file as one when None).

    The file is decoded one segment at a time, so memory does not grow with its length (an hour
    of audio costs what ``seconds`` of it do). Each segment is decoded as ``load`` decodes a
    file: its voice channel, resampled on its own. Formats libsndfile cannot stream are
    decoded whole (``load``) and cut."""
    try:
        handle = sf.SoundFile(os.fsencode(path)) if seconds else None
    except (sf.LibsndfileError, RuntimeError, OSError):
        handle = None
    if handle is None:
        y = load(path, sample_rate)
        step = max(1, int(round(seconds * sample_rate))) if seconds else len(y)
        for start in range(0, len(y), step):
            yield start, y[start:start + step]
        return
    with handle:
        check_rate(handle.samplerate, path)
        step = max(1, int(round(seconds * handle.samplerate)))
        start = read = 0
        cut = False
        while not cut:
            try:
                data = handle.read(step, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as err:
                if not (header_mismatch(path) or "").startswith(TRUNCATED):
                    raise DataError(f"{path}: cannot decode audio ({_reason(err)})") from None
                # A file cut short: its last segment is what decodes up to the cut (callers say so).
                handle.seek(read)
                data, cut = read_blocks(handle), True
            read += len(data)
            if not len(data):
                break
            y = to_mono(data, handle.samplerate, sample_rate, path)
            yield start, _checked(y, path)
            start += len(y)
