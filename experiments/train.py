"""Your own experiment without writing code: any MLP on any dataset the loader knows, with any
activation, loss, optimizer, learning rate, λ, batch and epochs; lists of learning rates, λ
and seeds are swept as one vmapped program (every combination is a member).

    python -m experiments.train --dataset fashion_mnist --lambdas 0 0.0001 0.001 0.01 --epochs 10
    python -m experiments.train --hidden 256 128 --activation tanh --learning-rates 0.1 0.03 0.01

Writes results.json, metrics.csv, report.md and figures like every study: validation and
test curves per member, final accuracy against the swept value(s), the best member's
confusion matrix. Validation is a stratified hold-out of the training images, or with
``--split nielsen`` the last 10,000 (Nielsen's 50,000/10,000 split). Every row of Nielsen's
chapter 3 (``experiments.nielsen``) re-runs without code, e.g. overfitting.json (the book's
λ with ``--lambda-convention nielsen``; the test set evaluated every epoch)::

    python -m experiments.train --split nielsen --train-images 1000 --val-images 10000 --hidden 30 \
        --activation sigmoid --loss sigmoid_cross_entropy --init nielsen_large --optimizer sgd \
        --learning-rates 0.5 --batch-size 10 --epochs 400 --pixels unit --seeds 0 1 2 3 4 \
        --lambdas 0 --lambda-convention nielsen --evaluate train test
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any, Literal

import numpy as np

from experiments import lib
from experiments.lib import plots
from experiments.lib.claims import Claim
from jaxnet import data, engine, evaluate, losses, mlp, train

NAME = "train"


@dataclasses.dataclass(frozen=True)
class Config(lib.StudyConfig):
    dataset: Literal["mnist", "fashion_mnist", "kmnist", "gurmukhi"] = "mnist"
    """the dataset (fashion_mnist and kmnist are downloaded by tensorflow-datasets unless in --manual-dir)"""
    hidden: tuple[int, ...] = dataclasses.field(default=(128, 64), metadata={"empty": True})
    """hidden-layer widths (--hidden with no width: softmax regression)"""
    activation: Literal["relu", "sigmoid", "tanh"] = "relu"
    """hidden activation"""
    loss: Literal["softmax_cross_entropy", "nll", "mse", "kl_divergence", "sigmoid_cross_entropy"] = (
        "softmax_cross_entropy")
    """loss on the logits"""
    init: Literal[mlp.SCHEMES] = "lecun_normal"
    """weight initialisation"""
    optimizer: Literal["sgd", "momentum", "nesterov", "adam"] = "momentum"
    """optax optimizer"""
    momentum: float = 0.9
    """momentum of "momentum" / "nesterov\""""
    learning_rates: tuple[float, ...] = (0.01,)
    """learning rate(s); several are swept"""
    lambdas: tuple[float, ...] = (0.0,)
    """L2 penalty λ Σ‖W‖² (weights only); several are swept"""
    seeds: tuple[int, ...] = (0,)
    """initialisation and data-order seed(s); several are swept"""
    batch_size: int = 64
    """minibatch size"""
    epochs: int = 10
    """training epochs"""
    pixels: Literal["unit", "pm1"] = "pm1"
    """pixel scaling: [0, 1] (unit) or [−1, 1] (pm1)"""
    train_images: int = 0
    """training images, a stratified subset before the validation hold-out (0: all)"""
    val_images: int = 5000
    """validation images held out of the training set, stratified"""
    split: Literal["stratified", "nielsen"] = "stratified"
    """how validation is held out: stratified at random (seeded by the first seed), or nielsen: the last --val-images
    training images, training on the first --train-images of the others (Nielsen's first 50,000 / last 10,000)"""
    lambda_convention: Literal["jaxnet", "nielsen"] = "jaxnet"
    """what --lambdas are: jaxnet's λ of λ Σ‖W‖² added to the batch-mean loss, or nielsen: the book's λ of
    network2.py's decay w ← (1 − ηλ/n) w, run as λ/(2n) with n the training images (so 5.0 on 50,000 images is 5e-5)"""
    evaluate: tuple[Literal["train", "val", "test"], ...] = ("train", "val", "test")
    """the sets evaluated after every epoch (Nielsen's overfitting.py: train test; more_data.py and
    weight_initialization.py: val)"""
    repeat_to: int = 0
    """repeat the training images to this many per epoch (jaxnet.data.derived.repeat_to; a multiple of the training
    images; 0: no repetition), e.g. Nielsen's 15,000 epochs of 100 images as --repeat-to 100000 --epochs 15"""

    def quick_variant(self) -> Config:
        return dataclasses.replace(self, train_images=3000, val_images=500, epochs=2)

    def problems(self) -> list[tuple[str, str, str]]:
        out = [("--hidden", f"width {w}", "use widths ≥ 1") for w in self.hidden if w < 1]
        out += [("--learning-rates", f"{v:g} is not positive", "use rates > 0") for v in self.learning_rates if v <= 0]
        out += [("--lambdas", f"{v:g} is negative", "use λ ≥ 0") for v in self.lambdas if v < 0]
        if self.batch_size < 1:
            out.append(("--batch-size", f"{self.batch_size}", "use a batch of at least 1"))
        if self.val_images < 0 or self.train_images < 0:
            out.append(("--val-images", "a negative count", "use counts ≥ 0"))
        if not self.evaluate or len(set(self.evaluate)) != len(self.evaluate):
            out.append(("--evaluate", "is empty or lists a set twice", "give some of train val test, each once"))
        if self.repeat_to < 0:
            out.append(("--repeat-to", f"{self.repeat_to}", "use 0 (no repetition) or a multiple of the training images"))
        return out


