"""A convolutional network, the one the original coursework left unfinished: two 3×3
convolution + max-pool blocks (16 and 32 channels), a 128-unit ReLU layer and the output
layer, written in flax (:mod:`jaxnet.cnn`) and trained with the same engine as every MLP
(Adam with a cosine-decayed learning rate, batch 128, 4 epochs) on MNIST in [−1, 1]. It reaches
at least 99% test accuracy; the report gives the per-class accuracies, the confusion matrix,
the misclassified images and the training time.
"""
from __future__ import annotations

import sys
import time
from typing import Any

import jax
import numpy as np
import optax

from experiments import common, plots, tutorial
from jaxnet import cnn, data, engine, train

NAME = "cnn"
CHANNELS, DENSE = (16, 32), 128
BATCH_SIZE = 128
LEARNING_RATE = 2e-3
DEFAULT_EPOCHS = 4
EVALS_PER_EPOCH = 2  # 1 under --quick
TARGET = 0.99
QUICK_TRAIN, QUICK_TEST = 4000, 1000


def load(args) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """MNIST as images (N, 28, 28, 1) in [−1, 1]; under --quick a stratified 4,000 / 1,000 subset."""
    ds = data.load("mnist", data_dir=args.data_dir, manual_dir=args.manual_dir)
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if args.quick:
        x_train, y_train = data.stratified_subset(x_train, y_train, QUICK_TRAIN, seed=args.seed)
        x_test, y_test = data.stratified_subset(x_test, y_test, QUICK_TEST, seed=args.seed)
    prep = lambda x: data.normalize(data.scale(x), 0.5, 0.5)[..., None]  # noqa: E731
    return prep(x_train), np.asarray(y_train), prep(x_test), np.asarray(y_test), list(ds.class_names)


def optimizer(steps: int) -> optax.GradientTransformation:
    """Adam, learning rate LEARNING_RATE decayed to 0 over ``steps`` by a half cosine."""
    return train.make_optimizer("adam", learning_rate=optax.cosine_decay_schedule(LEARNING_RATE, steps))


