"""What a file holds against what its header declares: cut short (``TRUNCATED``) or carrying audio
past the declared end (``EXTRA_DATA``), and reading what decodes of a damaged file."""

import os

import numpy as np
import soundfile as sf

UNKNOWN_FRAMES = 2**63 - 1     # libsndfile's frame count when a header does not give the length


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
        info = sf.info(os.fsencode(path))
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



def _declared_length_truncation(path, total: int) -> str | None:
    """``header_mismatch`` for a file (FLAC, MP3) whose header declares ``total`` frames."""
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
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
        f = sf.SoundFile(os.fsencode(path))
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


def read_decodable(path) -> tuple[np.ndarray, int]:
    """``(float32 [frames, channels], rate)``: what libsndfile decodes from the start of
    ``path`` before it fails (a cut file); raises ``LibsndfileError`` if it does not open."""
    with sf.SoundFile(os.fsencode(path)) as f:
        return read_blocks(f), f.samplerate


def read_blocks(f, block: int = 4096) -> np.ndarray:
    """Float32 ``[frames, channels]`` read from the open ``f`` in ``block``-frame steps until
    its end or a decoding failure (the blocks ``_decodable_frames`` counts)."""
    parts = []
    try:
        while len(part := f.read(block, dtype="float32", always_2d=True)):
            parts.append(part)
    except (RuntimeError, sf.LibsndfileError):
        pass
    return np.concatenate(parts) if parts else np.zeros((0, f.channels), np.float32)
