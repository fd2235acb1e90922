"""Your own experiment without writing code: any MLP on any dataset the loader knows, with any
activation, loss, optimizer, learning rate, λ, batch and epochs; lists of learning rates, λ
and seeds are swept as one vmapped program (every combination is a member).

    python -m experiments.train --dataset fashion_mnist --lambdas 0 0.0001 0.001 0.01 --epochs 10
    python -m experiments.train --hidden 256 128 --activation tanh --learning-rates 0.1 0.03 0.01

Writes results.json, metrics.csv, report.md and figures like every study: validation and
test curves per member, final accuracy against the swept value(s), the best member's
confusion matrix. Validation is a stratified hold-out of the training images.
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any, Literal

import numpy as np

from experiments import lib
from experiments.lib import plots
from jaxnet import data, engine, mlp, train

NAME = "train"
LABEL_LOSSES = ("softmax_cross_entropy", "nll", "mse", "kl_divergence", "sigmoid_cross_entropy")


@dataclasses.dataclass(frozen=True)
class Config(lib.StudyConfig):
    dataset: Literal["mnist", "fashion_mnist", "kmnist", "gurmukhi"] = "mnist"
    """the dataset (fashion_mnist and kmnist are downloaded by tensorflow-datasets unless in --manual-dir)"""
    hidden: tuple[int, ...] = (128, 64)
    """hidden-layer widths (none: softmax regression)"""
    activation: Literal["relu", "sigmoid", "tanh"] = "relu"
    """hidden activation"""
    loss: Literal["softmax_cross_entropy", "nll", "mse", "kl_divergence", "sigmoid_cross_entropy"] = (
        "softmax_cross_entropy")
    """loss on the logits"""
    init: Literal["lecun_normal", "glorot_normal", "he_normal", "uniform"] = "lecun_normal"
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
        return out


def members(config: Config) -> list[dict[str, Any]]:
    """Every combination of the swept values, in a fixed order."""
    return [{"learning_rate": lr, "l2": lam, "seed": seed}
            for lr, lam, seed in itertools.product(config.learning_rates, config.lambdas, config.seeds)]


def member_name(member: dict[str, Any]) -> str:
    return f"lr={member['learning_rate']:g} λ={member['l2']:g} seed={member['seed']}"


def prepare(config: Config, study: lib.Study) -> tuple[tuple, tuple, tuple, list[str]]:
    """Flattened, scaled train / validation / test splits and the class names."""
    ds = study.load(config.dataset, **({"invert": True} if config.dataset == "gurmukhi" else {}))
    scale = (lambda x: data.flatten(data.normalize(data.scale(x), 0.5, 0.5))) if config.pixels == "pm1" else (
        lambda x: data.flatten(data.scale(x)))
    x, y = ds.x_train, ds.y_train
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

    def sweep(**options: Any) -> list[dict[str, Any]]:
        result = engine.sweep(lambda key: mlp.init(key, sizes, scheme=config.init),
                              train.make_optimizer(config.optimizer, learning_rate=config.learning_rates[0],
                                                   momentum=config.momentum),
                              train_xy, epochs=config.epochs, batch_size=config.batch_size,
                              learning_rate=[m["learning_rate"] for m in grid], l2=[m["l2"] for m in grid],
                              init_seed=[m["seed"] for m in grid], data_seed=[m["seed"] for m in grid],
                              hidden=config.activation, loss=config.loss, val=val_xy, test=test_xy, **options)
        records = []
        for k, member in enumerate(grid):
            history = result.histories[k]
            ev = engine.evaluate_classifier(result.member(k), test_xy, hidden=config.activation, loss=config.loss,
                                            num_classes=len(class_names))
            final = {"train_accuracy": history.last("train_accuracy"), "val_accuracy": history.last("val_accuracy"),
                     "test_accuracy": ev["accuracy"], "train_loss": history.last("train_loss"),
                     "val_loss": history.last("val_loss"), "test_loss": ev["loss"]}
            run_config = {"member": k, "layers": sizes, **member, "activation": config.activation, "loss": config.loss,
                          "optimizer": config.optimizer, "batch_size": config.batch_size, "epochs": config.epochs}
            records.append(lib.run_record(
                member_name(member), run_config, history.to_dict(), final,
                per_class={"recall": ev["per_class_recall"], "one_vs_rest_accuracy": ev["per_class_one_vs_rest_accuracy"]},
                confusion=ev["confusion_matrix"], seconds=history.seconds[-1] if history.seconds else 0.0,
                diverged=history.diverged,
                diverged_epoch=None if history.diverged_epoch is None else int(np.ceil(history.diverged_epoch))))
        return records

    runs = study.train("sweep", [member_name(m) for m in grid], sweep, label=f"{len(grid)} members",
                       epochs=config.epochs, checkpoints=False)
    best = max(runs, key=lambda r: r["final"]["val_accuracy"] if r["final"]["val_accuracy"] is not None
               else r["final"]["test_accuracy"])
    return {"runs": runs, "headline": (f"test accuracy, {best['name']}", best["final"]["test_accuracy"]),
            "best_member": best["name"], "class_names": class_names}


def swept(config: dict[str, Any]) -> list[str]:
    """The settings that take more than one value."""
    return [k for k, field in (("learning_rate", "learning_rates"), ("l2", "lambdas"), ("seed", "seeds"))
            if len(config[field]) > 1]


def summary(results: dict[str, Any]) -> str:
    """What the sweep shows, from the numbers: the best member, the spread, the diverged ones."""
    runs, cfg = results["runs"], results["config"]
    finished = [r for r in runs if not r["diverged"]]
    diverged = [r["name"] for r in runs if r["diverged"]]
    accs = [r["final"]["test_accuracy"] for r in finished]
    text = (f"The best member by validation accuracy is {results['best_member']} (test accuracy "
            f"{next(r for r in runs if r['name'] == results['best_member'])['final']['test_accuracy']:.4f}).")
    if len(accs) > 1:
        text += f" Test accuracy across the {len(accs)} finished members ranges from {min(accs):.4f} to {max(accs):.4f}."
    if diverged:
        text += f" Diverged (loss NaN/inf; last finite parameters kept): {', '.join(diverged)}."
    if len(cfg["seeds"]) > 1 and len(accs) > 1:
        text += " Seeds differ: that spread is the noise floor against which the other settings compare."
    return text


def report(results: dict[str, Any], out: Path) -> lib.Report:
    cfg, runs = results["config"], results["runs"]
    layers = runs[0]["config"]["layers"]
    rep = lib.Report(f"Your experiment: {cfg['dataset']}, {'-'.join(map(str, layers))}", quick=results["quick"])
    rep.what_was_run(
        f"{cfg['dataset']} ({'[−1, 1]' if cfg['pixels'] == 'pm1' else '[0, 1]'} pixels; {cfg['val_images']:,} "
        f"training images held out for validation), a {'-'.join(map(str, layers))} MLP with {cfg['activation']} "
        f"hidden units, {cfg['loss']} loss, {cfg['init']} initialisation, {cfg['optimizer']} "
        f"(batch {cfg['batch_size']}, {cfg['epochs']} epochs). Members: learning rates "
        f"{', '.join(f'{v:g}' for v in cfg['learning_rates'])} × λ {', '.join(f'{v:g}' for v in cfg['lambdas'])} × "
        f"seeds {', '.join(map(str, cfg['seeds']))}: {len(runs)} members as one vmapped program.")
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
    best = next(r for r in runs if r["name"] == results["best_member"])
    rep.figure(plots.confusion_matrix(out / "confusion_best.png", best["confusion"], results["class_names"],
                                      title=f"{best['name']}: test accuracy {best['final']['test_accuracy']:.3f}"),
               f"Confusion matrix of the best member ({best['name']}) on the test set.")
    return rep


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=lambda c: (c.dataset,))


if __name__ == "__main__":
    main()
