"""Nielsen's chapter 3 with error bars: the result files of the figure scripts of *Neural
Networks and Deep Learning* (overfitting, L2 regularisation, more training data,
initialisation) re-run with several seeds each, every row's seeds as one vmapped sweep.

The book's setting throughout: a 784-30-10 network with sigmoid hidden and output units, the
cross-entropy summed over the 10 outputs (``losses.SIGMOID_CROSS_ENTROPY``), SGD with
mini-batch 10 and η = 0.5, weights and biases N(0, 1) (``large_weight_initializer``); the
first 50,000 training images, the last 10,000 as validation, the 10,000 test images; pixels
byte / 256, as the book's ``mnist.pkl.gz`` stores them. λ is the book's, converted to ours
by :func:`our_lambda`. The more-data row is one sweep of nine training-set sizes trained for
the same number of steps, each member's subset repeated to one common length
(:func:`jaxnet.data.derived.repeat_to`). The SVM line is scikit-learn's ``SVC`` with
gamma="auto" (the default of the book's time, 1/784) and "scale" (today's). Each of the
book's numbers is set against our seeds' mean and 95% interval for one run.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from experiments import lib
from experiments.lib import claims as claims_lib
from experiments.lib import config as config_lib
from experiments.lib import mnist, plots
from jaxnet import data, engine, losses, mlp, train
from jaxnet.data.derived import repeat_to

NAME = "nielsen"
LOSS = losses.SIGMOID_CROSS_ENTROPY
ACTIVATION = mlp.SIGMOID
LARGE, DEFAULT = "nielsen_large", "nielsen_default"  # network2.py's large_weight_initializer / default_weight_initializer
INITS = {DEFAULT: "default", LARGE: "large"}  # as the tables and figures name them
SIZES = (100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000)
ROWS = ("overfitting", "regularized", "overfitting_full", "regularized_full", "more_data", "more_data_svm",
        "weight_initialization_30")
GAMMAS = ("auto", "scale")
PROGRAMS = ("small", "full_large", "full_default", "more_data", "svm")  # the order they run in
SOURCE = ("Michael Nielsen, *Neural Networks and Deep Learning*, chapter 3: the result files its figure scripts wrote "
          "(`fig/overfitting.json`, …, one run each), as tabulated in jaxnet issue 19")
# The book's numbers (percent), one run each. Keys: row → quantity → value.
BOOK: dict[str, dict[str, float]] = {
    "overfitting": {"peak test accuracy": 82.27, "peak epoch": 375, "final test accuracy": 82.23,
                    "final training accuracy": 100.0},
    "regularized": {"peak test accuracy": 87.10, "final test accuracy": 86.95},
    "overfitting_full": {"peak test accuracy": 95.33, "final test accuracy": 95.31, "final training accuracy": 97.86},
    "regularized_full": {"peak test accuracy": 96.49, "final test accuracy": 95.61, "final training accuracy": 96.47},
    "more_data": {f"{n:,} images": v for n, v in zip(SIZES, (69.09, 76.37, 85.29, 88.85, 91.27, 93.24, 94.89, 95.85,
                                                             95.97))},
    "more_data_svm": {f"{n:,} images": v for n, v in zip(SIZES, (25.07, 48.93, 75.13, 83.87, 88.49, 91.46, 92.45,
                                                                 93.47, 94.48))},
    "weight_initialization_30": {"default init, epoch 1": 92.70, "large init, epoch 1": 86.43,
                                 "default init, epoch 30": 96.50, "large init, epoch 30": 96.37},
}
ROUND = 9  # decimals kept of a distance (float noise such as 92.45 − 100 × 0.9245 = 1.4e-14 is none)
TOUCH = 1e-9  # a book number on the interval's edge (e.g. 100% with every seed at 100%) is within it
# t quantiles t_{0.975, df} for df = 1..30 (beyond: ≈ 1.96 + 2.5/df)
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


@dataclasses.dataclass(frozen=True)
class Config(lib.StudyConfig):
    rows: tuple[Literal["overfitting", "regularized", "overfitting_full", "regularized_full", "more_data",
                        "more_data_svm", "weight_initialization_30"], ...] = ROWS
    """which of the book's result files to reproduce (default: all seven)"""
    seed_count: int = 5
    """seeds per row: seed, seed+1, …; member k of every row starts from init seed k and data-order seed k"""
    hidden_units: int = 30
    """width of the sigmoid hidden layer (784-30-10)"""
    learning_rate: float = 0.5
    """SGD η of every row but the initialisation row's (the book's 0.5)"""
    batch_size: int = 10
    """mini-batch size (the book's 10)"""
    train_images: int = 50_000
    """the training pool: the first N MNIST training images (the book's training_data); the full rows train on all of it"""
    val_images: int = 10_000
    """validation images: the last N MNIST training images (the book's validation_data)"""
    test_images: int = 10_000
    """test images: the first N of the 10,000 MNIST test images (the book's test_data)"""
    pixel_divisor: float = 256.0
    """pixels are byte / this: 256 is the book's mnist.pkl.gz (values k/256, at most 255/256), 255 jaxnet's data.scale"""
    small_images: int = 1_000
    """overfitting.json / regularized.json: the first N training images"""
    small_epochs: int = 400
    """epochs of the 1,000-image rows"""
    small_lambda: float = 0.1
    """the book's λ of regularized.json (converted to ours by our_lambda with n = small_images)"""
    full_epochs: int = 30
    """epochs of the 50,000-image rows and of the initialisation row"""
    full_lambda: float = 5.0
    """the book's λ of regularized_full.json and weight_initialization_30.json (n = train_images)"""
    sizes: tuple[int, ...] = SIZES
    """more_data.json: training-set sizes (the first N images each)"""
    more_data_examples: int = 1_500_000
    """more_data.json: training examples seen per size (the book's 1.5M/size epochs: 150,000 steps at batch 10)"""
    more_data_lambda_per_image: float = 1e-4
    """more_data.json: the book's λ is size × this (so its decay λ/n, and our λ, are the same at every size)"""
    init_learning_rates: tuple[float, ...] = (0.1, 0.5)
    """weight_initialization_30.json: the η values tried (the book's script takes η as an argument and does not store it)"""
    svm_sizes: tuple[int, ...] = SIZES[:7]
    """more_data_svm.json: training-set sizes for SVC (default up to 10,000: 20,000 and 50,000 take minutes each)"""
    svm_gammas: tuple[Literal["auto", "scale"], ...] = GAMMAS
    """SVC's gamma rules: auto = 1/n_features (the default of the book's time), scale = 1/(n_features·Var x) (today's)"""

    def quick_variant(self) -> Config:
        return dataclasses.replace(self, seed_count=2, train_images=2_000, val_images=1_000, test_images=1_000,
                                   small_images=200, small_epochs=3, full_epochs=2, sizes=(100, 200, 500),
                                   more_data_examples=2_000, svm_sizes=(100, 500))

    def problems(self) -> list[tuple[str, str, str]]:
        # lib's shared checks run first and cover the rest (λ ≥ 0, η > 0, batch ≥ 1, lists non-empty, unrepeated)
        found = []
        if self.seed_count < 2:
            found.append(("--seed-count", f"{self.seed_count}", "train at least 2 seeds (an interval needs a spread)"))
        elif self.seed + self.seed_count - 1 > config_lib.SEED_MAX:
            found.append(("--seed-count", "the last seed is out of range", "lower --seed or --seed-count"))
        if self.train_images + self.val_images > mnist.N_TRAIN_IMAGES:
            found.append(("--train-images", f"{self.train_images:,} training + {self.val_images:,} validation images "
                          "overlap", f"keep their sum ≤ {mnist.N_TRAIN_IMAGES:,}"))
        if not 0 < self.test_images <= 10_000:
            found.append(("--test-images", f"{self.test_images}", "use 1 to 10,000"))
        if self.pixel_divisor <= 0:
            found.append(("--pixel-divisor", f"{self.pixel_divisor:g}", "use 256 (the book) or 255"))
        for flag_, values in (("--sizes", self.sizes), ("--svm-sizes", self.svm_sizes),
                              ("--small-images", (self.small_images,))):
            bad = [n for n in values if not self.batch_size <= n <= self.train_images]
            if bad:
                found.append((flag_, f"{bad[0]:,} images", f"use sizes from the batch size ({self.batch_size}) to "
                              f"--train-images ({self.train_images:,})"))
        if all(self.batch_size <= n <= self.train_images for n in self.sizes):
            length = repeated_length(self)
            if length > 2_000_000:
                found.append(("--sizes", f"their common multiple (with the batch) is {length:,}",
                              "use sizes with a small common multiple, e.g. the book's"))
            elif self.more_data_examples % length:
                found.append(("--more-data-examples", f"{self.more_data_examples:,} is not a multiple of {length:,} "
                              "(the sizes' and the batch's least common multiple)",
                              f"use a multiple of {length:,}, e.g. {max(1, self.more_data_examples // length) * length:,}"))
        return found


