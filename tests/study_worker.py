"""A small two-program study on the shared layer, run as a subprocess by the fault tests:
``python tests/study_worker.py --out DIR [--resume]``. Each program is an engine fit with
per-epoch checkpoints; the first program's record is saved before the second starts."""
import dataclasses
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments import lib  # noqa: E402
from jaxnet import engine, mlp, train  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Config(lib.StudyConfig):
    epochs: int = 8
    """epochs per program"""
    width: int = 16
    """hidden units"""


def run(config, study):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 20)).astype(np.float32)
    y = (x[:, :2].sum(axis=1) > 0).astype(np.int32)
    runs = []
    for program in ("first", "second"):
        def fit(**options):
            # a pause after every epoch (outside the compiled program) leaves time for the
            # background checkpoint writes to land, so the fault tests can kill mid-run
            options["callback"] = lambda epoch, histories: time.sleep(0.15)
            result = engine.fit(mlp.init(jax.random.PRNGKey(len(runs)), [20, config.width, 2]),
                                train.make_optimizer("momentum", learning_rate=0.05), (x, y), epochs=config.epochs,
                                batch_size=16, val=(x[:128], y[:128]), seed=len(runs), **options)
            h = result.history
            return [lib.run_record(program, {"epochs": config.epochs}, h.to_dict(),
                                   {"train_accuracy": h.last("train_accuracy"), "val_accuracy": h.last("val_accuracy"),
                                    "test_accuracy": None, "w0_sum": float(np.asarray(result.params[0]["w"]).sum())},
                                   seconds=h.seconds[-1], diverged=h.diverged)]
        runs += study.train(program, [program], fit, label=program, epochs=config.epochs)
        study.save_progress(runs)
    return {"runs": runs}


def report(results, out):
    return lib.Report("worker").text(f"{len(results['runs'])} runs.")


if __name__ == "__main__":
    lib.main("worker", Config, run, report, sys.argv[1:], datasets=())
