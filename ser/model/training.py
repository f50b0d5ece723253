"""Fitting the network and scoring it on held-out speakers or corpora.

One ``fit`` serves cross-validation, leave-one-corpus-out and the shipped model, so every
number in ``metrics/`` comes from the same training code as ``models/``. Inputs are
normalized with ``ser.model.normalize`` (statistics from the training rows only), training clips
are weighted so that no speaker or corpus dominates the loss, and batches get SpecAugment
masks and mixup when those params are on.
"""

import contextlib

import numpy as np

from ser.model import normalize
from ser.model.evaluation import summary
from ser.model.network import build_model


def sample_weights(table, mode: str) -> np.ndarray:
    """Loss weight per training clip, mean 1.

    ``speaker``: every speaker carries the same total weight; ``corpus``: every corpus the
    same, shared equally by its speakers; ``none``: every clip 1. Without it, the two TESS
    speakers hold most of the training clips and the network learns their voices.
    """
    n = len(table)
    if mode == "none" or n == 0:
        return np.ones(n, np.float32)
    speaker = table.speaker.astype(str).to_numpy()
    per_speaker = {s: c for s, c in zip(*np.unique(speaker, return_counts=True))}
    weights = np.array([1.0 / per_speaker[s] for s in speaker])
    if mode == "corpus":
        corpus = table.corpus.astype(str).to_numpy()
        speakers_in = {c: len(set(speaker[corpus == c])) for c in np.unique(corpus)}
        weights = weights / np.array([speakers_in[c] for c in corpus])
    return (weights * n / weights.sum()).astype(np.float32)


def make_batches(arrays, labels, weights, n_classes: int, cfg: dict, seed: int):
    """A Keras ``PyDataset`` of shuffled batches with SpecAugment masks and mixup.

    ``arrays`` is ``{input name: normalized array}``, or a function of the epoch returning one
    (inputs normalized anew each epoch: ``small_group_arrays``). Randomness depends only on
    ``(seed, epoch, batch)``, so training is reproducible.
    """
    import keras

    source = arrays if callable(arrays) else (lambda epoch: arrays)

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.arrays = source(0)
            self.order = self._order()

        def _order(self):
            return np.random.default_rng([seed, self.epoch]).permutation(len(labels))

        def __len__(self):
            return int(np.ceil(len(labels) / cfg["batch_size"]))

        def on_epoch_end(self):
            self.epoch += 1
            self.order = self._order()
            if callable(arrays):
                self.arrays = source(self.epoch)

        def __getitem__(self, index):
            rng = np.random.default_rng([seed, self.epoch, index, 1])
            rows = np.sort(self.order[index * cfg["batch_size"]:(index + 1) * cfg["batch_size"]])
            x = {name: a[rows].copy() for name, a in self.arrays.items()}
            y = np.eye(n_classes, dtype=np.float32)[labels[rows]]
            w = weights[rows].astype(np.float32)
            if "spectrogram" in x and cfg["specaugment"]:
                spec_augment(x["spectrogram"], rng, cfg["specaugment_masks"])
            if cfg["mixup"] > 0 and len(rows) > 1:
                lam = rng.beta(cfg["mixup"], cfg["mixup"], size=len(rows)).astype(np.float32)
                lam = np.maximum(lam, 1 - lam)  # the first clip dominates: keeps its weight meaningful
                partner = rng.permutation(len(rows))
                for name in x:
                    shape = (-1,) + (1,) * (x[name].ndim - 1)
                    x[name] = lam.reshape(shape) * x[name] + (1 - lam.reshape(shape)) * x[name][partner]
                y = lam[:, None] * y + (1 - lam[:, None]) * y[partner]
            return x, y, w

    return Batches()


def spec_augment(images: np.ndarray, rng, masks: int, max_band_share=0.15, max_time_share=0.2):
    """SpecAugment in place: ``masks`` frequency and ``masks`` time stripes set to 0 (the mean,
    since images are standardized) per image."""
    n, bands, frames = images.shape
    for i in range(n):
        for _ in range(masks):
            width = rng.integers(0, max(1, int(bands * max_band_share)) + 1)
            start = rng.integers(0, bands - width + 1)
            images[i, start:start + width, :] = 0.0
            width = rng.integers(0, max(1, int(frames * max_time_share)) + 1)
            start = rng.integers(0, frames - width + 1)
            images[i, :, start:start + width] = 0.0