# ---------------------------------------------------------------- the book's conventions
def our_lambda(book_lambda: float, n: int) -> float:
    """The λ of jaxnet's penalty λ Σ‖Wˡ‖² that gives the book's weight decay.

    ``network2.py`` updates ``w ← (1 − ηλ_book/n) w − (η/m) Σₓ ∇C_x`` (n: training images,
    m: mini-batch size, weights only). jaxnet's SGD step on the batch-mean loss plus λ Σ‖W‖²
    is ``w ← w − η (∇ mean C + 2λ w) = (1 − 2ηλ) w − (η/m) Σₓ ∇C_x``, so 2λ = λ_book/n:

        λ = λ_book / (2 n)

    e.g. λ_book = 5.0 on 50,000 images is λ = 5e-5; λ_book = 0.1 on 1,000 images also 5e-5.
    """
    if n < 1:
        raise ValueError(f"our_lambda: n is the number of training images, at least 1; got {n}")
    return float(book_lambda) / (2.0 * n)


def repeated_length(config: Config | Mapping[str, Any]) -> int:
    """The common length L of the more-data members' repeated index lists: the least common
    multiple of the sizes and the batch size (100,000 for the book's sizes)."""
    fields = config if isinstance(config, Mapping) else vars(config)
    return math.lcm(*fields["sizes"], fields["batch_size"])


def interval(values: Sequence[float]) -> dict[str, Any]:
    """Mean, standard deviation and the 95% interval for one more run: mean ± t₀.₉₇₅,ₙ₋₁ · s · √(1 + 1/n).

    The book's numbers are single runs, so a single run of ours (a new seed) is what each is
    compared with: this is the Student-t prediction interval of one draw from the seeds'
    distribution, not the (√n times narrower) confidence interval of their mean.
    """
    v = np.asarray([x for x in values if x is not None], float)
    n = int(v.size)
    mean = float(v.mean()) if n else None
    std = float(v.std(ddof=1)) if n > 1 else None
    half = None if std is None else (T975[n - 2] if n - 1 <= len(T975) else 1.96 + 2.5 / (n - 1)) * std * math.sqrt(
        1 + 1 / n)
    return {"n": n, "values": v.tolist(), "mean": mean, "std": std, "half_width": half,
            "lo": None if half is None else mean - half, "hi": None if half is None else mean + half,
            "min": float(v.min()) if n else None, "max": float(v.max()) if n else None}


def seeds_of(config: Config) -> list[int]:
    return [config.seed + k for k in range(config.seed_count)]


