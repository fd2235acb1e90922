"""A convolutional network, the one the original coursework left unfinished: two 3×3
convolution + max-pool blocks (16 and 32 channels), a 128-unit ReLU layer and the output
layer, written in flax (:mod:`jaxnet.cnn`) and trained with the same engine as every MLP
(Adam with a cosine-decayed learning rate, batch 128, 4 epochs) on MNIST in [−1, 1]. The goal
is at least 99% test accuracy; the report gives the per-class accuracies, the confusion
matrix, the misclassified images and the training time.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np
import optax

from experiments import lib
from experiments.lib import plots
from experiments.lib.claims import Claim
from experiments.lib.results import divergence
from jaxnet import cnn, data, engine, evaluate, train

NAME = "cnn"
N_TRAIN, N_TEST = 60_000, 10_000
MISTAKES_SHOWN = 30


@dataclasses.dataclass(frozen=True)
class Config(lib.StudyConfig):
    channels: tuple[int, ...] = (16, 32)
    """output channels of each 3×3 conv + 2×2 max-pool block"""
    dense: int = 128
    """width of the hidden ReLU dense layer"""
    batch_size: int = 128
    """minibatch size"""
    learning_rate: float = 2e-3
    """Adam's initial learning rate, decayed to 0 by a half cosine over the run"""
    epochs: int = 4
    """training epochs"""
    evals_per_epoch: int = 2
    """test-set evaluations per epoch (the training set is evaluated once, at the end)"""
    target: float = 0.99
    """the test-accuracy goal"""
    train_images: int = 0
    """training images, a stratified subset (0: all 60,000)"""
    test_images: int = 0
    """test images, a stratified subset (0: all 10,000)"""

    def quick_variant(self) -> Config:
        return dataclasses.replace(self, train_images=4000, test_images=1000, epochs=1, evals_per_epoch=1)

    def problems(self) -> list[tuple[str, str, str]]:
        found = []
        for flag_, n, limit in (("--train-images", self.train_images, N_TRAIN), ("--test-images", self.test_images, N_TEST)):
            if n and not 10 <= n <= limit:
                found.append((flag_, f"{n} is outside 10..{limit:,}", f"give 10..{limit:,}, or 0 for all"))
        if not 1 <= self.batch_size <= (self.train_images or N_TRAIN):
            found.append(("--batch-size", f"{self.batch_size} does not fit {self.train_images or N_TRAIN:,} images",
                          "use a batch between 1 and the number of training images"))
        if self.evals_per_epoch < 1:
            found.append(("--evals-per-epoch", f"{self.evals_per_epoch}", "evaluate at least once per epoch"))
        if any(c < 1 for c in self.channels) or self.dense < 1:
            found.append(("--channels", "a width below 1", "give channels and --dense ≥ 1"))
        if not 0 < self.target <= 1:
            found.append(("--target", f"{self.target} is not an accuracy", "give a goal in (0, 1]"))
        if self.learning_rate <= 0:
            found.append(("--learning-rate", f"{self.learning_rate} is not positive", "give a rate > 0"))
        return found


def conv_implementation() -> str:
    """How :mod:`jaxnet.cnn` computes the convolutions on this backend ("im2col" or "lax")."""
    pick = getattr(cnn, "conv_impl", None)
    return pick() if pick is not None else "im2col"


def load(config: Config, study: lib.Study) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """MNIST as images (N, 28, 28, 1) in [−1, 1]; ``train_images`` / ``test_images`` > 0 take stratified subsets."""
    ds = study.load("mnist")
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if config.train_images:
        x_train, y_train = data.stratified_subset(x_train, y_train, config.train_images, seed=config.seed)
    if config.test_images:
        x_test, y_test = data.stratified_subset(x_test, y_test, config.test_images, seed=config.seed)
    prep = lambda x: data.normalize(data.scale(x), 0.5, 0.5)[..., None]  # noqa: E731
    return prep(x_train), np.asarray(y_train), prep(x_test), np.asarray(y_test), list(ds.class_names)


