"""A separate Python process for the engine tests that need one.

    python tests/engine_worker.py sweep OUT.json                    # every local device
    python tests/engine_worker.py sweep OUT.json PORT N ID          # process ID of N (jax.distributed)
    python tests/engine_worker.py fit CHECKPOINT_DIR                # a run to be killed mid-way
    python tests/engine_worker.py data_parallel OUT.json            # fit split over every device vs one
    python tests/engine_worker.py devices OUT.json                  # what `import jaxnet` gave jax

Device counts must be set before jax initializes (``XLA_FLAGS``), and jax.distributed needs
one process per member of the job, hence subprocesses. ``problem`` and ``sweep_kwargs``
are imported by the tests, so the reference run in the test process is the same problem.
"""
from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np

EPOCHS = 3
FIT_EPOCHS = 25


def problem(n: int = 256, features: int = 20, classes: int = 3, seed: int = 0):
    """A random linear teacher: x ~ N(0, 1), y = argmax(x W)."""
    import jax.numpy as jnp

    key = jax.random.PRNGKey(seed)
    dtype = jnp.zeros(()).dtype  # float64 under x64 (the flag or a jax.enable_x64 block)
    x = jax.random.normal(jax.random.fold_in(key, 1), (n, features), dtype)
    w = jax.random.normal(jax.random.fold_in(key, 2), (features, classes), x.dtype)
    return x, jnp.argmax(x @ w, axis=-1)


def sweep_kwargs(members: int = 3):
    """A sweep whose members differ in learning rate, init seed and data seed."""
    from jaxnet import mlp, train

    x, y = problem()
    return dict(
        model=mlp.model([20, 16, 3], activation=mlp.RELU, dtype=x.dtype),
        optimizer=train.make_optimizer("momentum", learning_rate=0.05),
        train_data=(x, y), epochs=EPOCHS, batch_size=32, val=problem(100, seed=1),
        learning_rate=list(np.linspace(0.02, 0.1, members)), init_seed=list(range(members)),
        data_seed=[10 + k for k in range(members)], log=None,
    )


def histories_json(histories) -> list[dict]:
    return [{k: v for k, v in h.to_dict().items() if k != "seconds"} for h in histories]


def run_sweep(out: str, members: int) -> None:
    from jaxnet import engine

    kwargs = sweep_kwargs(members)
    result = engine.sweep(kwargs.pop("model"), kwargs.pop("optimizer"), kwargs.pop("train_data"), **kwargs)
    record = {"devices": jax.device_count(), "local_devices": jax.local_device_count(),
              "processes": jax.process_count(), "histories": histories_json(result.histories),
              "params": [np.asarray(leaf).tolist() for leaf in jax.tree.leaves(result.params)]}
    with open(out, "w") as f:
        json.dump(record, f)


def fit_kwargs():
    from jaxnet import mlp, train

    x, y = problem(n=200)
    model = mlp.model([20, 16, 3], activation=mlp.RELU)
    return dict(model=model, params=model.init(jax.random.PRNGKey(3)),
                optimizer=train.make_optimizer("adam", learning_rate=0.01), train_data=(x, y), epochs=FIT_EPOCHS,
                batch_size=50, val=problem(100, seed=1), seed=7, log=None)


def run_fit(checkpoint_dir: str) -> None:
    from jaxnet import engine

    import time

    kwargs = fit_kwargs()
    # 0.2 s per epoch (the sleep changes nothing else): checkpoints are written in the
    # background, so without it the 25 tiny epochs end before the first one is on disk
    def slow_down(event):
        if isinstance(event, engine.Check):
            time.sleep(0.2)

    engine.fit(kwargs.pop("model"), kwargs.pop("params"), kwargs.pop("optimizer"), kwargs.pop("train_data"),
               checkpoint_dir=checkpoint_dir, hooks=[slow_down], **kwargs)


def data_parallel_kwargs():
    """A fit whose batch (48) splits evenly over 1, 2, 3, 4 or 6 devices."""
    from jaxnet import mlp, train

    x, y = problem(n=240)
    model = mlp.model([20, 16, 3], activation=mlp.RELU)
    return dict(model=model, params=model.init(jax.random.PRNGKey(3)),
                optimizer=train.make_optimizer("momentum", learning_rate=0.05), train_data=(x, y), epochs=EPOCHS,
                batch_size=48, val=problem(100, seed=1), seed=5, log=None)


def run_data_parallel(out: str) -> None:
    """fit with data_parallel=True over every local device, and fit on device 0 alone."""
    from jaxnet import engine

    record = {"devices": jax.device_count()}
    for name, extra in (("parallel", dict(data_parallel=True)), ("single", dict(devices=jax.devices()[:1]))):
        kwargs = data_parallel_kwargs()
        model, params, optimizer = kwargs.pop("model"), kwargs.pop("params"), kwargs.pop("optimizer")
        result = engine.fit(model, params, optimizer, kwargs.pop("train_data"), **kwargs, **extra)
        record[name] = {"histories": histories_json([result.history]),
                        "params": [np.asarray(leaf).tolist() for leaf in jax.tree.leaves(result.params)],
                        "param_devices": sorted({len(leaf.sharding.device_set) for leaf in jax.tree.leaves(result.params)})}
    try:
        kwargs = data_parallel_kwargs() | dict(batch_size=jax.device_count() + 1)
        engine.fit(kwargs.pop("model"), kwargs.pop("params"), kwargs.pop("optimizer"), kwargs.pop("train_data"),
                   data_parallel=True, **kwargs)
        record["indivisible_batch"] = None
    except ValueError as error:
        record["indivisible_batch"] = str(error)
    with open(out, "w") as f:
        json.dump(record, f)


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "fit":
        run_fit(argv[1])
        return
    if mode == "data_parallel":
        run_data_parallel(argv[1])
        return
    if mode == "devices":
        import jaxnet  # noqa: F401  (the import sets the CPU device count)

        with open(argv[1], "w") as f:
            json.dump({"devices": jax.device_count(), "platform": jax.devices()[0].platform}, f)
        return
    jax.config.update("jax_enable_x64", True)
    if len(argv) > 2:
        port, processes, process_id = argv[2], int(argv[3]), int(argv[4])
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=processes,
                                   process_id=process_id)
    run_sweep(argv[1], members=int(os.environ.get("SWEEP_MEMBERS", "3")))
    if len(argv) > 2:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