# ---------------------------------------------------------------- the programs
@dataclasses.dataclass(frozen=True)
class Group:
    """Members of one setting (one per seed) inside a sweep; ``rows`` are the book's files it serves."""

    label: str
    rows: tuple[str, ...]
    init: str
    book_lambda: float
    n: int  # the training images the book's λ refers to
    learning_rate: float
    size: int | None = None  # the more-data row's training-set size


def programs(config: Config) -> dict[str, dict[str, Any]]:
    """The sweeps to run: name → data, epochs, which splits to evaluate and the member groups.

    Settings shared by two rows train once: regularized_full.json and the large-init, η = 0.5
    half of weight_initialization_30.json are the same run (evaluated on both sets).
    """
    rows, out = set(config.rows), {}
    n, eta0, lam = config.train_images, config.learning_rate, config.full_lambda
    etas = config.init_learning_rates if "weight_initialization_30" in rows else ()

    def full(init: str, book_lambda: float, eta: float, *served: str) -> Group:
        return Group(f"{n:,} images, {INITS[init]} init, λ_book={book_lambda:g}, η={eta:g}", served, init,
                     book_lambda, n, eta)

    small = [Group(f"{config.small_images:,} images, λ_book={book:g}", (row,), LARGE, book, config.small_images, eta0)
             for row, book in (("overfitting", 0.0), ("regularized", config.small_lambda)) if row in rows]
    large = [full(LARGE, 0.0, eta0, "overfitting_full")] if "overfitting_full" in rows else []
    if "regularized_full" in rows:  # also the init row's large-init members at η = learning_rate, if it has them
        large.append(full(LARGE, lam, eta0, "regularized_full", *["weight_initialization_30"] * (eta0 in etas)))
    large += [full(LARGE, lam, eta, "weight_initialization_30") for eta in etas
              if not (eta == eta0 and "regularized_full" in rows)]
    default = [full(DEFAULT, lam, eta, "weight_initialization_30") for eta in etas]
    if small:
        out["small"] = {"images": config.small_images, "epochs": config.small_epochs, "groups": small,
                        "eval": ("train", "test")}
    if large:
        needs = {r for g in large for r in g.rows}
        history = bool(needs & {"overfitting_full", "regularized_full"})  # their rows read train and test curves
        out["full_large"] = {"images": n, "epochs": config.full_epochs, "groups": large, "eval": (
            ("train",) * history + ("val",) * ("weight_initialization_30" in needs) + ("test",) * history)}
    if default:
        out["full_default"] = {"images": n, "epochs": config.full_epochs, "groups": default, "eval": ("val",)}
    if "more_data" in rows:
        length = repeated_length(config)
        out["more_data"] = {"images": n, "epochs": config.more_data_examples // length, "length": length,
                            "eval": ("val",), "groups": [
                                Group(f"{size:,} images (more data)", ("more_data",), LARGE,
                                      size * config.more_data_lambda_per_image, size, eta0, size=size)
                                for size in config.sizes]}
    return out


def load_split(config: Config, study: lib.Study) -> mnist.Split:
    """The book's split with pixels byte / ``pixel_divisor``: the first ``train_images`` training images, the
    last ``val_images`` as validation, the first ``test_images`` test images."""
    ds = study.load("mnist")
    x, xt = (data.flatten(np.asarray(a)).astype(np.float32) / np.float32(config.pixel_divisor)
             for a in (ds.x_train, ds.x_test))
    y, yt = np.asarray(ds.y_train, np.int32), np.asarray(ds.y_test, np.int32)
    first, val, test = slice(config.train_images), slice(len(x) - config.val_images, None), slice(config.test_images)
    return mnist.Split((x[first], y[first]), (x[val], y[val]), (xt[test], yt[test]), tuple(ds.class_names))


