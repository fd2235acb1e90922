"""Sigmoid outputs: a 784-20-10 network with sigmoid hidden units and sigmoid outputs,
trained on MNIST with the sigmoid cross-entropy summed over the ten outputs, batch 128,
100 epochs of plain SGD at the reported learning rate 5e-4. Our losses average over the
batch; an original that summed over the batch takes steps 128× larger, so the study runs
lr 5e-4 × 128 = 0.064 and lr 5e-4 on the batch-mean loss as one two-member sweep, and
trains the 0.064 network again with the hand-derived backprop (``grad_source="manual"``)
to show it follows the autodiff run step for step.
"""
from __future__ import annotations

import jax
import numpy as np

from experiments import common, plots
from experiments.overfitting import final_metrics, load_mnist
from jaxnet import engine, mlp, train

NAME = "sigmoid_mlp"
LAYERS = [784, 20, 10]
REPORTED_LR = 5e-4
REPORTED_TEST_ACCURACY = 0.896
LOSS = "sigmoid_cross_entropy"


def record(name: str, config: dict, params: mlp.Params, history, test) -> dict:
    final, ev = final_metrics(params, history, test, hidden="sigmoid", loss=LOSS)
    return common.run_record(name, config, history.to_dict(), final,
                             per_class={"recall": ev["per_class_recall"],
                                        "one_vs_rest_accuracy": ev["per_class_one_vs_rest_accuracy"]},
                             confusion=ev["confusion_matrix"], seconds=history.seconds[-1],
                             diverged=history.diverged, diverged_epoch=history.diverged_epoch)


