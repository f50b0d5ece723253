"""Speaker, corpus, utterance or global standardization of the network's inputs.

Cross-corpus SER gains most from removing who is speaking and how they were recorded before
the classifier sees them (Schuller et al., 2010): each *group* of clips (one speaker, or one
corpus) is standardized with its own mean and variance. The same functions run in training,
in cross-validation, in ``evaluate`` and in ``predict``:

* ``global``: every clip uses the training set's statistics (classic standardization).
* ``utterance``: the spectrogram is standardized per clip and per mel band (CMVN); the
  vectors (one per clip) use the training statistics.
* ``speaker`` / ``corpus``: statistics of the clip's group. A small group gives noisy
  statistics, so they are shrunk toward the training prior: the mean with weight
  ``n / (n + prior_clips)`` for a group of ``n`` clips, the variance with
  ``n / (n + var_prior_clips)`` (a variance from 3 clips is far noisier than their mean).

A *reference* (``reference_statistics``, ``normalize_with_references``) is a set of other clips
of the same voice that supplies a clip's statistics without the clip itself: ``predict
--reference`` and the ``by_reference`` curves of the cv and loco stages.

Vectors (feature vector, eGeMAPS functionals) are ``[clips, dims]``; spectrograms
``[clips, bands, frames]`` are standardized per band over their non-padded frames.
"""

from dataclasses import dataclass

import numpy as np

_EPS = 1e-6


@dataclass
class Moments:
    """Per-clip sums over frames: ``total`` and ``squares`` ``[clips, dims]``, ``count`` ``[clips]``."""

    total: np.ndarray
    squares: np.ndarray
    count: np.ndarray


def clip_moments(x: np.ndarray) -> Moments:
    """Sums of values and squares over each clip's frames (padded spectrogram frames left out)."""
    x = np.asarray(x, np.float64)
    if x.ndim == 2:
        return Moments(x, x ** 2, np.ones(len(x)))
    # A zero-padded frame of the [0, 1]-scaled log-mel image is 0 in every band: not speech.
    valid = (x.max(axis=1, keepdims=True) > 0).astype(np.float64)
    count = valid[:, 0, :].sum(axis=1)
    return Moments((x * valid).sum(axis=2), (x ** 2 * valid).sum(axis=2), np.maximum(count, 1.0))


def _mean_var(m: Moments, rows) -> tuple[np.ndarray, np.ndarray]:
    n = m.count[rows].sum()
    mean = m.total[rows].sum(axis=0) / n
    var = np.maximum(m.squares[rows].sum(axis=0) / n - mean ** 2, 0.0)
    return mean, var


def group_rows(groups) -> dict:
    """``{group: its row indices, ascending}``, groups in sorted order, from one stable sort:
    O(n log n) however many groups there are (a mask per group was O(n x groups), quadratic
    when every test clip is a group of its own)."""
    groups = np.asarray(groups)
    keys, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    return dict(zip(keys, np.split(order, np.cumsum(np.bincount(inverse, minlength=len(keys)))[:-1])))


def fit_prior(x: np.ndarray, groups) -> dict:
    """Training prior: the average of the groups' means and variances (one group = pooled stats)."""
    m = clip_moments(x)
    groups = np.asarray(groups)
    stats = [_mean_var(m, rows) for rows in group_rows(groups).values()]
    return {"mean": np.mean([s[0] for s in stats], axis=0).tolist(),
            "var": np.mean([s[1] for s in stats], axis=0).tolist()}


def own_weight(clips, prior_clips: float):
    """The share ``n / (n + prior_clips)`` of a group's own statistics (1 without a prior)."""
    clips = np.asarray(clips, np.float64)
    return clips / (clips + prior_clips) if prior_clips > 0 else np.ones_like(clips)


def shrink(mean, var, clips, prior: dict, prior_clips: float, var_prior_clips: float | None = None):
    """``(mean, var)`` of ``clips`` clips shrunk toward ``prior``: the mean with ``prior_clips``,
    the variance with ``var_prior_clips`` (None: the same). ``clips`` may be an array (one
    group per row of ``mean``)."""
    var_prior_clips = prior_clips if var_prior_clips is None else var_prior_clips
    w = own_weight(clips, prior_clips)
    wv = own_weight(clips, var_prior_clips)
    if np.ndim(w):
        w, wv = w[:, None], wv[:, None]
    prior_mean, prior_var = np.asarray(prior["mean"]), np.asarray(prior["var"])
    return w * mean + (1 - w) * prior_mean, wv * var + (1 - wv) * prior_var


def group_statistics(x: np.ndarray, groups, prior: dict, prior_clips: float,
                     var_prior_clips: float | None = None, lone_file: str = "self") -> dict:
    """``{group: (mean, var, clips, weight)}``: each group's statistics shrunk toward ``prior``
    (``shrink``); ``weight`` is the share of its own mean. A group of one clip (a lone file)
    counts as a group of one (``lone_file: self``) or gets the training statistics alone
    (``training``): a clip's own mean is the emotion as much as the voice."""
    m = clip_moments(x)
    out = {}
    for g, rows in group_rows(groups).items():
        n = len(rows)
        if n == 1 and lone_file == "training":
            out[g] = (np.asarray(prior["mean"]), np.asarray(prior["var"]), 1, 0.0)
            continue
        mean, var = _mean_var(m, rows)
        mean, var = shrink(mean, var, n, prior, prior_clips, var_prior_clips)
        out[g] = (mean, var, n, float(own_weight(n, prior_clips)))
    return out


