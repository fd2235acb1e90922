"""A small two-program study on the shared layer, run as a subprocess by the fault tests:
``python tests/study_worker.py --out DIR [--resume]``. Each program is an engine fit with
per-epoch checkpoints; the first program's record is saved before the second starts.

For the fault tests, set in the environment:

- ``JAXNET_TEST_REPORT_PAUSE=S``: the report first writes half a figure (``figure.png``) and a
  ``report-started`` marker, then waits S seconds, so that a test can stop it mid-report;
- ``JAXNET_TEST_REPORT_BYTES=N``: the report writes an N-byte ``figure.png`` (to fill a disk);
- ``JAXNET_TEST_FILL_DISK=1``: once the first program is saved, a ``ballast`` file beside
  ``--out`` takes all but a few bytes of the disk left, so that the second program meets a full disk."""
import dataclasses
import os
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
            pause = lambda event: time.sleep(0.15) if isinstance(event, engine.Check) else None  # noqa: E731
            options["hooks"] = [*options.get("hooks", ()), pause]
            model = mlp.model([20, config.width, 2])
            result = engine.fit(model, model.init(jax.random.PRNGKey(len(runs))),
                                train.make_optimizer("momentum", learning_rate=0.05), (x, y), epochs=config.epochs,
                                batch_size=16, val=(x[:128], y[:128]), seed=len(runs), **options)
            h = result.history
            return [lib.run_record(program, {"epochs": config.epochs}, h.to_dict(),
                                   {"train_accuracy": h.last("train_accuracy"), "val_accuracy": h.last("val_accuracy"),
                                    "test_accuracy": None, "w0_sum": float(np.asarray(result.params[0]["w"]).sum())},
                                   seconds=h.seconds[-1], diverged=h.diverged)]
        runs += study.train(program, [program], fit, label=program, epochs=config.epochs)
        study.save_progress(runs)
        if program == "first" and os.environ.get("JAXNET_TEST_FILL_DISK"):
            disk = os.statvfs(study.out)
            with open(study.out.parent / "ballast", "wb") as f:
                f.write(b"\0" * max(disk.f_bavail * disk.f_frsize - 4096, 0))
    return {"runs": runs}


def report(results, out):
    pause = float(os.environ.get("JAXNET_TEST_REPORT_PAUSE") or 0)
    if pause:
        (out / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a figure cut short
        (out / "report-started").touch()
        time.sleep(pause)
    if os.environ.get("JAXNET_TEST_REPORT_BYTES"):
        (out / "figure.png").write_bytes(b"\0" * int(os.environ["JAXNET_TEST_REPORT_BYTES"]))
    return lib.Report("worker").text(f"{len(results['runs'])} runs.")


if __name__ == "__main__":
    lib.main("worker", Config, run, report, sys.argv[1:], datasets=())