def distribution_strategy(gpus=None):
    """``tf.distribute.MirroredStrategy`` when more than one GPU is visible, else ``None``.

    ``gpus`` is a count or a device list (default: ``tf.config.list_physical_devices("GPU")``).
    With none or one GPU, training is exactly what it was without this function.
    """
    import tensorflow as tf

    if gpus is None:
        gpus = tf.config.list_physical_devices("GPU")
    n = gpus if isinstance(gpus, int) else len(gpus)
    if n <= 1:
        return None
    print(f"training on {n} GPUs with MirroredStrategy")
    return tf.distribute.MirroredStrategy()


def fit(arrays, labels, weights, n_classes: int, cfg: dict, seed: int, callbacks=(), linear_c: float = 0.05):
    """Train a fresh network on normalized ``arrays`` (input name -> array, or a function of
    the epoch returning one: ``make_batches``); return the model. ``train.model: linear``
    fits the linear probe instead (``fit_linear``, ``C = linear_c``; no loss weights: it
    balances classes, as the probe does)."""
    from ser.model.network import set_determinism

    if cfg.get("model", "network") == "linear":
        return fit_linear(arrays(0) if callable(arrays) else arrays, labels, n_classes, cfg, linear_c, seed, callbacks)
    set_determinism(seed)
    batches = make_batches(arrays, np.asarray(labels), np.asarray(weights), n_classes, cfg, seed)
    shapes = {name: a.shape[1:] for name, a in batches.arrays.items()}
    strategy = distribution_strategy()
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(shapes, n_classes, cfg, steps_per_epoch=len(batches))
    model.fit(batches, epochs=cfg["epochs"], callbacks=list(callbacks), verbose=0)
    return model


