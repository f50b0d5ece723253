"""audio.header_mismatch: files holding less audio than their header declares (copies cut short)."""

import re
import struct

import numpy as np
import soundfile as sf

from ser.audio import headers
from ser.audio.headers import header_mismatch

from .conftest import write_tone


def cut(path, keep_bytes: int):
    """Keep the first ``keep_bytes`` of ``path`` (a copy cut short)."""
    data = path.read_bytes()
    path.write_bytes(data[:keep_bytes])
    return path


def riff(*chunks, magic=b"RIFF", pad=True) -> bytes:
    """A WAVE file from ``(id, body)`` chunks; ``pad=False`` leaves odd-sized chunks unpadded,
    as some writers do."""
    body = b"WAVE"
    for cid, data in chunks:
        body += cid + struct.pack("<I", len(data)) + data + (b"\0" if pad and len(data) % 2 else b"")
    return magic + struct.pack("<I", len(body)) + body


def fmt_chunk(channels=1, rate=16000, bits=16, tag=1) -> tuple:
    align = channels * bits // 8
    return b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def test_intact_files_are_not_truncated(tmp_path):
    for name, subtype in (("a.wav", "PCM_16"), ("b.wav", "FLOAT"), ("c.flac", "PCM_16"), ("d.flac", "PCM_24")):
        assert header_mismatch(write_tone(tmp_path / name, seconds=1.0, channels=2, subtype=subtype)) is None


def test_a_wav_cut_short_says_how_much_is_missing(tmp_path):
    path = write_tone(tmp_path / "x.wav", seconds=3.0)        # 48000 frames, 44-byte header
    assert header_mismatch(cut(path, 44 + 60000)) == "truncated: header says 48000 frames, file holds 30000"
    assert header_mismatch(cut(path, 44 + 59999)) == "truncated: header says 48000 frames, file holds 29999"
    assert header_mismatch(cut(path, 44)) == "truncated: header says 48000 frames, file holds 0"


def test_wav_frames_follow_the_block_alignment(tmp_path):
    stereo = write_tone(tmp_path / "s.wav", seconds=1.0, channels=2, subtype="FLOAT")   # 8 bytes a frame
    size = stereo.stat().st_size
    assert header_mismatch(cut(stereo, size - 800)) == "truncated: header says 16000 frames, file holds 15900"
    rf64 = tmp_path / "r.wav"
    sf.write(rf64, np.zeros((1000, 2)), 16000, format="RF64", subtype="PCM_24")
    assert rf64.read_bytes()[:4] == b"RF64" and header_mismatch(rf64) is None
    assert header_mismatch(cut(rf64, rf64.stat().st_size - 60)) == "truncated: header says 1000 frames, file holds 990"


def test_compressed_wav_is_judged_in_bytes(tmp_path):
    path = tmp_path / "adpcm.wav"
    sf.write(path, np.zeros(4000), 16000, subtype="IMA_ADPCM")
    assert header_mismatch(path) is None
    found = re.fullmatch(r"truncated: header says (\d+) bytes of audio, file holds (\d+)",
                         header_mismatch(cut(path, path.stat().st_size - 100)))
    assert found and int(found[2]) == int(found[1]) - 100


def test_odd_sized_chunks_with_and_without_padding(tmp_path):
    pcm = np.arange(100, dtype="<i2").tobytes()
    for pad in (True, False):
        path = tmp_path / f"odd{pad}.wav"
        path.write_bytes(riff(fmt_chunk(), (b"LIST", b"odd"), (b"data", pcm), pad=pad))
        assert header_mismatch(path) is None
        assert header_mismatch(cut(path, path.stat().st_size - 20)) == "truncated: header says 100 frames, file holds 90"


def test_wav_lengths_it_cannot_judge(tmp_path):
    streamed = tmp_path / "streamed.wav"   # a pipe writer's "length unknown" placeholder
    streamed.write_bytes(riff(fmt_chunk(), (b"data", b"")).replace(b"data\0\0\0\0", b"data\xff\xff\xff\xff")
                         + bytes(200))
    assert header_mismatch(streamed) is None
    no_data = tmp_path / "no_data.wav"
    no_data.write_bytes(riff(fmt_chunk()))
    assert header_mismatch(no_data) is None


def test_big_endian_rifx(tmp_path):
    fmt = struct.pack(">HHIIHH", 1, 1, 16000, 32000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack(">I", 16) + fmt + b"data" + struct.pack(">I", 400) + bytes(300)
    path = tmp_path / "x.wav"
    path.write_bytes(b"RIFX" + struct.pack(">I", len(body) + 100) + body)
    assert header_mismatch(path) == "truncated: header says 200 frames, file holds 150"


def test_a_flac_cut_short_is_found(tmp_path):
    path = write_tone(tmp_path / "x.flac", seconds=3.0)
    size = path.stat().st_size
    for keep in (size - 1, size - 3000, size // 2, 2000):
        reason = header_mismatch(cut(path, keep))
        assert reason is not None and reason.startswith("truncated: header says 48000 frames, file holds ")
        assert int(reason.rsplit(" ", 1)[1]) < 48000


def test_flac_with_unknown_length_or_an_id3_tag(tmp_path):
    path = write_tone(tmp_path / "x.flac", seconds=1.0)
    data = bytearray(path.read_bytes())
    tagged = tmp_path / "tagged.flac"
    tagged.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10) + bytes(data))  # a 10-byte ID3v2 tag
    assert headers._flac_total_samples(open(tagged, "rb")) == 16000
    # STREAMINFO (from byte 8) keeps total samples in the low 4 bits of its byte 13 and bytes 14-17:
    # 0 there means the encoder did not know.
    data[8 + 14:8 + 18] = bytes(4)
    data[8 + 13] &= 0xF0
    unknown = tmp_path / "unknown.flac"
    unknown.write_bytes(bytes(data[:len(data) // 2]))
    assert headers._flac_total_samples(open(unknown, "rb")) == 0 and header_mismatch(unknown) is None


def test_what_it_cannot_judge_is_none(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio\n")
    aiff = tmp_path / "x.aiff"
    sf.write(aiff, np.zeros(1000), 16000, format="AIFF")
    for path in (tmp_path / "empty.wav", tmp_path / "text.wav", cut(aiff, 500), tmp_path / "missing.wav"):
        assert header_mismatch(path) is None


def test_wav_is_judged_from_the_header_alone(tmp_path, monkeypatch):
    path = cut(write_tone(tmp_path / "x.wav", seconds=3.0), 5000)
    reads = []
    real_open = open

    class Counting:
        """A file whose reads are recorded."""

        def __init__(self, handle):
            self.handle = handle

        def read(self, n=-1):
            reads.append(n)
            return self.handle.read(n)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def counting_open(file, mode="r", *args, **kwargs):
        return Counting(real_open(file, mode, *args, **kwargs))

    def no_decode(*args, **kwargs):
        raise AssertionError("WAV must not be decoded")

    monkeypatch.setattr("builtins.open", counting_open)
    monkeypatch.setattr(sf, "SoundFile", no_decode)
    monkeypatch.setattr(sf, "read", no_decode)
    assert header_mismatch(path) == "truncated: header says 48000 frames, file holds 2478"
    assert reads and all(0 <= n <= 64 for n in reads)