def run_program(name: str, spec: Mapping[str, Any], config: Config, split: mnist.Split, study: lib.Study
                ) -> list[dict[str, Any]]:
    """One sweep: every group × every seed as one vmapped program."""
    members = [(g, s) for g in spec["groups"] for s in seeds_of(config)]
    names = [f"{g.label}, seed {s}" for g, s in members]
    images, epochs, length, evaluated = spec["images"], spec["epochs"], spec.get("length"), spec["eval"]
    x, y = split.train[0][:images], split.train[1][:images]
    indices = None if length is None else np.stack([repeat_to(np.arange(g.size), length) for g, _ in members])
    model = mlp.model([784, config.hidden_units, 10], activation=ACTIVATION, scheme=spec["groups"][0].init)
    l2 = [our_lambda(g.book_lambda, g.n) for g, _ in members]

    def sweep(**options: Any) -> list[dict[str, Any]]:
        started = time.perf_counter()
        result = engine.sweep(model, train.make_optimizer("sgd", learning_rate=config.learning_rate), (x, y),
                              learning_rate=[g.learning_rate for g, _ in members], l2=l2,
                              init_seed=[s for _, s in members], data_seed=[s for _, s in members], indices=indices,
                              epochs=epochs, batch_size=config.batch_size, loss=LOSS,
                              eval_train="train" in evaluated, val=split.val if "val" in evaluated else None,
                              test=split.test if "test" in evaluated else None, **options)
        seconds = time.perf_counter() - started
        return [mnist.classifier_record(
            names[k], {"program": name, "rows": list(g.rows), "layers": [784, config.hidden_units, 10],
                       "init": g.init, "book_lambda": g.book_lambda, "n_for_lambda": g.n, "l2": l2[k],
                       "learning_rate": g.learning_rate, "batch_size": config.batch_size, "epochs": epochs, "seed": s,
                       "train_images": g.size or images, "members_in_program": len(members),
                       "program_seconds": seconds, **({} if length is None else {
                           "repeated_length": length, "book_epochs": epochs * length // g.size})},
            model, result.member(k), result.histories[k], split.test, loss=LOSS, num_classes=10,
            seconds=seconds / len(members)) for k, (g, s) in enumerate(members)]

    steps = epochs * (length or images) // config.batch_size
    study.log(f"{name}: {len(members)} members × {steps:,} steps at batch {config.batch_size}")
    return study.train(name, names, sweep, label=f"{name} ({len(members)} members)", epochs=epochs)


def run_svm(config: Config, split: mnist.Split, study: lib.Study, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SVC() per gamma rule and size: fitted on the first ``size`` training images, scored on validation."""
    try:
        from sklearn.svm import SVC
        import sklearn
    except ImportError:
        raise lib.RunError("the more_data_svm row needs scikit-learn, an optional dependency",
                           "pip install -e '.[svm]' (or leave the row out: --rows without more_data_svm)") from None
    # float64, the network's pixels: the book passes mnist.pkl.gz's raw pixel vectors
    (x, y), (xv, yv) = ((np.asarray(images, np.float64), labels) for images, labels in (split.train, split.val))
    out = []
    for gamma in config.svm_gammas:
        for size in config.svm_sizes:
            name = f"SVC gamma={gamma}, {size:,} images"

            def fit(gamma=gamma, size=size, name=name, **_: Any) -> list[dict[str, Any]]:
                started = time.perf_counter()
                svc = SVC(gamma=gamma).fit(x[:size], y[:size])
                fitted = time.perf_counter()
                predicted = svc.predict(xv)
                done = time.perf_counter()
                return [lib.run_record(name, {"program": "svm", "rows": ["more_data_svm"], "gamma": gamma,
                                              "train_images": size, "C": 1.0, "kernel": "rbf",
                                              "sklearn_version": sklearn.__version__},
                                       None, {"train_accuracy": None,  # not measured by the book: it costs a predict
                                              "val_accuracy": float(np.mean(predicted == yv)), "test_accuracy": None,
                                              "support_vectors": int(svc.n_support_.sum()),
                                              "fit_seconds": fitted - started, "predict_seconds": done - fitted},
                                       seconds=done - started, diverged=False)]

            (record,) = study.train(name, [name], fit, label=name, epochs=1, checkpoints=False)
            out.append(record)
            study.save_progress(runs + out)
            study.log(f"{name}: validation accuracy {record['final']['val_accuracy']:.4f} "
                      f"(fit {record['final']['fit_seconds']:.1f} s, predict {record['final']['predict_seconds']:.1f} s)")
    return out


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """Every program (sweep) of the chosen rows, then the SVM fits; the summary the report and the check read."""
    split = load_split(config, study)
    runs: list[dict[str, Any]] = []
    timing: dict[str, Any] = {}
    for name, spec in programs(config).items():
        started = time.perf_counter()
        records = run_program(name, spec, config, split, study)
        runs += records
        timing[name] = {"seconds": time.perf_counter() - started, "members": len(records),
                        "member_steps": len(records) * spec["epochs"] * spec.get("length", spec["images"])
                        // config.batch_size}
        study.save_progress(runs)
    if "more_data_svm" in config.rows:
        started = time.perf_counter()
        svm = run_svm(config, split, study, runs)
        runs += svm
        timing["svm"] = {"seconds": time.perf_counter() - started, "fits": len(svm)}
    results = {"runs": runs, "timing": timing, "val_images": len(split.val[1])}
    results["summary"] = summarise(results)
    results["comparisons"] = comparisons(results["summary"])
    headline = results["summary"].get("more_data", {}).get(f"{max(config.sizes):,} images")
    return {**results, "headline": (f"validation accuracy (%), {max(config.sizes):,} images, mean of "
                                    f"{config.seed_count} seeds", headline["mean"]) if headline else None}


# ---------------------------------------------------------------- the numbers, from the runs
def members_of(results: Mapping[str, Any], row: str, **match: Any) -> list[dict[str, Any]]:
    """The runs serving ``row`` whose config has the ``match`` values, in seed order."""
    found = [r for r in results["runs"] if row in r["config"].get("rows", [])
             and all(r["config"].get(k) == v for k, v in match.items())]
    return sorted(found, key=lambda r: r["config"].get("seed", 0))


def percent(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None else 100.0 * v for v in values]


def peak(history: Mapping[str, Any], key: str) -> tuple[float | None, float | None]:
    """The highest value of ``history[key]`` and the first epoch it occurs at."""
    values = [(v, e) for v, e in zip(history.get(key) or [], history.get("epoch") or []) if v is not None]
    return max(values, key=lambda pair: pair[0], default=(None, None))


def _entry(book: float | None, values: Sequence[float | None], unit: str = "%",
           bounds: tuple[float, float] = (0.0, 100.0)) -> dict[str, Any]:
    """One quantity: the book's number, our values and :func:`interval`, the interval clipped to what the quantity
    can be (``bounds``: 0–100% for an accuracy, 1–epochs for an epoch), and how the book's number sits in it:
    ``distance`` from our mean, ``reach`` (how far the interval extends from the mean towards the book's number)
    and ``within``."""
    entry = {"book": book, "unit": unit, **interval([v for v in values if v is not None])}
    if entry["lo"] is not None:
        entry["lo"], entry["hi"] = max(entry["lo"], bounds[0]), min(entry["hi"], bounds[1])
    measured = book is not None and entry["mean"] is not None
    entry["distance"] = round(abs(book - entry["mean"]), ROUND) if measured else None
    entry["reach"] = None if not measured or entry["lo"] is None else (
        entry["hi"] - entry["mean"] if book >= entry["mean"] else entry["mean"] - entry["lo"])
    entry["within"] = None if entry["reach"] is None else bool(entry["distance"] <= entry["reach"] + TOUCH)
    return entry


def _history_row(runs: Sequence[Mapping[str, Any]], row: str) -> dict[str, Any]:
    """Peak and final test accuracy, the peak's epoch and the final training accuracy, per seed."""
    peaks = [peak(r["history"], "test_accuracy") for r in runs]
    quantities = {"peak test accuracy": percent([p for p, _ in peaks]), "peak epoch": [e for _, e in peaks],
                  "final test accuracy": percent([(r["history"]["test_accuracy"] or [None])[-1] for r in runs]),
                  "final training accuracy": percent([r["final"]["train_accuracy"] for r in runs])}
    epochs = float(runs[0]["config"]["epochs"]) if runs else 1.0
    return {q: _entry(BOOK[row].get(q), v, *(("epoch", (1.0, epochs)) if q == "peak epoch" else ()))
            for q, v in quantities.items()}


def summarise(results: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """row → quantity → the book's number, our seeds' values (percent) and their mean, std and 95% interval.

    Written to results.json at run time; :func:`claims` and the reproduction check read it.
    """
    out = {row: _history_row(members_of(results, row), row) for row in ROWS[:4] if members_of(results, row)}
    more = members_of(results, "more_data")
    if more:
        out["more_data"] = {f"{n:,} images": _entry(BOOK["more_data"].get(f"{n:,} images"), percent(
            [r["final"]["val_accuracy"] for r in more if r["config"]["train_images"] == n]))
            for n in sorted({r["config"]["train_images"] for r in more})}
    svm = {}
    for r in members_of(results, "more_data_svm"):
        n, value = r["config"]["train_images"], 100.0 * r["final"]["val_accuracy"]
        book = BOOK["more_data_svm"].get(f"{n:,} images")
        distance = None if book is None else round(abs(book - value), ROUND)  # 1e-14 is the same count
        svm[f"gamma={r['config']['gamma']}, {n:,} images"] = {  # its accuracy: a count of validation images
            "book": book, "unit": "%", "n": 1, "values": [value], "mean": value, "distance": distance,
            "distance_images": None if book is None else round(distance / 100.0 * int(results["val_images"]), ROUND)}
    if svm:
        out["more_data_svm"] = svm
    init = {}
    for eta in sorted({r["config"]["learning_rate"] for r in members_of(results, "weight_initialization_30")}):
        for scheme, word in INITS.items():
            members = members_of(results, "weight_initialization_30", init=scheme, learning_rate=eta)
            if not members:
                continue
            for at, index in ((1, 0), (members[0]["config"]["epochs"], -1)):
                key = f"{word} init, epoch {at}"
                init[f"η={eta:g}, {key}"] = _entry(BOOK["weight_initialization_30"].get(key if at in (1, 30) else ""),
                                                  percent([(r["history"]["val_accuracy"] or [None])[index]
                                                           for r in members]))
    if init:
        out["weight_initialization_30"] = init
    return out


HISTORY_QUANTITIES = ("peak test accuracy", "peak epoch", "final test accuracy", "final training accuracy")


def _size(key: str) -> int:
    """The training-set size in a summary key such as "gamma=auto, 1,000 images"."""
    return int(key.split(" images")[0].split(", ")[-1].replace(",", ""))


def _order(row: str, key: str) -> tuple:
    if row == "more_data":
        return (_size(key),)
    if row == "more_data_svm":
        gamma = key.split(",")[0].removeprefix("gamma=")
        return (GAMMAS.index(gamma) if gamma in GAMMAS else len(GAMMAS), _size(key))
    if row == "weight_initialization_30":
        eta, scheme, epoch = key.split(", ")
        return (float(eta.removeprefix("η=")), scheme != "default init", int(epoch.removeprefix("epoch ")))
    return (HISTORY_QUANTITIES.index(key) if key in HISTORY_QUANTITIES else len(HISTORY_QUANTITIES), key)


def entries(summary: Mapping[str, Any], row: str) -> list[tuple[str, dict[str, Any]]]:
    """A row's (quantity, entry) pairs in a fixed order (results.json stores its keys sorted)."""
    return sorted(summary.get(row, {}).items(), key=lambda item: _order(row, item[0]))


def comparisons(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers behind the "which η" and "which gamma" verdicts, written to results.json with the summary:
    η → Σ over the book's four initialisation numbers of |book − our mean|, gamma → Σ over the sizes run with
    every gamma of |book − ours| (points), and gamma='auto''s largest distance from the book in validation images."""
    init: dict[str, float] = {}
    for key, entry in sorted(summary.get("weight_initialization_30", {}).items()):
        if entry["distance"] is not None:
            init[key.split(",")[0]] = init.get(key.split(",")[0], 0.0) + entry["distance"]
    svm = summary.get("more_data_svm", {})
    gammas = sorted({k.split(",")[0] for k in svm})
    sizes = sorted(s for s in {k.split(", ", 1)[1] for k in svm} if all(f"{g}, {s}" in svm for g in gammas))
    distances = {g: sum(svm[f"{g}, {s}"]["distance"] for s in sizes if svm[f"{g}, {s}"]["distance"] is not None)
                 for g in gammas}
    auto = [e["distance_images"] for k, e in svm.items()
            if k.startswith("gamma=auto,") and e.get("distance_images") is not None]
    return {"init_distance": init, "svm_distance": distances, "svm_auto_largest_images": max(auto) if auto else None}


# ---------------------------------------------------------------- the claims
FILES = {row: f"{row}.json" for row in ROWS}
PHRASES = {"more_data": "validation accuracy on {}", "weight_initialization_30": "validation accuracy ({})"}
"""How a sentence names a row's quantity (the others: by the quantity itself)."""


def booked(summary: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(row, quantity, entry) for every number of the book's that we measured, in the report's order."""
    return [(row, q, e) for row in ROWS for q, e in entries(summary, row) if e.get("book") is not None]


def claims(results: Mapping[str, Any]) -> list[claims_lib.Claim]:
    """Every outcome the report states, each computed from ``results["summary"]``."""
    summary, out = results["summary"], []
    for row, quantity, e in booked(summary):
        if e.get("reach") is None:  # also every SVM entry: one deterministic fit has no interval
            continue
        digits = 1 if e["unit"] == "epoch" else 2
        out.append(claims_lib.Claim(
            f"the book's {PHRASES.get(row, '{}').format(quantity)} in {FILES[row]}, {e['book']:g}, against our mean "
            f"{e['mean']:.{digits}f} over {e['n']} seeds", "our 95% interval's reach towards it", e["reach"],
            "its distance from our mean", e["distance"], more="within our interval", less="outside our interval",
            margin=-TOUCH, digits=digits))
    for small, large, what in (("overfitting", "regularized", "1,000 images"),
                               ("overfitting_full", "regularized_full", "50,000 images")):
        a, b = summary.get(large, {}).get("final test accuracy"), summary.get(small, {}).get("final test accuracy")
        if a and b:
            out.append(claims_lib.Claim(f"L2 regularisation on {what} (final test accuracy, mean over seeds)",
                                        FILES[large], a["mean"], FILES[small], b["mean"],
                                        more="regularised is higher", less="regularised is not higher", digits=2))
    md, svm = dict(entries(summary, "more_data")), summary.get("more_data_svm", {})
    both = [key for key in md if f"gamma=auto, {key}" in svm]
    if both:
        gaps = {key: md[key]["mean"] - svm[f"gamma=auto, {key}"]["mean"] for key in both}
        low = min(gaps, key=gaps.get)
        out.append(claims_lib.Claim(
            f"the network against SVC gamma='auto' at every size both ran ({both[0]} to {both[-1]}; the smallest margin, "
            f"at {low}, validation accuracy)", "the network's seed mean", md[low]["mean"], "SVC",
            svm[f"gamma=auto, {low}"]["mean"], more="the network is higher at every size",
            less="the network is not higher at every size", digits=2))
    compared = results["comparisons"]
    distances = compared["svm_distance"]
    if {"gamma=auto", "gamma=scale"} <= set(distances):
        out.append(claims_lib.Claim(
            "which SVC gamma gives the book's SVM line (Σ over the sizes of |book − ours|, points)",
            "gamma='scale' (today's default)", distances["gamma=scale"], "gamma='auto' (the default of the book's "
            "time)", distances["gamma=auto"], more="gamma='auto' is the closer", less="gamma='scale' is the closer",
            digits=2))
    if compared["svm_auto_largest_images"] is not None:
        out.append(claims_lib.Claim(
            "SVC gamma='auto' against the book at every size run (the largest difference, in validation images)",
            "largest |ours − book|", float(compared["svm_auto_largest_images"]), "half an image", 0.5,
            more="not identical to the image", less="identical to the image at every size", digits=1))
    init, d = summary.get("weight_initialization_30", {}), compared["init_distance"]
    if set(d) == {"η=0.1", "η=0.5"}:
        out.append(claims_lib.Claim(
            "which η weight_initialization_30.json was run with (Σ over its four numbers of |book − our mean|, points)",
            "η = 0.5", d["η=0.5"], "η = 0.1", d["η=0.1"], more="η = 0.1 is the closer", less="η = 0.5 is the closer",
            digits=2))
    for eta in sorted({k.split(",")[0] for k in init}, key=lambda k: float(k.removeprefix("η="))):
        if len([k for k in init if k.startswith(eta + ",") and k.endswith("epoch 1")]) == 2:
            out.append(claims_lib.Claim(
                f"after one epoch at {eta} (validation accuracy, mean over seeds)", "default init",
                init[f"{eta}, default init, epoch 1"]["mean"], "large init",
                init[f"{eta}, large init, epoch 1"]["mean"],
                more="the default initialisation is ahead", less="the default initialisation is not ahead", digits=2))
    return out


# ---------------------------------------------------------------- report
def _mean_band(histories: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, ...]:
    """Per epoch over seeds: epochs, mean and the 95% interval for one run (as :func:`interval`)."""
    length = min(len(h.get(key) or []) for h in histories)
    epochs = np.asarray(histories[0]["epoch"][:length], float)
    values = np.asarray([[np.nan if v is None else v for v in h[key][:length]] for h in histories], float)
    stats = [interval(values[:, i][np.isfinite(values[:, i])].tolist()) for i in range(length)]
    mean, lo, hi = (np.asarray([np.nan if s[k] is None else s[k] for s in stats]) for k in ("mean", "lo", "hi"))
    return epochs, mean, lo, hi


def curves_figure(path: Path, groups: Mapping[str, Sequence[Mapping[str, Any]]], panels: Sequence[tuple[str, str]],
                  title: str, marks: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> Path:
    """One panel per (history key, label), two to a row; one line per group: the seed mean with its 95% band.
    ``marks``: panel key → (epoch, value) points, the book's numbers (stars)."""
    import matplotlib.pyplot as plt

    colors = plots.palette(list(groups))
    columns = min(2, len(panels))
    rows = -(-len(panels) // columns)
    with plt.rc_context(plots.STYLE):
        fig, axes = plt.subplots(rows, columns, figsize=(6.0 * columns, 4.0 * rows), squeeze=False)
        for ax, (key, label) in zip(axes.ravel(), panels):
            percent_scale = 100.0 if key.endswith("accuracy") else 1.0
            for name, runs in groups.items():
                histories = [r["history"] for r in runs if r["history"].get(key)]
                if not histories:
                    continue
                epochs, mean, lo, hi = _mean_band(histories, key)
                ax.fill_between(epochs, lo * percent_scale, hi * percent_scale, color=colors[name], alpha=0.2, lw=0)
                ax.plot(epochs, mean * percent_scale, "-", color=colors[name], lw=1.4,
                        label=f"{name} ({len(histories)} seeds)")
            points = list((marks or {}).get(key, ()))
            if points:
                ax.plot(*zip(*points), "k*", ms=10, ls="none", zorder=4, label="the book (one run)")
            ax.set(xlabel="epoch", ylabel=label)
            ax.legend(loc="best")
        for ax in axes.ravel()[len(panels):]:
            ax.set_visible(False)
        fig.suptitle(title)
        fig.tight_layout()
        return plots.save_figure(fig, path)


def more_data_figure(path: Path, summary: Mapping[str, Any]) -> Path:
    """Validation accuracy against the training-set size, log axis: the network's seeds (mean and 95% band), the SVM
    per gamma rule, and the book's two lines as open markers."""
    import matplotlib.pyplot as plt

    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(7.4, 4.6))
        md = dict(entries(summary, "more_data"))
        if md:
            xs, band = [_size(k) for k in md], list(md.values())
            ax.fill_between(xs, [e["lo"] for e in band], [e["hi"] for e in band], color="tab:blue", alpha=0.2, lw=0)
            ax.plot(xs, [e["mean"] for e in band], "o-", color="tab:blue", ms=4,
                    label=f"network, mean of {band[0]['n']} seeds (95% band)")
        svm = dict(entries(summary, "more_data_svm"))
        for gamma, color in (("auto", "tab:red"), ("scale", "tab:orange")):
            keys = [k for k in svm if k.startswith(f"gamma={gamma},")]
            if keys:
                ax.plot([_size(k) for k in keys], [svm[k]["mean"] for k in keys], "s-", color=color, ms=4,
                        label=f"SVC gamma='{gamma}'")
        for row, marker, label in (("more_data", "o", "book: network"), ("more_data_svm", "s", "book: SVC()")):
            ax.plot([_size(k) for k in BOOK[row]], list(BOOK[row].values()), marker, mfc="none", mec="black", ms=8,
                    ls="none", label=label)
        ax.set_xscale("log")
        ax.set(xlabel="training-set size (first N images)", ylabel="validation accuracy (%)",
               title="More training data: 784-30-10 network against SVC")
        ax.legend(loc="lower right")
        return plots.save_figure(fig, path)


def _pct(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _closer(distances: Mapping[str, float], this: str) -> str | None:
    """The setting (η, gamma rule) with the smallest Σ |book − ours|, where that is not ``this`` one."""
    best = min(distances, key=distances.get) if len(distances) > 1 and this in distances else this
    return None if best == this else best


def note(row: str, quantity: str, e: Mapping[str, Any], results: Mapping[str, Any]) -> str:
    """The Reported-vs-reproduced note of one quantity, from its numbers."""
    if results.get("quick"):
        return "quick run: fewer images, epochs and seeds, not comparable."
    compared, this = results.get("comparisons") or {}, quantity.split(",")[0]
    if row == "more_data_svm":
        images, distances = e.get("distance_images"), compared.get("svm_distance") or {}
        text = "deterministic (libsvm), one fit: " + ("identical to the image." if images is not None and images < 0.5
                                                      else f"{images:.0f} validation images apart.")
        best = _closer(distances, this)
        return text + ("" if best is None else f" Not the book's rule: {best} is the closer (Σ over the sizes of "
                       f"|book − ours| {distances[best]:.2f} against {distances[this]:.2f} points).")
    if e.get("lo") is None:
        return "one seed only: no interval."
    z = (e["book"] - e["mean"]) / e["std"] if e["std"] else float("inf")
    text = (f"{e['n']} seeds, 95% interval for one run {e['lo']:.2f}–{e['hi']:.2f} (seeds {e['min']:.2f}–"
            f"{e['max']:.2f}): " + ("within." if e["within"] else f"outside; the book's single run lies {abs(z):.1f} "
                                    f"seed standard deviations {'above' if z > 0 else 'below'} our mean."))
    distances = compared.get("init_distance") or {}
    best = _closer(distances, this) if row == "weight_initialization_30" else None
    if best is not None:
        there = [v for k, v in results["summary"][row].items() if k.startswith(best + ",") and v.get("within")
                 is not None]
        text += (f" Not the book's η: {best} is the closer (Σ over the four numbers of |book − our mean| "
                 f"{distances[best]:.2f} against {distances[this]:.2f} points), and there "
                 f"{sum(v['within'] for v in there)} of its {len(there)} numbers are within our interval.")
    return text


def reported_rows(results: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    return [(f"{FILES[row]}: {quantity}", e["book"], e["mean"], note(row, quantity, e, results))
            for row, quantity, e in booked(results["summary"])]


def report(results: dict[str, Any], out: Path) -> lib.Report:
    """report.md and its figures, from results.json alone."""
    cfg, summary = results["config"], results["summary"]
    seeds = cfg["seed_count"]
    rep = lib.Report("Nielsen's chapter 3, reproduced with error bars", quick=results["quick"])
    rep.what_was_run(
        f"The book's network2.py setting: 784-{cfg['hidden_units']}-10, sigmoid hidden and output units, the "
        f"cross-entropy summed over the 10 outputs (`losses.SIGMOID_CROSS_ENTROPY`, averaged over the mini-batch, which "
        f"is network2's `w ← w − (η/m) Σ ∇C_x` exactly), plain SGD with mini-batch {cfg['batch_size']}, weights and "
        f"biases N(0, 1) (`mlp.init(scheme=\"nielsen_large\")`, the book's `large_weight_initializer`). MNIST split as "
        f"the book's: the first {cfg['train_images']:,} training images, the last {cfg['val_images']:,} as validation, "
        f"{cfg['test_images']:,} test images; pixels byte / {cfg['pixel_divisor']:g} (the book's mnist.pkl.gz stores "
        f"k/256). The book's λ becomes ours by λ = λ_book / (2n) (`nielsen.our_lambda`). Each row ran with "
        f"{seeds} seeds (initialisation and data order; seed k of every row starts from the same draw), every row's "
        "seeds in one vmapped `engine.sweep`. The more-data row is one sweep of "
        f"{len(cfg['sizes'])} sizes × {seeds} seeds: each member's first-N subset repeated to one length "
        f"({repeated_length(cfg):,} examples, `jaxnet.data.derived.repeat_to`) so that every member takes the same "
        f"{cfg['more_data_examples'] // cfg['batch_size']:,} steps ({cfg['more_data_examples']:,} examples, the book's "
        "1.5M/size epochs), each pass over the repeated list shuffled as one. The SVM: scikit-learn `SVC()` (RBF, C = 1) "
        "on the same pixels, gamma " + " and ".join(f"'{g}'" for g in cfg["svm_gammas"]) + " (auto = 1/784, the "
        "default of the book's time; scale = 1/(784 · Var x), today's), sizes "
        + ", ".join(f"{n:,}" for n in cfg["svm_sizes"]) + ". Every interval below is the 95% interval for one run "
        "(mean ± t·s·√(1 + 1/n) over the seeds), because each of the book's numbers is one run.")
    rep.heading("The book's table against ours")
    table = []
    for row, quantity, e in booked(summary):
        digits = 1 if e["unit"] == "epoch" else 2
        if row == "more_data_svm":
            table.append([FILES[row], quantity, e["book"], _pct(e["mean"]), "(deterministic)", "—",
                          "to the image" if (e.get("distance_images") or 0) < 0.5 else
                          f"{e['distance_images']:.0f} images apart"])
        else:
            table.append([FILES[row], quantity, e["book"], _pct(e["mean"], digits),
                          "—" if e.get("lo") is None else f"{_pct(e['lo'], digits)}–{_pct(e['hi'], digits)}",
                          f"{_pct(e['min'], digits)}–{_pct(e['max'], digits)}",
                          "—" if e.get("within") is None else ("within" if e["within"] else "**outside**")])
    rep.table(["File", "Quantity", "Book", "Our mean", "95% interval (one run)", "Our seeds", "Book's number"], table,
              digits=2)
    rep.heading("What the numbers say")
    for sentence in claims_lib.section(claims(results)):
        rep.text(sentence)
    panels = [("test_accuracy", "test accuracy (%)"), ("test_loss", "test cost"), ("train_loss", "training cost"),
              ("train_accuracy", "training accuracy (%)")]

    def marks(rows: Sequence[str]) -> dict[str, list[tuple[float, float]]]:
        found: dict[str, list[tuple[float, float]]] = {"test_accuracy": [], "train_accuracy": []}
        for row in rows:
            if row not in summary:
                continue
            book, epochs = BOOK[row], members_of(results, row)[0]["config"]["epochs"]
            if "peak epoch" in book:
                found["test_accuracy"].append((book["peak epoch"], book["peak test accuracy"]))
            found["test_accuracy"].append((epochs, book["final test accuracy"]))
            if "final training accuracy" in book:
                found["train_accuracy"].append((epochs, book["final training accuracy"]))
        return found

    for plain, decayed, lam, images, caption in (
            ("overfitting", "regularized", cfg["small_lambda"], f"the first {cfg['small_images']:,}",
             "Per epoch, mean over seeds with its 95% band: test accuracy, test cost, training cost (without the "
             f"penalty) and training accuracy, {cfg['small_images']:,} training images; stars: the book's numbers "
             "(peak and final)."),
            ("overfitting_full", "regularized_full", cfg["full_lambda"], f"{cfg['train_images']:,}",
             f"The same on all {cfg['train_images']:,} training images, {cfg['full_epochs']} epochs.")):
        groups = {label: members_of(results, row) for row, label in (
            (plain, "λ_book = 0"), (decayed, f"λ_book = {lam:g}")) if members_of(results, row)}
        if groups:
            rep.figure(curves_figure(out / f"{plain}.png", groups, panels, f"784-30-10 on {images} images "
                                     f"({plain}.json, {decayed}.json)", marks([plain, decayed])), caption)
    if "more_data" in summary or "more_data_svm" in summary:
        rep.figure(more_data_figure(out / "more_data.png", summary),
                   "Validation accuracy against the training-set size (log axis): the network (every size the same "
                   "number of steps, one sweep) and SVC; open markers: the book's numbers.")
    init_runs = [r for r in results["runs"] if "weight_initialization_30" in r["config"]["rows"]]
    init_marks = {"val_accuracy": [(1 if key.endswith("epoch 1") else cfg["full_epochs"], value)
                                   for key, value in BOOK["weight_initialization_30"].items()]}
    for eta in sorted({r["config"]["learning_rate"] for r in init_runs}):
        groups_eta = {f"{word} init": [r for r in init_runs if r["config"]["learning_rate"] == eta
                                       and r["config"]["init"] == scheme] for scheme, word in INITS.items()}
        rep.figure(curves_figure(out / f"weight_initialization_eta{eta:g}.png", groups_eta,
                                 [("val_accuracy", "validation accuracy (%)")],
                                 f"Initialisation, η = {eta:g}, λ_book = {cfg['full_lambda']:g}", init_marks),
                   f"Validation accuracy per epoch, default (N(0, 1/n_in) weights) against large (N(0, 1)) "
                   f"initialisation at η = {eta:g}; stars: the book's epoch-1 and epoch-30 numbers.")
    timing = results.get("timing", {})
    if timing:
        rep.heading("Time").table(
            ["Program", "Members", "Member-steps", "Wall clock", "µs per member-step"],
            [[name, t.get("members", t.get("fits")), t.get("member_steps"), lib.format_seconds(t["seconds"]),
              None if not t.get("member_steps") else 1e6 * t["seconds"] / t["member_steps"]]
             for name, t in sorted(timing.items(), key=lambda item: PROGRAMS.index(item[0]) if item[0] in PROGRAMS
                                   else len(PROGRAMS))], digits=1)
    return rep.reported_vs_reproduced(reported_rows(results), tolerance=0.5, source=SOURCE, digits=2)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__)


if __name__ == "__main__":
    main()
