"""The classic baseline: openSMILE eGeMAPS functionals + an RBF SVM (scikit-learn)."""

import numpy as np

def _smile(feature_set: str):
    import opensmile

    return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                           feature_level=opensmile.FeatureLevel.Functionals)


_SMILE = {}


def functionals(y: np.ndarray, sample_rate: int, feature_set: str = "eGeMAPSv02") -> np.ndarray:
    """openSMILE functionals of one clip (88 values for eGeMAPSv02), NaNs replaced by 0."""
    if feature_set not in _SMILE:  # one extractor per process; building it costs ~0.5 s
        _SMILE[feature_set] = _smile(feature_set)
    values = _SMILE[feature_set].process_signal(y, sample_rate).to_numpy(dtype=np.float32)[0]
    return np.nan_to_num(values)


def fit_svm(features: np.ndarray, labels: np.ndarray, c: float, seed: int):
    """Standardise + RBF SVM, the usual eGeMAPS baseline."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(C=c, kernel="rbf", gamma="scale", random_state=seed)).fit(features, labels)
