"""``ser.features.egemaps.functionals`` drives openSMILE's C library directly (no pandas, no
audinterface: see its docstring); it must give exactly what the opensmile package gives."""

import warnings

import numpy as np
import opensmile
import pytest

from ser.audio import decode
from ser.core.config import FEATURE_SETS
from ser.features.egemaps import CONFIG_FILES, functionals

from .conftest import ROOT

SR = 16000
JL = ROOT.parent / "shared" / "samples" / "jl_corpus"


def package_functionals(y, feature_set):
    smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                            feature_level=opensmile.FeatureLevel.Functionals)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Segment too short, filling with NaN"
        return np.nan_to_num(smile.process_signal(y, SR).to_numpy(dtype=np.float32)[0])


def clips():
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    out = {"tone": (0.3 * np.sin(2 * np.pi * 180 * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32),
           "full scale": np.ones(SR, np.float32), "too short": rng.uniform(-0.1, 0.1, 100).astype(np.float32)}
    for path in sorted(JL.glob("*.wav"))[:2]:
        out[path.name] = decode.load(path, SR)
    return out


@pytest.mark.parametrize("name", list(clips()))
def test_equal_to_the_opensmile_package(name):
    y = clips()[name]
    got = functionals(y, SR, "eGeMAPSv02")
    assert got.dtype == np.float32 and got.shape == (88,)
    np.testing.assert_array_equal(got, package_functionals(y, "eGeMAPSv02"))
    if name == "too short":
        assert not got.any()   # no output frame: the package's NaNs, as zeros


def test_a_missing_opensmile_is_one_line(monkeypatch):
    import importlib.util

    from ser.core.errors import DataError
    from ser.features import egemaps

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"^openSMILE: cannot load the opensmile package's C library binding "
                                        r"\(AttributeError\); install the pinned version"):
        egemaps._opensmile_api()


def test_every_feature_set_params_may_name():
    assert set(CONFIG_FILES) == set(FEATURE_SETS)
    y = clips()["tone"]
    got = functionals(y, SR, "ComParE_2016")
    assert got.shape == (6373,)
    np.testing.assert_array_equal(got, package_functionals(y, "ComParE_2016"))
