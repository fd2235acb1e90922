"""The training engine: compiled epochs, one-program sweeps, early stopping, divergence,
checkpoints, probes.

The whole dataset stays on the device. An epoch draws one permutation from
``fold_in(data_key, epoch)`` and runs ``lax.scan`` over its minibatches inside one jit
region (split into ``evals_per_epoch`` segments when evaluating several times per epoch).
Every minibatch has ``batch_size`` examples: the last ``n mod batch_size`` examples of each
epoch's order are dropped (with shuffling, a different few each epoch).

:func:`sweep` trains K members that differ in traced values (learning rate, λ, init seed,
data-order seed, labels, training subset) as ONE vmapped program whose member axis is
sharded over every device. :func:`fit` runs the same programs without the member axis.
Programs are cached by structure, never by values: a second run with other
hyperparameters compiles nothing.

Both are short loops over a one-epoch API that callers may drive themselves::

    run, state = engine.start(model, params, optimizer, (x, y), epochs=10, batch_size=128)
    while not run.done(state):
        state = engine.run_epoch(run, state)   # one epoch: train, checks, events, checkpoint
    result = engine.finish(run, state)

The rooms: :mod:`~jaxnet.engine.options` (the settings, spelled once),
:mod:`~jaxnet.engine.programs` (the compiled core), :mod:`~jaxnet.engine.state`,
:mod:`~jaxnet.engine.start` (checks, placement, resume), :mod:`~jaxnet.engine.loop` and
:mod:`~jaxnet.engine.events` (what hooks receive).
"""
from jaxnet.engine.events import Check, Diverged, Resumed, Stopped
from jaxnet.engine.loop import finish, fit, run_epoch, sweep
from jaxnet.engine.options import Hook, Options, Probe
from jaxnet.engine.start import CheckpointAheadError, start, start_sweep
from jaxnet.engine.state import FitResult, Run, SweepResult, TrainState

__all__ = [
    "fit", "sweep", "start", "start_sweep", "run_epoch", "finish",
    "Options", "Hook", "Probe", "TrainState", "Run", "FitResult", "SweepResult", "CheckpointAheadError",
    "Check", "Diverged", "Stopped", "Resumed",
]

_MOVED = {"evaluate_classifier": "jaxnet.evaluate.classifier(model, params, data, ...)",
          "EVAL_CHUNK": "jaxnet.evaluate.CHUNK", "LoopState": "engine.TrainState (arrays) and engine.Run"}


def __getattr__(name: str):
    if name in _MOVED:
        raise AttributeError(f"jaxnet.engine.{name} moved: use {_MOVED[name]}")
    raise AttributeError(f"module 'jaxnet.engine' has no attribute {name!r}")