def train_cnn(study: common.Study, x_train, y_train, x_test, y_test, epochs: int, *, checkpoint_dir,
              resume: bool) -> dict[str, Any]:
    """Trains the CNN (continuing from ``checkpoint_dir`` if ``resume``) and measures it; the run
    record for ``results.json``."""
    init_fn, apply_fn = cnn.make(CHANNELS, DENSE)
    params = init_fn(jax.random.PRNGKey(study.args.seed))
    steps = epochs * (len(x_train) // BATCH_SIZE)
    config = {"architecture": cnn.describe(CHANNELS, DENSE), "channels": list(CHANNELS), "dense": DENSE,
              "parameters": cnn.num_params(params), "optimizer": "adam", "learning_rate": LEARNING_RATE,
              "schedule": f"cosine decay to 0 over {steps} steps", "batch_size": BATCH_SIZE, "epochs": epochs,
              "init": "flax defaults (LeCun-normal kernels, zero biases)", "seed": study.args.seed,
              "pixels": "[−1, 1]", "conv": "im2col + matmul (jaxnet.cnn.Conv3x3)"}
    started = time.perf_counter()
    result = engine.fit(params, optimizer(steps), (x_train, y_train), epochs=epochs, batch_size=BATCH_SIZE,
                        apply_fn=apply_fn, test=(x_test, y_test), eval_train=False, evals_per_epoch=1 if study.quick else EVALS_PER_EPOCH,
                        seed=study.args.seed, checkpoint_dir=checkpoint_dir, resume=resume, config={"channels": list(CHANNELS), "dense": DENSE},
                        log=study.log)
    train_seconds = time.perf_counter() - started
    history = result.history
    test = engine.evaluate_classifier(result.params, (x_test, y_test), apply_fn=apply_fn, num_classes=10)
    train_ = engine.evaluate_classifier(result.params, (x_train, y_train), apply_fn=apply_fn, num_classes=10)
    predictions = np.concatenate([np.asarray(apply_fn(result.params, x_test[i:i + engine.EVAL_CHUNK])).argmax(-1)
                                  for i in range(0, len(x_test), engine.EVAL_CHUNK)])
    epoch_ends = [s for e, s in zip(history.epoch, history.seconds) if float(e).is_integer()]
    final = {"train_accuracy": train_["accuracy"], "train_loss": train_["loss"], "val_accuracy": None,
             "val_loss": None, "test_accuracy": test["accuracy"], "test_loss": test["loss"],
             "test_errors": int((predictions != y_test).sum()), "test_predictions": predictions.tolist(),
             "epoch_seconds": np.diff([0.0, *epoch_ends]).tolist(), "training_seconds": train_seconds}
    return common.run_record("cnn", config, history.to_dict(), final,
                             per_class={"recall": test["per_class_recall"],
                                        "one_vs_rest_accuracy": test["per_class_one_vs_rest_accuracy"]},
                             confusion=test["confusion_matrix"], seconds=history.seconds[-1] if history.seconds else 0.0,
                             diverged=history.diverged,
                             diverged_epoch=None if history.diverged_epoch is None else int(np.ceil(history.diverged_epoch)))


def main(argv: list[str] | None = None) -> dict:
    args = common.parser(NAME, __doc__, default_epochs=DEFAULT_EPOCHS).parse_args(argv)
    study = common.start(NAME, args, sys.argv[1:] if argv is None else argv)
    epochs = common.epochs(args, quick=1)
    x_train, y_train, x_test, y_test, class_names = load(args)
    (run,) = tutorial.fit_or_resume(
        study, ["cnn"], lambda checkpoint_dir, resume: [train_cnn(study, x_train, y_train, x_test, y_test, epochs,
                                                                  checkpoint_dir=checkpoint_dir, resume=resume)],
        program="cnn", epochs=epochs)
    final, h = run["final"], run["history"]
    accuracy = final["test_accuracy"]

    curve = plots.line_plot(study.path("test_accuracy.png"), h["epoch"],
                            {"test accuracy": h["test_accuracy"], f"target {TARGET}": [TARGET] * len(h["epoch"])},
                            "epoch", "test accuracy", "CNN on MNIST: test accuracy during training")
    confusion = plots.confusion_matrix(study.path("confusion.png"), run["confusion"], class_names,
                                       title=f"CNN: test accuracy {accuracy:.4f}")
    predictions = np.asarray(final["test_predictions"])
    wrong = np.flatnonzero(predictions != y_test)[:30]
    mistakes = plots.image_grid(study.path("mistakes.png"), x_test[wrong, ..., 0],
                                titles=[f"{y_test[i]} / {predictions[i]}" for i in wrong], ncols=10, cmap="gray",
                                symmetric=False, title="Misclassified test images: true / predicted")

    report = study.report("A convolutional network in flax, trained with the jaxnet engine")
    report.what_was_run(
        f"MNIST ({len(x_train):,} training, {len(x_test):,} test images{', a --quick subset' if study.quick else ''}), "
        "pixels scaled to [0, 1] and normalized with mean 0.5, std 0.5 to [−1, 1], as images (N, 28, 28, 1). "
        f"Network ({run['config']['parameters']:,} parameters): {cnn.describe(CHANNELS, DENSE)}, ReLU after every "
        "convolution and after the hidden dense layer, 3×3 \"SAME\" convolutions, 2×2 max-pooling; "
        "`jaxnet.cnn` (flax linen), flax's default initialisation. Trained with "
        "`engine.fit(params, optimizer, (x, y), apply_fn=cnn_apply, ...)`, the same compiled epoch loop as the "
        f"MLPs: softmax cross-entropy, Adam with learning rate {LEARNING_RATE:g} decayed to 0 by a half cosine "
        f"over the {epochs} epochs, batch {BATCH_SIZE}, a fresh shuffle every epoch, test-set evaluation "
        f"{EVALS_PER_EPOCH}× per epoch (the training set is evaluated once, at the end). The convolutions are "
        "computed as im2col + matrix product, the same function as `flax.linen.Conv` with the same parameters "
        "(checked in `tests/test_cnn.py`) but several times faster on CPU inside the engine's `lax.scan`, where "
        "XLA:CPU runs convolutions and their gradients slowly (jax-ml/jax#12868).")
    epoch_seconds = ", ".join(common.format_seconds(s) for s in final["epoch_seconds"])
    report.heading("Results").table(
        ["Test accuracy", "Test errors", "Train accuracy", "Test loss", "Training time", "Time per epoch"],
        [[accuracy, f"{final['test_errors']} of {len(y_test):,}", final["train_accuracy"], final["test_loss"],
          common.format_seconds(run["seconds"]), epoch_seconds]], digits=4)
    report.text("Training time is the engine's wall clock, compilation and the test evaluations included (the "
                "first epoch also compiles), on a 2-core CPU that may have been shared with other jobs.")
    report.figure(curve, "Test accuracy after every half epoch; the flat line is the 99% goal.")
    report.figure(mistakes, f"The first {len(wrong)} misclassified test images (of {final['test_errors']}).")
    report.heading("Per-class results").text(
        "Two per-class numbers, named apart: the **one-vs-rest accuracy** (TPₖ + TNₖ)/N, the binary \"is it k?\" "
        "accuracy, and the **recall** TPₖ/Nₖ, the fraction of class k's test images classified as k.")
    report.table(["Class", "Test images", "One-vs-rest accuracy (TP + TN) / N", "Recall TP / Nₖ"],
                 [[c, int((y_test == i).sum()), run["per_class"]["one_vs_rest_accuracy"][i],
                   run["per_class"]["recall"][i]] for i, c in enumerate(class_names)], digits=4)
    report.figure(confusion, "Confusion matrix on the test set (rows: true class, columns: predicted).")
    report.reported_vs_reproduced([
        [f"test accuracy (the goal: at least {TARGET})", TARGET, accuracy,
         "" if accuracy >= TARGET or study.quick else
         "Below the goal: this setting did not reach 99% for this seed; try --epochs 4."],
    ], source="the jaxnet issue's goal for the CNN the coursework left unfinished (no number was ever reported)",
        digits=4)
    results = study.results([run], headline=("test accuracy", accuracy), epochs=epochs, target=TARGET,
                            reached_target=bool(accuracy >= TARGET))
    return study.finish(results, report)


if __name__ == "__main__":
    main()