def members(config: Config) -> list[dict[str, Any]]:
    """Every combination of the swept values, in a fixed order."""
    return [{"learning_rate": lr, "l2": lam, "seed": seed}
            for lr, lam, seed in itertools.product(config.learning_rates, config.lambdas, config.seeds)]


def penalty(config: Config, lam: float, n: int) -> float:
    """The engine's λ for one of ``--lambdas``: as given, or under ``--lambda-convention nielsen`` the book's λ
    converted to λ/(2n) with n training images (``experiments.nielsen.our_lambda``): network2.py's
    w ← (1 − ηλ/n) w − (η/m) Σ ∇C_x is jaxnet's SGD step on the batch-mean loss + λ' Σ‖W‖² when 2λ' = λ/n."""
    return float(lam) / (2.0 * n) if config.lambda_convention == "nielsen" else float(lam)


def member_name(member: dict[str, Any]) -> str:
    return f"lr={member['learning_rate']:g} λ={member['l2']:g} seed={member['seed']}"


def prepare(config: Config, study: lib.Study) -> tuple[tuple, tuple, tuple, list[str]]:
    """Flattened, scaled train / validation / test splits and the class names."""
    ds = study.load(config.dataset, **({"invert": True} if config.dataset == "gurmukhi" else {}))
    scale = (lambda x: data.flatten(data.normalize(data.scale(x), 0.5, 0.5))) if config.pixels == "pm1" else (
        lambda x: data.flatten(data.scale(x)))
    x, y = ds.x_train, ds.y_train
    if config.split == "nielsen":  # the last val_images for validation, the first train_images of the rest for training
        if config.val_images >= len(x):
            raise lib.UsageError(f"--val-images {config.val_images} leaves no training images", "hold out fewer")
        n = len(x) - config.val_images
        if config.train_images > n:
            raise lib.UsageError(f"--train-images {config.train_images} is more than the {n} images before the "
                                 f"validation set", f"use at most {n}")
        keep = config.train_images or n
        val_xy = (scale(x[n:]), y[n:]) if config.val_images else None
        return (scale(x[:keep]), y[:keep]), val_xy, (scale(ds.x_test), ds.y_test), list(ds.class_names)
    if config.train_images:
        if config.train_images > len(x):
            raise lib.UsageError(f"--train-images {config.train_images} is more than the {len(x)} training images",
                                 f"use at most {len(x)}")
        x, y = data.stratified_subset(x, y, config.train_images, seed=config.seeds[0])
    if config.val_images >= len(x):
        raise lib.UsageError(f"--val-images {config.val_images} leaves no training images", "hold out fewer")
    if config.val_images:
        split = data.train_val_split(x, y, val=config.val_images, seed=config.seeds[0])
        train_xy, val_xy = (scale(split.x_train), split.y_train), (scale(split.x_val), split.y_val)
    else:
        train_xy, val_xy = (scale(x), y), None
    return train_xy, val_xy, (scale(ds.x_test), ds.y_test), list(ds.class_names)


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """All members as one ``engine.sweep`` program."""
    train_xy, val_xy, test_xy, class_names = prepare(config, study)
    grid = members(config)
    sizes = [train_xy[0].shape[1], *config.hidden, len(class_names)]
    if config.batch_size > len(train_xy[0]):
        raise lib.UsageError(f"--batch-size {config.batch_size} is larger than the {len(train_xy[0])} training images",
                             "use a smaller batch")

    model = mlp.model(sizes, activation=mlp.activation(config.activation), scheme=config.init)
    loss = losses.get(config.loss)  # the one place the loss's name becomes its value
    n_train = len(train_xy[0])
    indices = None
    if config.repeat_to:
        from jaxnet.data.derived import repeat_to

        if config.repeat_to % n_train:
            raise lib.UsageError(f"--repeat-to {config.repeat_to} is not a multiple of the {n_train} training images",
                                 f"use a multiple of {n_train}")
        indices = np.stack([repeat_to(np.arange(n_train), config.repeat_to)] * len(grid))
    evaluated = set(config.evaluate)

    def sweep(**options: Any) -> list[dict[str, Any]]:
        result = engine.sweep(model,
                              train.make_optimizer(config.optimizer, learning_rate=config.learning_rates[0],
                                                   momentum=config.momentum),
                              train_xy, epochs=config.epochs, batch_size=config.batch_size,
                              learning_rate=[m["learning_rate"] for m in grid],
                              l2=[penalty(config, m["l2"], n_train) for m in grid],
                              init_seed=[m["seed"] for m in grid], data_seed=[m["seed"] for m in grid],
                              indices=indices, loss=loss, eval_train="train" in evaluated,
                              val=val_xy if "val" in evaluated else None,
                              test=test_xy if "test" in evaluated else None, **options)
        records = []
        for k, member in enumerate(grid):
            history = result.histories[k]
            ev = evaluate.classifier(model, result.member(k), test_xy, loss=loss, num_classes=len(class_names))
            final = {"train_accuracy": history.last("train_accuracy"), "val_accuracy": history.last("val_accuracy"),
                     "test_accuracy": ev["accuracy"], "train_loss": history.last("train_loss"),
                     "val_loss": history.last("val_loss"), "test_loss": ev["loss"]}
            run_config = {"member": k, "layers": sizes, **member, "activation": config.activation, "loss": config.loss,
                          "optimizer": config.optimizer, "batch_size": config.batch_size, "epochs": config.epochs,
                          "l2_run": penalty(config, member["l2"], n_train), "train_images": n_train}
            records.append(lib.run_record(
                member_name(member), run_config, history.to_dict(), final,
                per_class={"recall": ev["per_class_recall"], "one_vs_rest_accuracy": ev["per_class_one_vs_rest_accuracy"]},
                confusion=ev["confusion_matrix"], seconds=history.seconds[-1] if history.seconds else 0.0,
                **lib.divergence(history)))
        return records

    runs = study.train("sweep", [member_name(m) for m in grid], sweep, label=f"{len(grid)} members",
                       epochs=config.epochs)
    best, _ = best_member(runs)
    return {"runs": runs, "headline": None if best is None else (f"test accuracy, {best['name']}",
                                                                 best["final"]["test_accuracy"]),
            "best_member": None if best is None else best["name"], "class_names": class_names}


