"""Keras model files as reproducible bytes: fixed zip times, renumbered shared objects, and the
bundle fingerprint stamped into ``metadata.json`` (``keras_stamp`` reads it back)."""

import json

from ser.core.files import atomic_path

KERAS_ZIP_TIME = (1980, 1, 1, 0, 0, 0)   # the earliest a zip entry can hold


KERAS_STAMP = "ser_bundle_sha256"   # metadata.json key: the bundle a .keras file was saved with


def write_keras(model, path, bundle_sha256: str | None = None):
    """Save a Keras model as ``.keras``, atomically, in canonical form (``canonical_keras``):
    one model always gives the same bytes. ``bundle_sha256`` is stamped into its
    ``metadata.json`` (``KERAS_STAMP``), as ``model.onnx`` carries it: a bundle edited after
    training fails it on either backend."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
        tmp.write_bytes(canonical_keras(tmp.read_bytes(), {KERAS_STAMP: bundle_sha256} if bundle_sha256 else None))


def keras_stamp(path) -> str | None:
    """The ``bundle_sha256`` a ``.keras`` file was stamped with (``write_keras``), or None."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("metadata.json")).get(KERAS_STAMP)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def canonical_keras(data: bytes, stamp: dict | None = None) -> bytes:
    """The bytes of a ``.keras`` archive with what changes from run to run taken out.

    Keras stamps each save with the time, twice: ``metadata.json`` holds ``date_saved`` (dropped
    here) and the zip entries hold the time they were written (set to 1980-01-01 here). And
    ``config.json`` links objects that layers share (e.g. one dtype policy) by a
    ``shared_object_id`` that is the object's memory address in the saving process: renumbered
    here 1, 2, ... in order of first appearance (the ids only pair configs within the file).
    Entries are written in name order, each with its original compression and fixed
    permissions. The rest is untouched: ``model.weights.h5`` holds no timestamps (h5py does not
    track times by default), so one model's weights are already the same bytes on every save."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in sorted(source.infolist(), key=lambda i: i.filename):
            content = source.read(info)
            if info.filename == "metadata.json":
                metadata = json.loads(content)
                metadata.pop("date_saved", None)
                metadata.update(stamp or {})
                content = json.dumps(metadata).encode()
            elif info.filename == "config.json":   # written by Keras as json.dumps(config): the same here
                content = json.dumps(_renumber_shared_objects(json.loads(content), {})).encode()
            entry = zipfile.ZipInfo(info.filename, date_time=KERAS_ZIP_TIME)
            entry.compress_type = info.compress_type
            entry.create_system = 3              # Unix, wherever it was written
            entry.external_attr = 0o644 << 16    # rw-r--r--
            target.writestr(entry, content)
    return out.getvalue()


def _renumber_shared_objects(config, numbers: dict):
    """``config`` (a Keras config.json, parsed) with each ``shared_object_id`` replaced by its
    position among the distinct ids, in order of first appearance."""
    if isinstance(config, dict):
        return {key: (numbers.setdefault(value, len(numbers) + 1) if key == "shared_object_id"
                      else _renumber_shared_objects(value, numbers)) for key, value in config.items()}
    if isinstance(config, list):
        return [_renumber_shared_objects(value, numbers) for value in config]
    return config
