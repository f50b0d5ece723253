"""Audio operations: decoding, silence removal, augmentation, and packing clips into one file."""

import os
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from .dsp import non_silent_intervals
from .errors import DataError
from .io import write_npz


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
UNKNOWN_FRAMES = 2**63 - 1     # libsndfile's frame count when a header does not give the length


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
                data, file_rate = _read_decodable(path)
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
    ``ser.speech``), the loudest (highest RMS) of those tied; a mono file is itself.

    Averaging would dilute a voice recorded on one channel of several (a lavalier on channel 3
    of a 6-channel recorder) with the others' noise, and cancel out-of-phase stereo; the loudest
    channel loses the voice when the other one carries a louder hum. The detector costs about
    5 ms per second of audio per channel, and only multichannel files pay it."""
    if data.shape[1] == 1:
        return data[:, 0]
    from .speech import CHANNEL_THRESHOLD, speech_seconds

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
                data, cut = _read_blocks(handle), True
            read += len(data)
            if not len(data):
                break
            y = to_mono(data, handle.samplerate, sample_rate, path)
            yield start, _checked(y, path)
            start += len(y)


def resample(y: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """``y`` at ``target_rate`` with soxr's high-quality filter, ``ceil(len * ratio)`` samples
    long: ``librosa.resample(res_type="soxr_hq")`` without importing librosa."""
    import soxr

    n_out = int(np.ceil(len(y) * target_rate / orig_rate))
    out = soxr.resample(y, orig_rate, target_rate, quality="soxr_hq")
    return np.pad(out, (0, max(0, n_out - len(out))))[:n_out].astype(y.dtype)


def remove_silence(y: np.ndarray, top_db: float) -> np.ndarray:
    """Keep only the non-silent intervals (quieter than ``top_db`` below the peak is silence).

    Digital silence has no peak to be relative to: it is all silence, and nothing is kept."""
    if is_silent(y):
        return y[:0]
    intervals = non_silent_intervals(y, top_db)
    if len(intervals) == 0:
        return y[:0]
    return np.concatenate([y[start:end] for start, end in intervals])


def is_silent(y: np.ndarray, floor: float = 1e-4) -> bool:
    """True when the peak amplitude is below ``floor`` (digital silence or near it)."""
    return y.size == 0 or float(np.max(np.abs(y))) < floor


HIGH_PASS_HZ = 30.0   # below the lowest voice (~60 Hz): removes DC offset and rumble, not speech


def remove_dc(y: np.ndarray, sample_rate: int, cutoff_hz: float = HIGH_PASS_HZ) -> np.ndarray:
    """``y`` without its DC offset and what lies below ``cutoff_hz``, as a speech front end
    does: the mean is subtracted, then a zero-phase high-pass with the magnitude of a 2nd-order
    Butterworth applied twice (``scipy.signal.sosfiltfilt``'s response), done with NumPy's FFT
    because importing ``scipy.signal`` would cost prediction's cold start ~0.5 s.

    The clip is extended at both ends by its odd reflection (as ``sosfiltfilt`` pads), so the
    ends do not ring. A constant offset comes out as exactly nothing (to rounding). With
    ``cutoff_hz`` 0 only the mean is removed."""
    y64 = np.asarray(y, np.float64)
    if y64.size < 2:
        return np.zeros_like(np.asarray(y, np.float32))
    y64 = y64 - y64.mean()
    if cutoff_hz <= 0:
        return y64.astype(np.float32)   # the mean alone
    pad = min(len(y64) - 1, int(sample_rate / cutoff_hz))   # one period of the cutoff each side
    ext = np.concatenate([2 * y64[0] - y64[pad:0:-1], y64, 2 * y64[-1] - y64[-2:-pad - 2:-1]])
    n = 1 << (len(ext) - 1).bit_length()                    # a power of two: pocketfft's fast case
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    with np.errstate(divide="ignore"):
        response = 1.0 / (1.0 + (cutoff_hz / freqs) ** 4)   # |H|^2 of a 2nd-order Butterworth; 0 at DC
    out = np.fft.irfft(np.fft.rfft(ext, n) * response, n)[pad:pad + len(y64)]
    return out.astype(np.float32)


def clean(y: np.ndarray, sample_rate: int, top_db: float, min_duration_s: float, loudness_dbfs: float,
          high_pass_hz: float = HIGH_PASS_HZ) -> np.ndarray:
    """The one cleaning rule for training and prediction: remove DC offset and rumble below
    ``high_pass_hz`` (``remove_dc``; ``prepare.high_pass_hz``), remove silent stretches, reject clips that are silent or shorter than
    ``min_duration_s`` seconds of sound, and bring what is left to ``loudness_dbfs``
    (``normalise_level``).

    Every step is relative to the clip's own level (silence is ``top_db`` below its peak), so a
    voice recorded at any gain or DC offset comes out the same. Raises ``DataError`` with the
    reason (no file name: callers add it)."""
    if is_silent(y):
        raise DataError("all silence")
    y = remove_dc(y, sample_rate, high_pass_hz)
    if is_silent(y):
        raise DataError("all silence (a constant offset only)")
    y = remove_silence(y, top_db)
    if len(y) < min_duration_s * sample_rate:
        raise DataError(f"shorter than prepare.min_duration_s={min_duration_s} after silence removal "
                        f"({len(y) / sample_rate:.2f} s of sound)")
    return normalise_level(y, loudness_dbfs)


PEAK_LIMIT = 0.99   # below 16-bit full scale, so storing a clip as PCM never clips it


def normalise_level(y: np.ndarray, rms_dbfs: float) -> np.ndarray:
    """``y`` scaled to an RMS of ``rms_dbfs`` dB re full scale, or less where that would push
    its peak past ``PEAK_LIMIT``. Only a gain: level invariance without changing the sound.

    RMS (of a clip already stripped of silence) rather than peak: one click would set a peak
    normalisation. The target only sets headroom; any fixed one makes the level irrelevant."""
    y = np.asarray(y, np.float32)
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if rms == 0.0:
        return y
    gain = min(10.0 ** (rms_dbfs / 20.0) / rms, PEAK_LIMIT / peak)
    return (y * np.float32(gain)).astype(np.float32)


def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise at a signal-to-noise ratio of ``snr_db`` decibels."""
    signal_power = float(np.mean(y.astype(np.float64) ** 2))
    noise_power = signal_power / (10.0 ** (snr_db / 10.0))
    noise = rng.standard_normal(y.shape) * np.sqrt(noise_power)
    return (y + noise).astype(np.float32)


def pitch_shift(y: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping duration (librosa phase vocoder + resampling)."""
    import librosa

    return librosa.effects.pitch_shift(y, sr=sample_rate, n_steps=semitones).astype(np.float32)


def apply_gain(y: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by ``gain_db`` decibels, clipping at full scale as a real recorder would."""
    return np.clip(y * np.float32(10.0 ** (gain_db / 20.0)), -1.0, 1.0).astype(np.float32)


def band_limit(y: np.ndarray, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Band-pass between ``low_hz`` and ``high_hz`` (4th-order Butterworth): a different
    microphone, room or telephone line. ``high_hz`` at or above Nyquist means high-pass only."""
    from scipy.signal import butter, sosfilt

    nyquist = sample_rate / 2
    if high_hz >= nyquist * 0.99:
        sos = butter(4, low_hz, btype="highpass", fs=sample_rate, output="sos")
    else:
        sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    return sosfilt(sos, y).astype(np.float32)


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


# --- truncated files ------------------------------------------------------------------------

# WAV format tags whose block_align is one frame (PCM, float, A-law, mu-law); for others
# (ADPCM and the like) a block holds many frames, so a shortfall is reported in bytes.
_FRAME_ALIGNED = {0x0001, 0x0003, 0x0006, 0x0007}


TRUNCATED = "truncated:"     # how every reason for a file cut short starts
EXTRA_DATA = "extra data:"   # ... and for audio past what the header declares


def header_mismatch(path) -> str | None:
    """A short reason when ``path`` holds less audio than its own header declares (it starts
    ``truncated:``), or bytes past the declared audio that no decoder reads (``extra data:``);
    None when it holds what it says.

    A copy cut short still opens: libsndfile quietly decodes what is there (and a WAV's
    trailing audio is quietly ignored), so without this check the clip would be labelled and
    trained on as if whole. WAV (RIFF, RIFX, RF64/BW64) is judged from the header alone: the
    ``data`` chunk's declared size against the bytes present, and whatever follows it must be
    chunks. Ogg (Vorbis, Opus): every page whole, and every stream closed by its
    end-of-stream page. FLAC and MP3: the length their header declares (STREAMINFO; the
    Xing/Info frame) against what libsndfile decodes (the last sample is read first, so an
    intact file costs one frame's decode). None for what it cannot judge: other formats,
    lengths the header leaves unknown, files that do not open (``probe`` reports those).
    """
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(12)
            size = os.fstat(f.fileno()).st_size
            if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
                return _wav_mismatch(f, head[:4], size)
            if head[:4] == b"OggS":
                return _ogg_truncation(f, size)
            total = _flac_total_samples(f)
    except (OSError, struct.error):
        return None
    if total:
        return _declared_length_truncation(path, total)
    try:
        info = sf.info(_os_path(path))
    except (RuntimeError, sf.LibsndfileError, OSError):
        return None
    if info.format == "MP3" and 0 < info.frames < UNKNOWN_FRAMES:
        return _declared_length_truncation(path, info.frames)
    return None


def _is_chunk_id(raw: bytes) -> bool:
    """Four printable ASCII characters, as every RIFF chunk id is."""
    return len(raw) == 4 and all(32 <= c < 127 for c in raw)


def _wav_mismatch(f, magic: bytes, size: int) -> str | None:
    """``header_mismatch`` for an open RIFF/RIFX/RF64 WAVE file of ``size`` bytes: walk the
    chunks (seeking, never reading audio) to ``data``, compare its declared size with what
    follows, and check that what lies past it is chunks (``_unchunked_tail``)."""
    import struct

    endian = ">" if magic == b"RIFX" else "<"
    tag = align = ds64_data = None
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        chunk, declared = f.read(4), struct.unpack(endian + "I", f.read(4))[0]
        if chunk == b"ds64":  # RF64: the real 64-bit sizes, the 32-bit fields say 0xFFFFFFFF
            body = f.read(16)
            ds64_data = struct.unpack("<Q", body[8:16])[0] if len(body) == 16 else None
        elif chunk == b"fmt ":
            body = f.read(min(declared, 26))
            if len(body) >= 14:
                tag, align = struct.unpack(endian + "H", body[:2])[0], struct.unpack(endian + "H", body[12:14])[0]
                if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID
                    tag = struct.unpack(endian + "H", body[24:26])[0]
        elif chunk == b"data":
            if declared == 0xFFFFFFFF:
                if magic in (b"RIFF", b"RIFX") or ds64_data is None:
                    return None  # a streamed file's "length unknown" placeholder: nothing to judge
                declared = ds64_data
            present = size - pos - 8
            framed = tag in _FRAME_ALIGNED and align
            if present < declared and (not framed or present // align < declared // align):
                if framed:
                    return f"{TRUNCATED} header says {declared // align} frames, file holds {present // align}"
                return f"{TRUNCATED} header says {declared} bytes of audio, file holds {present}"
            extra = _unchunked_tail(f, pos + 8 + declared + (declared & 1), size, endian)
            if extra:
                said = f"{declared // align} frames" if framed else f"{declared} bytes of audio"
                return f"{EXTRA_DATA} header says {said}, and {extra} more bytes follow them (not decoded)"
            return None
        nxt = pos + 8 + declared + (declared & 1)  # chunks are padded to an even length
        if declared & 1 and nxt + 4 <= size:
            # Some writers omit the pad byte after an odd-sized chunk: trust the next chunk id.
            f.seek(nxt)
            if not _is_chunk_id(f.read(4)):
                f.seek(nxt - 1)
                if _is_chunk_id(f.read(4)):
                    nxt -= 1
        pos = nxt
    return None  # no data chunk inside the file: not a truncation this can measure


def _unchunked_tail(f, start: int, size: int, endian: str) -> int:
    """Bytes from ``start`` to the end of the file that are not whole RIFF chunks (metadata
    such as LIST or id3 after the audio is fine), nor zero padding."""
    import struct

    pos = start
    while pos + 8 <= size:
        f.seek(pos)
        chunk, declared = f.read(4), struct.unpack(endian + "I", f.read(4))[0]
        if not _is_chunk_id(chunk) or pos + 8 + declared > size:
            break
        pos += 8 + declared + (declared & 1)
    rest = size - pos
    if rest <= 1:
        return 0   # a final pad byte, or an odd-sized last chunk without one
    f.seek(pos)
    tail = f.read(min(rest, 1 << 20))
    return 0 if len(tail) == rest and not any(tail) else rest


def _ogg_truncation(f, size: int) -> str | None:
    """``header_mismatch`` for an Ogg file: walk its pages (headers only); a page cut short, or
    a stream never closed by its end-of-stream page, means the file was cut. libsndfile takes
    an Ogg file's length from its last page, so a cut one otherwise decodes as if whole."""
    import struct

    pos, open_streams = 0, set()
    while pos < size:
        f.seek(pos)
        head = f.read(27)
        if not (head.startswith(b"OggS") or b"OggS".startswith(head)):
            break   # not a page: trailing bytes this cannot judge
        if len(head) < 27:
            return f"{TRUNCATED} the last Ogg page is cut short"
        flags, serial, segments = head[5], struct.unpack("<I", head[14:18])[0], head[26]
        table = f.read(segments)
        if len(table) < segments or pos + 27 + segments + sum(table) > size:
            return f"{TRUNCATED} the last Ogg page is cut short"
        if flags & 0x02:
            open_streams.add(serial)
        if flags & 0x04:
            open_streams.discard(serial)
        pos += 27 + segments + sum(table)
    if open_streams:
        return f"{TRUNCATED} the Ogg stream stops before its end-of-stream page"
    return None


def _flac_total_samples(f) -> int | None:
    """STREAMINFO's total samples per channel of the open file ``f`` if it is FLAC (after an
    optional ID3v2 tag); None when it is not FLAC. 0 means the encoder did not know."""
    f.seek(0)
    head = f.read(10)
    start = 0
    if head[:3] == b"ID3" and len(head) == 10:
        # ID3v2 size: four 7-bit bytes; a footer (flag 0x10) adds 10 more.
        start = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10])) + (10 if head[5] & 0x10 else 0)
    f.seek(start)
    block = f.read(4 + 4 + 34)
    if len(block) < 42 or block[:4] != b"fLaC" or block[4] & 0x7F != 0:
        return None
    # STREAMINFO bytes 10-17: 20 bits rate, 3 channels, 5 bits per sample, 36 bits total samples.
    return int.from_bytes(block[8 + 10:8 + 18], "big") & 0xFFFFFFFFF


def _os_path(path) -> bytes:
    """``path`` as bytes for libsndfile: a name that is not valid UTF-8 still opens."""
    import os

    return os.fsencode(path)


def _declared_length_truncation(path, total: int) -> str | None:
    """``header_mismatch`` for a file (FLAC, MP3) whose header declares ``total`` frames."""
    try:
        with sf.SoundFile(_os_path(path)) as f:
            f.seek(total - 1)
            if len(f.read(1, dtype="int16")) == 1:
                return None  # the last declared sample decodes: intact
    except (RuntimeError, sf.LibsndfileError, OSError):
        pass
    decoded = _decodable_frames(path)
    if decoded is None or decoded >= total:
        return None
    return f"{TRUNCATED} header says {total} frames, file holds {decoded}"


def _decodable_frames(path, block: int = 4096) -> int | None:
    """Frames libsndfile decodes from the start before it stops or fails; None if it cannot open ``path``."""
    try:
        f = sf.SoundFile(_os_path(path))
    except (RuntimeError, sf.LibsndfileError, OSError):
        return None
    done = 0
    with f:
        try:
            while got := len(f.read(block, dtype="int16")):
                done += got
        except (RuntimeError, sf.LibsndfileError):
            pass  # a cut FLAC ends in "lost sync": what came before is what the file holds
    return done


def _read_decodable(path) -> tuple[np.ndarray, int]:
    """``(float32 [frames, channels], rate)``: what libsndfile decodes from the start of
    ``path`` before it fails (a cut file); raises ``LibsndfileError`` if it does not open."""
    with sf.SoundFile(_os_path(path)) as f:
        return _read_blocks(f), f.samplerate


def _read_blocks(f, block: int = 4096) -> np.ndarray:
    """Float32 ``[frames, channels]`` read from the open ``f`` in ``block``-frame steps until
    its end or a decoding failure (the blocks ``_decodable_frames`` counts)."""
    parts = []
    try:
        while len(part := f.read(block, dtype="float32", always_2d=True)):
            parts.append(part)
    except (RuntimeError, sf.LibsndfileError):
        pass
    return np.concatenate(parts) if parts else np.zeros((0, f.channels), np.float32)
