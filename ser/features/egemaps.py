"""eGeMAPS (or ComParE) functionals with openSMILE: one of the network's inputs and the baseline's features."""

from functools import lru_cache
from pathlib import Path

import numpy as np

from ser.core.errors import DataError

# Config files of the feature sets params.yaml may name (ser.core.schema.FEATURE_SETS), as the
# opensmile package's FeatureSet enum locates them.
CONFIG_FILES = {"eGeMAPSv02": "egemaps/v02/eGeMAPSv02.conf", "ComParE_2016": "compare/ComParE_2016.conf"}


def _opensmile_api():
    """``(opensmile.core.lib, config folder)`` of the installed opensmile package.

    ``import opensmile`` costs 0.4 s (pandas, audinterface) and building ``opensmile.Smile``
    another 0.4 s (audobject scans every installed package's metadata): most of a one-file
    ``predict``. The ctypes binding to openSMILE's C library that the package ships
    (``opensmile/core/lib.py``, stdlib and NumPy only) does the same work, so it is loaded
    from its file, without running the package's ``__init__``. ``tests/test_baseline.py``
    holds the result equal to ``opensmile.Smile.process_signal``."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("opensmile")
        core = Path(next(iter(spec.submodule_search_locations))) / "core"
        lib_spec = importlib.util.spec_from_file_location("ser_opensmile_lib", core / "lib.py")
        lib = importlib.util.module_from_spec(lib_spec)
        lib_spec.loader.exec_module(lib)
    except (ImportError, OSError, AttributeError, TypeError) as err:  # not installed, or another layout
        raise DataError(f"openSMILE: cannot load the opensmile package's C library binding ({type(err).__name__}); "
                        "install the pinned version with `pip install -r requirements.txt`") from None
    return lib, core / "config"


@lru_cache(maxsize=1)
def _api():
    return _opensmile_api()


def _initialised(sample_rate: int, feature_set: str):
    """An openSMILE instance with the package's config for ``feature_set`` loaded (the ~25 ms
    of a run that does not depend on the clip), ready for one clip."""
    lib, config = _api()
    shared = config / "shared"
    options = {"sink": shared / "standard_external_data_output_single.conf.inc", "sinkLevel": "func",
               "bufferModeRbConf": shared / "BufferModeRb.conf.inc",
               "frameModeFunctionalsConf": shared / "FrameModeFunctionals.conf.inc",
               "source": shared / "standard_external_wave_input.conf.inc",
               "sampleRate": sample_rate, "nBits": 16}
    smile = lib.OpenSMILE()
    try:
        smile.initialize(config_file=str(config / CONFIG_FILES[feature_set]), options=options, loglevel=2)
    except lib.OpenSmileException as err:
        smile.free()
        raise DataError(f"openSMILE {feature_set} failed ({err})") from None
    return smile


_SPARE = {}   # (sample_rate, feature_set) -> one initialised instance, not yet run


def preload(sample_rate: int, feature_set: str = "eGeMAPSv02") -> None:
    """Initialise the next clip's openSMILE instance now, while nothing waits for it (a
    server between requests), so that ``functionals`` only runs it."""
    key = (sample_rate, feature_set)
    if key not in _SPARE:
        _SPARE[key] = _initialised(sample_rate, feature_set)


def functionals(y: np.ndarray, sample_rate: int, feature_set: str = "eGeMAPSv02") -> np.ndarray:
    """openSMILE functionals of one clip (88 values for eGeMAPSv02), NaNs replaced by 0.

    The same run as ``opensmile.Smile(feature_set, FeatureLevel.Functionals).process_signal``:
    the package's config files and options, the clip as 16-bit samples (truncated, as it
    does), one output row; a clip too short for any output gives zeros (the package's NaNs).
    An instance ``prepare`` initialised is used (once) when there is one."""
    lib, _ = _api()
    smile = _SPARE.pop((sample_rate, feature_set), None) or _initialised(sample_rate, feature_set)
    rows = []
    try:
        smile.external_sink_set_callback_ex("extsink", lambda data, meta: rows.append(data.copy()))
        smile.external_audio_source_write_data("extsource", bytes((y * 32768).astype(np.int16)))
        smile.external_audio_source_set_eoi("extsource")
        smile.run()
        n_values = smile.external_sink_get_num_elements("extsink")
    except lib.OpenSmileException as err:
        raise DataError(f"openSMILE {feature_set} failed ({err})") from None
    finally:
        smile.free()
    values = rows[0][0] if rows else np.full(n_values, np.nan, np.float32)
    return np.nan_to_num(values.astype(np.float32))