def max_difference(a: list, b: list) -> float:
    """max |a − b| over the epochs both lists have."""
    return float(np.max(np.abs(np.asarray(a[:len(b)], float) - np.asarray(b[:len(a)], float))))


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(NAME, __doc__, default_epochs=100)
    p.add_argument("--batch-size", type=int, default=128, help="minibatch size (default: %(default)s)")
    p.add_argument("--check-epochs", type=int, default=10,
                   help="epochs of the hand-derived-backprop run, compared with the first epochs of the autodiff "
                        "run (default: %(default)s; --check-epochs 100 for the whole run)")
    args = p.parse_args(argv)
    study = common.start(NAME, args, argv)
    epochs = common.epochs(args, quick=3)
    check_epochs = min(args.check_epochs, epochs)
    mnist = load_mnist(args, n_train=5_000 if args.quick else 50_000, n_val=1_000 if args.quick else 10_000)
    summed_lr = REPORTED_LR * args.batch_size  # a sum over B examples has B× the gradient of their mean
    lrs = [summed_lr, REPORTED_LR]
    init = lambda key: mlp.init(key, LAYERS)
    base = {"layers": LAYERS, "hidden": "sigmoid", "output": "sigmoid", "loss": LOSS,
            "loss_reduction": "sum over outputs, mean over the batch", "optimizer": "sgd", "batch_size": args.batch_size,
            "epochs": epochs, "init": "lecun_normal", "pixels": "[0, 1]", "seed": args.seed,
            "n_train": len(mnist.train[1]), "val": "last training images", "test": "MNIST test set"}
    names = [f"lr {summed_lr:g} (= 5e-4 × {args.batch_size}), autodiff", "lr 5e-4, autodiff"]
    manual_name = f"lr {summed_lr:g} (= 5e-4 × {args.batch_size}), hand-derived backprop"

    runs = [study.previous_run(n) for n in names]
    if any(r is None for r in runs):
        study.log(f"sweep over learning rates {lrs} (autodiff), {epochs} epochs")
        result = engine.sweep(init, train.make_optimizer("sgd"), mnist.train, epochs=epochs,
                              batch_size=args.batch_size, learning_rate=lrs, init_seed=[args.seed] * 2,
                              data_seed=[args.seed] * 2, hidden="sigmoid", loss=LOSS, val=mnist.val, log=study.log)
        runs = [record(n, {**base, "learning_rate": lr, "grad_source": "autodiff"}, result.member(k),
                       result.histories[k], mnist.test) for k, (n, lr) in enumerate(zip(names, lrs))]
        study.checkpoint(runs)
    manual = study.previous_run(manual_name)
    if manual is None:
        study.log(f"the lr {summed_lr:g} run again with hand-derived gradients")
        fitted = engine.fit(init(jax.random.PRNGKey(args.seed)), train.make_optimizer("sgd", learning_rate=summed_lr),
                            mnist.train, epochs=check_epochs, batch_size=args.batch_size, hidden="sigmoid", loss=LOSS,
                            grad_source="manual", val=mnist.val, seed=args.seed, log=study.log)
        manual = record(manual_name, {**base, "epochs": check_epochs, "learning_rate": summed_lr, "grad_source": "manual"},
                        fitted.params, fitted.history, mnist.test)
    runs.append(manual)
    main_run, slow_run = runs[0], runs[1]

    sweep_plot = plots.learning_curves(
        study.path("learning_curves.png"), {r["name"]: r["history"] for r in runs[:2]},
        f"784-20-10, sigmoid outputs, summed sigmoid cross-entropy, batch {args.batch_size}")
    h_auto, h_manual = main_run["history"], manual["history"]
    n_check = len(h_manual["epoch"])
    check_plot = plots.learning_curves(
        study.path("autodiff_vs_manual.png"),
        {"autodiff": {k: v[:n_check] for k, v in h_auto.items() if isinstance(v, list)}, "hand-derived backprop": h_manual},
        f"lr {summed_lr:g}: autodiff and hand-derived gradients (the curves coincide)")
    diffs = {k: max_difference(h_auto[k], h_manual[k]) for k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy")}
    diff_plot = plots.line_plot(
        study.path("autodiff_minus_manual.png"), h_manual["epoch"],
        {"training loss": np.subtract(h_manual["train_loss"], h_auto["train_loss"][:n_check]),
         "validation loss": np.subtract(h_manual["val_loss"], h_auto["val_loss"][:n_check])},
        "epoch", "hand-derived − autodiff", "Difference between the two runs' losses")
    confusion_plot = plots.confusion_matrix(study.path("confusion_matrix.png"), main_run["confusion"], mnist.class_names,
                                            f"Test set, lr {summed_lr:g} after {epochs} epochs")

    fm, fs = main_run["final"], slow_run["final"]
    report = study.report("A 784-20-10 network with sigmoid outputs").what_was_run(
        f"A 784-20-10 network: sigmoid hidden units, sigmoid outputs, and the sigmoid cross-entropy "
        f"−Σₖ yₖ ln σ(zₖ) + (1 − yₖ) ln(1 − σ(zₖ)) summed over the ten outputs (one-hot targets), LeCun-normal "
        f"initialisation, pixels in [0, 1]; plain SGD, batch {args.batch_size}, {epochs} epochs, on the first "
        f"{len(mnist.train[1]):,} MNIST training images, validated every epoch on the last {len(mnist.val[1]):,} and "
        "tested once on the 10,000 test images. The prediction is the output with the largest sigmoid. "
        f"jaxnet's losses average over the batch; the reported learning rate {REPORTED_LR:g} on a loss *summed* over "
        f"the batch is the same SGD step as lr {REPORTED_LR:g} × {args.batch_size} = {summed_lr:g} on our batch mean. "
        f"Both readings (lr {summed_lr:g} and lr {REPORTED_LR:g} on the mean) run as one two-member sweep from the same "
        f"initial weights and data order. The lr {summed_lr:g} network is then trained once more, for its first "
        f"{check_epochs} epochs, with the hand-derived gradients of `jaxnet.backprop` instead of `jax.grad`, from the "
        "same weights and batch order (`--check-epochs` sets how many; the comparison is step for step, so the first "
        "epochs show whether the two agree without paying for the whole run twice).")
    report.figure(sweep_plot, "Loss and accuracy per epoch for the two readings of the learning rate "
                              "(solid: training set, dashed: validation set).")
    report.figure(check_plot, f"The lr {summed_lr:g} network's first {n_check} epochs, trained with autodiff and with "
                              "hand-derived gradients: the second curve lies on top of the first.")
    report.figure(diff_plot, "Hand-derived minus autodiff loss at every epoch.")
    report.figure(confusion_plot, f"Test-set confusion matrix of the lr {summed_lr:g} network.")
    report.table(["Run", "Epochs", "Train acc", "Val acc", "Test acc", "Train loss", "Val loss", "Test loss",
                  "Training time"],
                 [[r["name"], r["config"]["epochs"], r["final"]["train_accuracy"], r["final"]["val_accuracy"], r["final"]["test_accuracy"],
                   r["final"]["train_loss"], r["final"]["val_loss"], r["final"]["test_loss"],
                   common.format_seconds(r["seconds"])] for r in runs], digits=4)
    report.text(
        f"**Which reduction reproduces lr 5e-4?** With the loss summed over the batch (our lr "
        f"{summed_lr:g}) the network reaches {fm['test_accuracy']:.1%} test accuracy; with the batch mean at lr "
        f"5e-4 it reaches {fs['test_accuracy']:.1%}: {epochs} epochs at a step {args.batch_size}× smaller move the "
        f"weights about as far as {epochs / args.batch_size:.1f} epochs of the summed loss would. Only the summed "
        "reading trains the network into the reported range within 100 epochs.")
    report.text(
        f"**Hand-derived backprop against autodiff.** Over {n_check} epochs "
        f"({n_check * (len(mnist.train[1]) // args.batch_size):,} SGD steps) the largest difference "
        f"between the two runs is {diffs['train_loss']:.2g} in training loss, {diffs['val_loss']:.2g} in validation "
        f"loss and {diffs['val_accuracy']:.2g} in validation accuracy: the hand-derived gradients "
        f"δᴴ = (σ(z) − y)/B, δˡ = (Wˡ⁺¹δˡ⁺¹) ⊙ σ′(zˡ) give the training that `jax.grad` gives.")
    gap = fm["test_accuracy"] - REPORTED_TEST_ACCURACY
    passed = next((e for e, v in zip(h_auto["epoch"], h_auto["val_accuracy"]) if v >= REPORTED_TEST_ACCURACY), None)
    main_note = ("" if abs(gap) <= 0.01 else
                 f"{'Higher' if gap > 0 else 'Lower'} by {100 * abs(gap):.1f} points"
                 + (f" (our validation accuracy passes 89.6% at epoch {passed:g} and keeps rising)" if passed else "")
                 + ". The issue does not give the initialisation, input scaling, training-set size or data order "
                 "(ours: LeCun-normal weights, [0, 1] pixels, 50,000 images, reshuffled every epoch); a 20-unit "
                 "network is sensitive to these, and we did not tune them toward the reported number.")
    slow_note = (f"The batch-mean reading: lr 5e-4 on our mean loss is {args.batch_size}× too small a step, "
                 "and the network is far from trained after 100 epochs, so the reported number cannot come from it."
                 if fs["test_accuracy"] < REPORTED_TEST_ACCURACY - 0.01 else "")
    report.reported_vs_reproduced([
        (f"test accuracy, lr 5e-4 on the batch-summed loss (our lr {summed_lr:g})", REPORTED_TEST_ACCURACY,
         fm["test_accuracy"], main_note),
        ("test accuracy, lr 5e-4 on the batch-mean loss", REPORTED_TEST_ACCURACY, fs["test_accuracy"], slow_note),
        ("hand-derived = autodiff training (max |Δ training loss|)", 0.0, diffs["train_loss"],
         "Float32 rounding of the two gradient computations accumulates over the run." if diffs["train_loss"] > 0.01
         else ""),
    ], source="the project issue (784-20-10, sigmoid outputs, summed sigmoid cross-entropy, batch 128, 100 epochs, "
              "lr 5e-4: test accuracy 89.6%)")
    results = study.results(runs, headline=("test accuracy", fm["test_accuracy"]),
                            autodiff_vs_manual_max_difference=diffs, summed_learning_rate=summed_lr)
    return study.finish(results, report)


if __name__ == "__main__":
    main()