def predict_proba(model, arrays: dict, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``[clips, classes]`` for normalized ``arrays``."""
    from ser.model.network import model_inputs

    return model.predict(model_inputs(model, arrays), batch_size=batch_size, verbose=0)


def normalize_inputs(data: dict, table, train_rows, eval_rows, norm: dict, names, seed: int = 0):
    """Normalized training and evaluation arrays for the inputs ``names``, plus the priors.

    Statistics come from the training rows only; each evaluation group (speaker or corpus)
    gets its own, shrunk toward the training prior. ``norm['file_share']`` of the training
    clips (a seeded choice) are normalized alone, as ``predict`` normalizes a single file, so
    the network also learns from inputs standardized with training statistics.
    """
    mode, prior_clips, var_prior_clips = norm["mode"], norm["prior_clips"], norm.get("var_prior_clips")
    lone = norm.get("lone_file", "self")
    train_groups = normalize.training_groups(table.iloc[train_rows], mode)
    eval_groups = normalize.test_groups(table.iloc[eval_rows], mode)
    alone_groups = single_file_groups(train_groups, norm["file_share"], seed)
    train, evaluation, priors = {}, {}, {}
    for name in names:
        x = data[name]
        prior_groups = train_groups if mode in ("speaker", "corpus") else np.zeros(len(train_rows))
        priors[name] = normalize.fit_prior(x[train_rows], prior_groups)
        train[name], _ = normalize.normalize(x[train_rows], alone_groups, mode, priors[name], prior_clips,
                                             var_prior_clips, lone)
        evaluation[name], _ = normalize.normalize(x[eval_rows], eval_groups, mode, priors[name], prior_clips,
                                                  var_prior_clips, lone)
    if norm.get("small_groups", 0) > 0 and mode in ("speaker", "corpus"):
        train = small_group_arrays({name: data[name][train_rows] for name in names}, train, alone_groups, norm,
                                   priors, seed)
    return train, evaluation, priors


SMALL_GROUP_SIZES = (0, 1, 2, 3, 5, 10)   # reference sizes a training clip is normalized with (small_groups)


def small_group_arrays(raw: dict, whole: dict, groups, norm: dict, priors: dict, seed: int):
    """A function of the epoch returning the training inputs: ``whole`` (each clip normalized
    with its whole group), except a seeded ``norm['small_groups']`` share of the clips, drawn
    anew each epoch, each normalized with ``k`` *other* clips of its group, ``k`` drawn from
    ``SMALL_GROUP_SIZES`` (0: the clip alone, a group of one, as a lone file in ``predict``).
    The network so sees inputs standardized with the few clips of a voice that ``predict
    --reference`` gives it."""
    groups = np.asarray(groups)

    def arrays(epoch: int) -> dict:
        rng = np.random.default_rng([seed, epoch, 11])
        chosen = np.flatnonzero(rng.random(len(groups)) < norm["small_groups"])
        size = rng.choice(SMALL_GROUP_SIZES, size=len(chosen))
        out = {name: a.copy() for name, a in whole.items()}
        for k in np.unique(size):
            rows = chosen[size == k]
            if k > 0:
                refs = normalize.draw_references(groups, int(k), rng, rows)
            else:   # a lone file: its own statistics as a group of one, or the training ones alone
                refs = rows[:, None] if norm.get("lone_file", "self") == "self" else np.empty((len(rows), 0))
            for name, x in raw.items():
                out[name][rows] = normalize.normalize_with_references(
                    x[rows], x, refs, priors[name], norm["prior_clips"], norm.get("var_prior_clips"))
        return out

    return arrays


def single_file_groups(groups, share: float, seed: int) -> np.ndarray:
    """``groups`` with a seeded ``share`` of the clips put in groups of their own."""
    groups = np.asarray(groups, dtype=object).copy()
    if share <= 0 or len(groups) == 0:
        return groups
    alone = np.random.default_rng([seed, 7]).random(len(groups)) < share
    groups[alone] = [f"file/{i}" for i in np.flatnonzero(alone)]
    return groups


def normalize_each_file(data: dict, rows, norm: dict, priors: dict, names) -> dict:
    """Inputs of ``rows`` with every clip normalized alone (``predict --speaker file``): for
    ``speaker``/``corpus`` modes, a group of one clip, i.e. mostly training statistics."""
    groups = np.array([f"file/{i}" for i in range(len(rows))], dtype=object)
    return {name: normalize.normalize(data[name][rows], groups, norm["mode"], priors[name], norm["prior_clips"],
                                      norm.get("var_prior_clips"), norm.get("lone_file", "self"))[0]
            for name in names}


def run_split(data: dict, table, train_rows, eval_rows, params: dict, callbacks=()):
    """Train on ``train_rows`` and return ``(probabilities for eval_rows, model, priors)``."""
    cfg, classes = params["train"], params["labels"]["classes"]
    train_x, eval_x, priors = normalize_inputs(data, table, train_rows, eval_rows, params["normalize"], cfg["inputs"],
                                               params["seed"])
    weights = sample_weights(table.iloc[train_rows], cfg["balance"])
    model = fit(train_x, data["labels"][train_rows], weights, len(classes), cfg, params["seed"], callbacks,
                params["baseline"]["linear_c"])
    probs = predict_proba(model, eval_x) if len(eval_rows) else np.zeros((0, len(classes)), np.float32)
    return probs, model, priors


def baseline_predictions(data: dict, table, train_rows, eval_rows, params: dict, mode: str = "global"):
    """eGeMAPS + RBF SVM trained on the original clips among ``train_rows``, under ``mode``
    normalization (``global`` = the classic baseline)."""
    from ser.model.svm import fit_svm

    originals = train_rows[(table.augmentation.to_numpy()[train_rows] == "none")]
    train_x, eval_x, _ = normalize_inputs(data, table, originals, eval_rows,
                                          {"mode": mode, "prior_clips": params["normalize"]["prior_clips"],
                                           "file_share": 0.0},
                                          ["egemaps"])
    svm = fit_svm(train_x["egemaps"], data["labels"][originals], params["baseline"]["svm_c"], params["seed"])
    return svm.predict(eval_x["egemaps"])


def flatten_inputs(arrays: dict, names) -> np.ndarray:
    """``[clips, features]``: the inputs ``names`` flattened and concatenated in that order."""
    return np.concatenate([arrays[n].reshape(len(arrays[n]), -1) for n in names], axis=1)


def fit_logistic(x: np.ndarray, labels, c: float):
    """Multinomial logistic regression (L-BFGS, L2 with ``C = c``, balanced classes): the
    linear probe of issue 20. Deterministic: no random state is involved."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(x, labels)


def logistic_weights(model, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel [features, classes], bias [classes])`` of a fitted ``fit_logistic`` model; a
    class absent from training gets zero weights and a bias that makes it never chosen."""
    kernel = np.zeros((model.coef_.shape[1], n_classes), np.float32)
    bias = np.full(n_classes, -30.0, np.float32)
    kernel[:, model.classes_] = model.coef_.T
    bias[model.classes_] = model.intercept_
    return kernel, bias


def linear_probe(data: dict, table, train_rows, params: dict):
    """The linear baseline on the network's own inputs and normalization: ``fit_logistic``
    (``baseline.linear_c``) on the training rows' inputs, each clip normalized with its whole
    group. Returns ``probabilities(normalized arrays) -> [n, classes]``."""
    names = params["train"]["inputs"]
    norm = {**params["normalize"], "file_share": 0.0, "small_groups": 0.0}
    train_x, _, _ = normalize_inputs(data, table, train_rows, train_rows[:0], norm, names, params["seed"])
    model = fit_logistic(flatten_inputs(train_x, names), data["labels"][train_rows], params["baseline"]["linear_c"])
    n_classes = len(params["labels"]["classes"])

    def probabilities(arrays: dict) -> np.ndarray:
        out = np.zeros((len(next(iter(arrays.values()))), n_classes))
        out[:, model.classes_] = model.predict_proba(flatten_inputs(arrays, names))
        return out

    return probabilities


def ships_the_probe(params: dict) -> bool:
    """True when ``train.model: linear`` trains exactly ``linear_probe`` (no lone-file share or
    small groups in its training inputs)."""
    norm = params["normalize"]
    return (params["train"].get("model") == "linear" and norm["file_share"] == 0
            and norm.get("small_groups", 0) == 0)


def fit_linear(arrays: dict, labels, n_classes: int, cfg: dict, c: float, seed: int, callbacks=()):
    """``train.model: linear``: the linear probe (``fit_logistic``) as a Keras model
    (``ser.model.network.linear_model``) holding its weights, so that it is saved, fingerprinted and
    exported to ONNX like the network. ``callbacks`` (dvclive) get its one "epoch": the
    training loss and accuracy."""
    import keras

    from ser.model.network import set_determinism

    set_determinism(seed)
    names = list(arrays)
    x = flatten_inputs(arrays, names)
    fitted = fit_logistic(x, labels, c)
    model = build_model({name: a.shape[1:] for name, a in arrays.items()}, n_classes, cfg)   # compiled: evaluate
    model.get_layer("emotion").set_weights(list(logistic_weights(fitted, n_classes)))
    onehot = np.eye(n_classes, dtype=np.float32)[np.asarray(labels)]
    loss, accuracy = model.evaluate({n: arrays[n] for n in names}, onehot, verbose=0, batch_size=cfg["batch_size"])
    logs = {"loss": float(loss), "accuracy": float(accuracy)}
    model.history = keras.callbacks.History()
    model.history.set_model(model)
    model.history.on_train_begin()
    for callback in [*callbacks, model.history]:
        callback.set_model(model)
        callback.on_epoch_end(0, logs)
    for callback in callbacks:
        callback.on_train_end(logs)
    return model


def reference_sizes(params: dict) -> list:
    """The reference sizes of the ``by_reference`` curves, as strings: ``"0"`` (the file
    alone), ``"1"``, ... and ``"all"`` (the whole speaker)."""
    return [str(k) for k in params["reference"]["sizes"]]


def reference_inputs(data: dict, rows, groups, names, norm: dict, priors: dict, k: int, rng) -> dict:
    """The inputs of ``rows``, each clip normalized with ``k`` *other* clips of its group
    (``groups``, aligned with ``rows``) drawn at random: a reference of ``k`` clips."""
    refs = normalize.draw_references(groups, k, rng)
    return {name: normalize.normalize_with_references(data[name][rows], data[name][rows], refs, priors[name],
                                                      norm["prior_clips"], norm.get("var_prior_clips"))
            for name in names}


def evaluate_splits(data: dict, table, splits, params: dict, log=print) -> list[dict]:
    """Train and score the network and the baselines on each split.

    ``splits`` is a list of ``(name, train_rows, test_rows)``. Returns, per split, the test
    rows, the network's probabilities with test speakers normalized as groups
    (``probabilities``) and with every test clip normalized alone (``probabilities_file``,
    as ``predict`` does for a single file of an unknown speaker), the baselines' predictions
    (``baseline``: eGeMAPS + SVM under global standardization; ``baseline_normalized``: the
    same under ``normalize.mode``), and ``by_reference``: for every reference size of
    ``reference.sizes``, the probabilities of the network and of the linear probe
    (``linear_probe``) with each test clip normalized with that many other clips of its
    speaker, one array per seeded draw (``reference.draws``; one for ``0`` and ``all``).
    """
    out = []
    names, norm = params["train"]["inputs"], params["normalize"]
    by_group = norm["mode"] in ("speaker", "corpus")
    for index, (name, train_rows, test_rows) in enumerate(splits):
        train_x, eval_x, priors = normalize_inputs(data, table, train_rows, test_rows, norm, names, params["seed"])
        weights = sample_weights(table.iloc[train_rows], params["train"]["balance"])
        model = fit(train_x, data["labels"][train_rows], weights, len(params["labels"]["classes"]), params["train"],
                    params["seed"], linear_c=params["baseline"]["linear_c"])
        probs = predict_proba(model, eval_x)
        alone = normalize_each_file(data, test_rows, norm, priors, names)
        probs_file = predict_proba(model, alone)
        # A shipped linear model trained like the probe is the probe: not fitted a second time.
        linear = ((lambda x: predict_proba(model, x)) if ships_the_probe(params)
                  else linear_probe(data, table, train_rows, params))
        groups = normalize.test_groups(table.iloc[test_rows], norm["mode"])
        by_reference = {}
        for size in reference_sizes(params):
            if size == "all" or not by_group:
                inputs = [eval_x]
            elif size == "0":
                inputs = [alone]
            else:
                inputs = [reference_inputs(data, test_rows, groups, names, norm, priors, int(size),
                                           np.random.default_rng([params["seed"], index, int(size), draw]))
                          for draw in range(params["reference"]["draws"])]
            by_reference[size] = {"network": [predict_proba(model, x) for x in inputs],
                                  "linear": [linear(x) for x in inputs]}
        base = baseline_predictions(data, table, train_rows, test_rows, params, "global")
        base_norm = baseline_predictions(data, table, train_rows, test_rows, params, norm["mode"])
        out.append({"name": name, "rows": test_rows, "probabilities": probs, "probabilities_file": probs_file,
                    "baseline": base, "baseline_normalized": base_norm, "by_reference": by_reference})
        n = len(params["labels"]["classes"])
        truth = data["labels"][test_rows]
        ua = lambda p: summary(truth, p.argmax(1), n)["ua"]  # noqa: E731
        curve = "  ".join(f"k={k} {np.mean([ua(p) for p in v['network']]):.3f}/{np.mean([ua(p) for p in v['linear']]):.3f}"
                          for k, v in by_reference.items())
        log(f"{name}: {len(train_rows)} training clips, {len(test_rows)} test clips: UA {ua(probs):.3f} (each file "
            f"alone {ua(probs_file):.3f}), eGeMAPS+SVM {summary(truth, base, n)['ua']:.3f}; network/linear by "
            f"reference size: {curve}")
    return out


def fold_splits(table) -> list:
    """``(name, train rows, test rows)`` per fold: train on every other fold's clips (originals
    and copies), test on the fold's originals."""
    originals = (table.augmentation == "none").to_numpy()
    folds = table.fold.to_numpy()
    return [(f"fold{k}", np.flatnonzero(folds != k), np.flatnonzero((folds == k) & originals))
            for k in sorted(np.unique(folds))]


def corpus_splits(table) -> list:
    """``(corpus, train rows, test rows)`` per corpus held out. Training drops the held-out
    corpus and every clip of its speakers in other corpora (RAVDESS speech and song share actors)."""
    originals = (table.augmentation == "none").to_numpy()
    out = []
    for corpus in sorted(table.corpus.unique()):
        held = (table.corpus == corpus).to_numpy()
        speakers = table.speaker.isin(set(table.speaker[held])).to_numpy()
        out.append((corpus, np.flatnonzero(~held & ~speakers), np.flatnonzero(held & originals)))
    return out