def reference_statistics(reference: np.ndarray, prior: dict, prior_clips: float,
                         var_prior_clips: float | None = None) -> tuple:
    """``(mean, var, clips, weight)`` from a reference: clips of the voice that are not the ones
    normalized (``predict --reference``), shrunk toward ``prior`` as a group of their size."""
    return group_statistics(reference, np.zeros(len(reference)), prior, prior_clips, var_prior_clips)[0] \
        if len(reference) else (np.asarray(prior["mean"]), np.asarray(prior["var"]), 0, 0.0)


def normalize_with_references(x: np.ndarray, pool: np.ndarray, references: np.ndarray, prior: dict,
                              prior_clips: float, var_prior_clips: float | None = None) -> np.ndarray:
    """Each clip ``i`` of ``x`` standardized with the statistics of the clips
    ``pool[references[i]]`` (``references``: ``[clips, k]`` row indices into ``pool``), shrunk
    toward ``prior`` as a group of ``k`` clips; ``k = 0``: the prior alone."""
    x = np.asarray(x, np.float32)
    references = np.asarray(references, dtype=np.int64).reshape(len(x), -1)
    k = references.shape[1]
    if k == 0:
        return standardize(x, prior["mean"], prior["var"])
    m = clip_moments(pool)
    count = m.count[references].sum(axis=1)[:, None]
    mean = m.total[references].sum(axis=1) / count
    var = np.maximum(m.squares[references].sum(axis=1) / count - mean ** 2, 0.0)
    mean, var = shrink(mean, var, np.full(len(x), k), prior, prior_clips, var_prior_clips)
    sd = np.sqrt(var + _EPS)
    if x.ndim == 3:
        mean, sd = mean[:, :, None], sd[:, :, None]
    return ((x - mean) / sd).astype(np.float32)


def draw_references(groups, k: int, rng, rows=None) -> np.ndarray:
    """``[len(rows), k]`` row indices: for each clip of ``rows`` (default: all), ``k`` other
    clips of its group drawn at random without replacement (all of them, cycled to ``k``, when
    the group has fewer; the clip itself only in a group of one)."""
    groups = np.asarray(groups)
    rows = np.arange(len(groups)) if rows is None else np.asarray(rows, np.int64)
    out = np.empty((len(rows), k), np.int64)
    if k == 0:
        return out
    members = group_rows(groups)
    for j, i in enumerate(rows):
        same = members[groups[i]]
        others = same[same != i]
        if len(others) == 0:
            out[j] = i
        elif len(others) >= k:
            out[j] = rng.choice(others, size=k, replace=False)
        else:
            out[j] = np.resize(rng.permutation(others), k)
    return out


def standardize(x: np.ndarray, mean, var) -> np.ndarray:
    """``(x - mean) / sd`` with ``mean``/``var`` per dimension (per band for spectrograms)."""
    x = np.asarray(x, np.float32)
    mean = np.asarray(mean, np.float32)
    sd = np.sqrt(np.asarray(var, np.float32) + _EPS)
    if x.ndim == 3 and mean.ndim == 1:
        mean, sd = mean[:, None], sd[:, None]
    return ((x - mean) / sd).astype(np.float32)


def normalize(x: np.ndarray, groups, mode: str, prior: dict, prior_clips: float,
              var_prior_clips: float | None = None, lone_file: str = "self"):
    """Normalize ``x`` under ``mode``; return ``(normalized, {group: (clips, weight)})``.

    ``groups`` labels each clip with its speaker or corpus (ignored for ``global``); the weight
    is the share of the group's own mean against the training prior (0 = prior only).
    """
    x = np.asarray(x, np.float32)
    if mode == "global" or (mode == "utterance" and x.ndim == 2):
        return standardize(x, prior["mean"], prior["var"]), {"training statistics": (len(x), 0.0)}
    if mode == "utterance":
        m = clip_moments(x)
        mean = m.total / m.count[:, None]
        var = np.maximum(m.squares / m.count[:, None] - mean ** 2, 0.0)
        z = (x - mean[:, :, None]) / np.sqrt(var[:, :, None] + _EPS)
        return z.astype(np.float32), {"each clip": (len(x), 1.0)}
    groups = np.asarray(groups)
    out = np.empty_like(x)
    used = {}
    members = group_rows(groups)
    for g, (mean, var, n, weight) in group_statistics(x, groups, prior, prior_clips, var_prior_clips,
                                                      lone_file).items():
        rows = members[g]
        out[rows] = standardize(x[rows], mean, var)
        used[g] = (n, weight)
    return out, used


def training_groups(table, mode: str) -> np.ndarray:
    """Group labels for training clips: a speaker's (or corpus's) originals form one group and
    each augmentation copy set another, as a new recording channel would at test time."""
    if mode in ("global", "utterance"):
        return np.zeros(len(table), dtype=object)
    key = table.speaker if mode == "speaker" else table.corpus
    return (key.astype(str) + "/" + table.augmentation.astype(str)).to_numpy()


def test_groups(table, mode: str) -> np.ndarray:
    """Group labels for evaluation clips (originals): one group per speaker or corpus."""
    if mode in ("global", "utterance"):
        return np.zeros(len(table), dtype=object)
    return (table.speaker if mode == "speaker" else table.corpus).astype(str).to_numpy()


def describe(mode: str, used: dict) -> str:
    """One line saying which statistics normalized the inputs, e.g. for ``predict``."""
    if mode in ("global", "utterance"):
        return {"global": "global (training statistics)",
                "utterance": "utterance (each clip's spectrogram; training statistics for vectors)"}[mode]
    parts = [f"{g}: {n} clip{'s' if n != 1 else ''}, {w:.0%} own statistics" for g, (n, w) in used.items()]
    return f"{mode} ({'; '.join(parts)}; the rest from training statistics)"