def optimizer(learning_rate: float, steps: int) -> optax.GradientTransformation:
    """Adam, ``learning_rate`` decayed to 0 over ``steps`` by a half cosine."""
    return train.make_optimizer("adam", learning_rate=optax.cosine_decay_schedule(learning_rate, steps))


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """One engine fit (checkpointed every epoch, so --resume continues it), then the measurements."""
    x_train, y_train, x_test, y_test, class_names = load(config, study)
    conv = conv_implementation()
    network = cnn.model(config.channels, config.dense)
    params = network.init(jax.random.PRNGKey(config.seed))
    steps = config.epochs * (len(x_train) // config.batch_size)
    run_config = {"architecture": cnn.describe(config.channels, config.dense), "channels": list(config.channels),
                  "dense": config.dense, "parameters": cnn.num_params(params), "optimizer": "adam",
                  "learning_rate": config.learning_rate, "schedule": f"cosine decay to 0 over {steps} steps",
                  "steps": steps, "batch_size": config.batch_size, "epochs": config.epochs,
                  "evals_per_epoch": config.evals_per_epoch, "init": "flax defaults (LeCun-normal kernels, zero biases)",
                  "seed": config.seed, "pixels": "[−1, 1]", "conv": conv, "backend": jax.default_backend()}

    def train_cnn(**options: Any) -> list[dict[str, Any]]:
        started = time.perf_counter()
        result = engine.fit(network, params, optimizer(run_config["learning_rate"], steps), (x_train, y_train),
                            epochs=run_config["epochs"], batch_size=run_config["batch_size"], test=(x_test, y_test),
                            eval_train=False, evals_per_epoch=run_config["evals_per_epoch"], seed=run_config["seed"],
                            **options)
        train_seconds = time.perf_counter() - started
        history = result.history
        test = evaluate.classifier(network, result.params, (x_test, y_test), num_classes=10)
        train_ = evaluate.classifier(network, result.params, (x_train, y_train), num_classes=10)
        predictions = np.concatenate([np.asarray(network.apply(result.params, x_test[i:i + evaluate.CHUNK])).argmax(-1)
                                      for i in range(0, len(x_test), evaluate.CHUNK)])
        wrong = np.flatnonzero(predictions != y_test)[:MISTAKES_SHOWN]
        study.save_arrays("mistakes", images=x_test[wrong, ..., 0], labels=y_test[wrong], predictions=predictions[wrong])
        epoch_ends = [s for e, s in zip(history.epoch, history.seconds) if float(e).is_integer()]
        final = {"train_accuracy": train_["accuracy"], "train_loss": train_["loss"], "val_accuracy": None,
                 "val_loss": None, "test_accuracy": test["accuracy"], "test_loss": test["loss"],
                 "test_errors": int((predictions != y_test).sum()), "test_predictions": predictions.tolist(),
                 "epoch_seconds": np.diff([0.0, *epoch_ends]).tolist(), "training_seconds": train_seconds}
        return [lib.run_record("cnn", run_config, history.to_dict(), final,
                               per_class={"recall": test["per_class_recall"],
                                          "one_vs_rest_accuracy": test["per_class_one_vs_rest_accuracy"]},
                               confusion=test["confusion_matrix"],
                               seconds=history.seconds[-1] if history.seconds else 0.0, **divergence(history))]

    runs = study.train("cnn", ["cnn"], train_cnn, label="cnn", epochs=config.epochs)
    study.save_progress(runs)
    accuracy = runs[0]["final"]["test_accuracy"]
    return {"runs": runs, "headline": ("test accuracy", accuracy), "reached_target": bool(accuracy >= config.target),
            "class_names": class_names, "n_train": len(x_train), "n_test": len(x_test),
            "test_class_counts": np.bincount(y_test, minlength=10).tolist()}


# ---------------------------------------------------------------- the findings, from the numbers
def how_often(evals_per_epoch: int) -> str:
    return {1: "after every epoch", 2: "after every half epoch"}.get(
        evals_per_epoch, f"{evals_per_epoch} times per epoch")


def claims(results: Mapping[str, Any]) -> list[Claim]:
    """Every outcome the report states, each computed from ``results``."""
    (run,) = results["runs"]
    target, f, h = results["config"]["target"], run["final"], run["history"]
    out = [Claim("the test accuracy after the last epoch against the goal",
                 f"ours ({f['test_errors']} errors in {results['n_test']:,} images)", f["test_accuracy"], "the goal",
                 target, reference=True, more="reached", less="not reached", digits=4)]
    curve = [(e, a) for e, a in zip(h["epoch"], h["test_accuracy"]) if a is not None]
    if len(curve) >= 2:
        best_epoch, best = max(curve, key=lambda t: t[1])
        out.append(Claim("the highest test accuracy during training against the goal",
                         f"the highest (epoch {best_epoch:g})", best, "the goal", target, reference=True,
                         more="reached during training", less="never reached during training", digits=4))
    if f["train_accuracy"] is not None:
        out.append(Claim("training against test accuracy after the last epoch", "training", f["train_accuracy"],
                         "test", f["test_accuracy"], more="training is higher", less="training is not higher",
                         digits=4))
    return out


def conv_text(conv: str) -> str:
    if conv == "im2col":
        return ("The convolutions are computed as im2col + matrix product (`jaxnet.cnn`'s choice on CPU): the same "
                "function as `flax.linen.Conv` with the same parameters (checked in `tests/test_cnn.py`); "
                "`jaxnet.cnn` chooses it on CPU because XLA:CPU runs convolutions and their gradients slowly inside "
                "the engine's `lax.scan` (jax-ml/jax#12868; that speed claim is the benchmark's, not measured here).")
    return (f"The convolutions are computed with `flax.linen.Conv` (`lax.conv_general_dilated`; `jaxnet.cnn`'s "
            f"choice \"{conv}\" on this backend).")


def reported_note(results: Mapping[str, Any]) -> str:
    cfg = results["config"]
    return "" if results["quick"] else (f"{cfg['epochs']} epochs at learning rate {cfg['learning_rate']:g}, seed "
                                        f"{cfg['seed']}; whether the goal is reached is under What the numbers say.")


def report(results: dict[str, Any], out: Path) -> lib.Report:
    """report.md and its figures, from results.json and the saved misclassified images."""
    cfg, (run,) = results["config"], results["runs"]
    f, h, rc, names = run["final"], run["history"], run["config"], results["class_names"]
    accuracy = f["test_accuracy"]
    rep = lib.Report("A convolutional network in flax, trained with the jaxnet engine", quick=results["quick"])
    rep.what_was_run(
        f"MNIST ({results['n_train']:,} training, {results['n_test']:,} test images"
        f"{', stratified subsets' if cfg['train_images'] or cfg['test_images'] else ''}), pixels scaled to [0, 1] and "
        "normalized with mean 0.5, std 0.5 to [−1, 1], as images (N, 28, 28, 1). "
        f"Network ({rc['parameters']:,} parameters): {rc['architecture']}, ReLU after every convolution and after "
        "the hidden dense layer, 3×3 \"SAME\" convolutions, 2×2 max-pooling; `jaxnet.cnn` (flax linen), flax's "
        "default initialisation. Trained with `engine.fit(cnn.model(...), params, optimizer, (x, y), ...)`, the "
        f"same compiled epoch loop as the MLPs: softmax cross-entropy, Adam with learning rate {cfg['learning_rate']:g} "
        f"decayed to 0 by a half cosine over the {cfg['epochs']} epoch{'s' if cfg['epochs'] > 1 else ''} "
        f"({rc['steps']:,} steps), batch {cfg['batch_size']}, a fresh shuffle every epoch, test-set evaluation "
        f"{how_often(cfg['evals_per_epoch'])} (the training set is evaluated once, at the end). "
        + conv_text(rc.get("conv", "im2col")))
    epoch_seconds = ", ".join(lib.format_seconds(s) for s in f["epoch_seconds"]) or "—"
    rep.heading("Results").table(
        ["Test accuracy", "Test errors", "Train accuracy", "Test loss", "Training time", "Time per epoch"],
        [[accuracy, f"{f['test_errors']} of {results['n_test']:,}", f["train_accuracy"], f["test_loss"],
          lib.format_seconds(run["seconds"]), epoch_seconds]], digits=4)
    if run["diverged"]:
        rep.text(f"**Diverged** at epoch {run['diverged_epoch']} (the loss became NaN/inf); the numbers are the last "
                 "finite model's. Lower --learning-rate.")
    rep.text(f"Training time is the engine's wall clock, compilation and the test evaluations included (the first "
             f"epoch also compiles), on {results['environment'].get('device', 'the device')}"
             f"{' (a 2-core CPU that may have been shared with other jobs)' if rc.get('backend', 'cpu') == 'cpu' else ''}.")
    rep.figure(plots.line_plot(out / "test_accuracy.png", h["epoch"],
                               {"test accuracy": h["test_accuracy"], f"target {cfg['target']}": [cfg["target"]] * len(h["epoch"])},
                               "epoch", "test accuracy", "CNN on MNIST: test accuracy during training"),
               f"Test accuracy {how_often(cfg['evals_per_epoch'])}; the flat line is the goal of {cfg['target']}.")
    mistakes = np.load(out / "arrays" / "mistakes.npz")
    if len(mistakes["labels"]):
        rep.figure(plots.image_grid(out / "mistakes.png", mistakes["images"],
                                    titles=[f"{t} / {p}" for t, p in zip(mistakes["labels"], mistakes["predictions"])],
                                    ncols=10, cmap="gray", symmetric=False,
                                    title="Misclassified test images: true / predicted"),
                   f"The first {len(mistakes['labels'])} misclassified test images (of {f['test_errors']}).")
    rep.heading("Per-class results").text(
        "Two per-class numbers, named apart: the **one-vs-rest accuracy** (TPₖ + TNₖ)/N, the binary \"is it k?\" "
        "accuracy, and the **recall** TPₖ/Nₖ, the fraction of class k's test images classified as k. "
        f"Lowest recall: class {names[int(np.argmin(run['per_class']['recall']))]} "
        f"({min(run['per_class']['recall']):.4f}).")
    rep.table(["Class", "Test images", "One-vs-rest accuracy (TP + TN) / N", "Recall TP / Nₖ"],
              [[c, results["test_class_counts"][i], run["per_class"]["one_vs_rest_accuracy"][i],
                run["per_class"]["recall"][i]] for i, c in enumerate(names)], digits=4)
    rep.figure(plots.confusion_matrix(out / "confusion.png", run["confusion"], names,
                                      title=f"CNN: test accuracy {accuracy:.4f}"),
               "Confusion matrix on the test set (rows: true class, columns: predicted).")
    rep.claims(claims(results))
    return rep.reported_vs_reproduced(
        [[f"test accuracy (the goal: at least {cfg['target']})", cfg["target"], accuracy, reported_note(results)]],
        source="the jaxnet issue's goal for the CNN the coursework left unfinished (no number was ever reported)",
        digits=4)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=("mnist",))


if __name__ == "__main__":
    main()