def swept(config: dict[str, Any]) -> list[str]:
    """The settings that take more than one value."""
    return [k for k, field in (("learning_rate", "learning_rates"), ("l2", "lambdas"), ("seed", "seeds"))
            if len(config[field]) > 1]


def ranked(runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """(the members that did not diverge, best first; "validation" or "test"): by validation accuracy where the run
    has a validation set, else by test accuracy."""
    finished = [r for r in runs if not r["diverged"]]
    basis = "validation" if any(r["final"]["val_accuracy"] is not None for r in finished) else "test"
    key = "val_accuracy" if basis == "validation" else "test_accuracy"
    return sorted((r for r in finished if r["final"][key] is not None), key=lambda r: -r["final"][key]), basis


def best_member(runs: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """(the best member, or None if every member diverged; the set it is best on)."""
    order, basis = ranked(runs)
    return (order[0] if order else None), basis


def claims(results: dict[str, Any]) -> list[Claim]:
    """The outcomes the report states, each computed from ``results``: whether the best member is ahead of the
    runner-up, and, with several seeds, whether the other settings move the test accuracy more than the seeds do."""
    (order, basis), out = ranked(results["runs"]), []
    key = "val_accuracy" if basis == "validation" else "test_accuracy"
    if len(order) > 1:
        out.append(Claim(f"the best member by {basis} accuracy against the runner-up", f"{order[0]['name']},",
                         order[0]["final"][key], f"the runner-up, {order[1]['name']},", order[1]["final"][key],
                         more="ahead", less="tied", digits=4))
    groups: dict[str, list[float]] = {}  # the members of one setting (lr and λ, named) across the seeds
    for r in order:
        groups.setdefault(r["name"].rsplit(" seed=", 1)[0], []).append(r["final"]["test_accuracy"])
    means, spread = [float(np.mean(v)) for v in groups.values()], [max(v) - min(v) for v in groups.values() if len(v) > 1]
    if len(means) > 1 and spread:
        out.append(Claim("the spread of the test accuracy, the settings against the seeds", "the spread of the "
                         "settings' seed means", max(means) - min(means), "the largest spread between the seeds of "
                         "one setting", max(spread), more="the settings differ by more than the seeds",
                         less="within the seed-to-seed spread", digits=4,
                         why="The seeds' spread is the noise floor against which the other settings compare."))
    return out


def summary(results: dict[str, Any]) -> str:
    """The best member, the spread of the test accuracy, the diverged members."""
    runs = results["runs"]
    best, basis = best_member(runs)
    accs = [r["final"]["test_accuracy"] for r in runs if not r["diverged"]]
    diverged = [r["name"] for r in runs if r["diverged"]]
    text = ("Every member diverged: there is no best member." if best is None else
            f"The best member by {basis} accuracy is {best['name']} (test accuracy "
            f"{lib.fmt(best['final']['test_accuracy'], 4)}).")
    if len(accs) > 1:
        text += f" Test accuracy across the {len(accs)} finished members ranges from {min(accs):.4f} to {max(accs):.4f}."
    if diverged:
        text += f" Diverged (loss NaN/inf; last finite parameters kept): {', '.join(diverged)}."
    return text


def report(results: dict[str, Any], out: Path) -> lib.Report:
    cfg, runs = results["config"], results["runs"]
    layers = runs[0]["config"]["layers"]
    rep = lib.Report(f"Your experiment: {cfg['dataset']}, {'-'.join(map(str, layers))}", quick=results["quick"])
    rep.what_was_run(
        f"{cfg['dataset']} ({'[−1, 1]' if cfg['pixels'] == 'pm1' else '[0, 1]'} pixels; {cfg['val_images']:,} "
        f"training images held out for validation), a {'-'.join(map(str, layers))} "
        + (f"MLP with {cfg['activation']} hidden units" if len(layers) > 2 else "network without a hidden layer "
           f"(a linear model{': softmax regression' if cfg['loss'] == 'softmax_cross_entropy' else ''})")
        + f", {cfg['loss']} loss, {cfg['init']} initialisation, {cfg['optimizer']} "
        f"(batch {cfg['batch_size']}, {cfg['epochs']} epochs). Members: learning rates "
        f"{', '.join(f'{v:g}' for v in cfg['learning_rates'])} × λ {', '.join(f'{v:g}' for v in cfg['lambdas'])} × "
        f"seeds {', '.join(map(str, cfg['seeds']))}: {len(runs)} members as one vmapped program."
        + (" Validation: the last training images, training on the first ones (`--split nielsen`)."
           if cfg.get("split") == "nielsen" else "")
        + (f" λ in the book's convention: each run with λ/(2n), n = {runs[0]['config'].get('train_images'):,} "
           "training images (`--lambda-convention nielsen`)." if cfg.get("lambda_convention") == "nielsen" else "")
        + (f" Each epoch: the training images repeated to {cfg['repeat_to']:,} (`--repeat-to`)."
           if cfg.get("repeat_to") else "")
        + (f" Evaluated after every epoch: {', '.join(cfg['evaluate'])}."
           if tuple(cfg.get("evaluate") or ("train", "val", "test")) != ("train", "val", "test") else ""))
    rep.figure(plots.learning_curves(out / "learning_curves.png", {r["name"]: r["history"] for r in runs},
                                     "Loss and accuracy per member"),
               "Loss (left) and accuracy (right) per epoch; solid: training set, dashed: validation set.")
    for key in swept(cfg):
        groups: dict[str, tuple[list, list]] = {}
        others = [k for k in ("learning_rate", "l2", "seed") if k != key]
        for r in runs:
            label = " ".join(f"{k}={r['config'][k]:g}" for k in others)
            xs, ys = groups.setdefault(label, ([], []))
            xs.append(r["config"][key])
            ys.append(r["final"]["test_accuracy"])
        rep.figure(plots.line_plot(out / f"test_accuracy_vs_{key}.png", {k: v[0] for k, v in groups.items()},
                                   {k: v[1] for k, v in groups.items()}, key, "test accuracy",
                                   f"Test accuracy against {key}", logx=key != "seed" and min(groups[next(iter(groups))][0]) > 0),
                   f"Final test accuracy against {key}, one line per combination of the other settings.")
    rep.table(["Member", "Train acc", "Val acc", "Test acc", "Val loss", "Diverged", "Time"],
              [[r["name"], r["final"]["train_accuracy"], r["final"]["val_accuracy"], r["final"]["test_accuracy"],
                r["final"]["val_loss"], "yes" if r["diverged"] else "no", lib.format_seconds(r["seconds"])]
               for r in runs], digits=4)
    rep.text(summary(results))
    best, _ = best_member(runs)
    if best is not None:
        rep.figure(plots.confusion_matrix(out / "confusion_best.png", best["confusion"], results["class_names"],
                                          title=f"{best['name']}: test accuracy {best['final']['test_accuracy']:.3f}"),
                   f"Confusion matrix of the best member ({best['name']}) on the test set.")
    return rep.claims(claims(results))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=lambda c: (c.dataset,))


if __name__ == "__main__":
    main()
