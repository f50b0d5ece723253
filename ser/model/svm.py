"""The classic baseline's classifier: an RBF SVM (scikit-learn) over eGeMAPS functionals."""

import numpy as np


def fit_svm(features: np.ndarray, labels: np.ndarray, c: float, seed: int):
    """Standardize + RBF SVM, the usual eGeMAPS baseline."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(C=c, kernel="rbf", gamma="scale", random_state=seed)).fit(features, labels)
