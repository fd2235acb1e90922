"""The peers jaxnet is measured against: PyTorch (eager idiomatic, eager tuned, and the tuned
loop under ``torch.compile``) and a NumPy hand-written backprop.

Each ``*_epochs`` function is a generator: it trains for ``epochs`` passes over ``x`` (the
last ``len(x) mod batch`` examples of each shuffled order dropped, as in jaxnet's engine),
yields once after every epoch with all work finished, and finally returns the test
accuracy. The math is the one of :mod:`jaxnet.backprop`: the loss is averaged over the
batch, ``sigmoid_cross_entropy`` sums over the outputs, and SGD with heavy-ball momentum is
``trace = g + μ·trace; w -= lr·trace`` (optax's and PyTorch's convention).
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np


# --- PyTorch ------------------------------------------------------------------------------


def torch_or_none(threads: int | None = None):
    """``(torch, None)`` when PyTorch imports (then set to ``threads`` intra-op threads, if
    given), else ``(None, why)``."""
    try:
        import torch
    except Exception as error:  # ImportError, or a broken install
        return None, f"PyTorch variants skipped: `import torch` failed ({type(error).__name__}: {error})"
    if threads is not None:
        torch.set_num_threads(threads)
    return torch, None


def _torch_model(torch, sizes: Sequence[int], hidden: str):
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))  # U(±1/√fan_in) init, as mlp.init "uniform"
        if index < len(sizes) - 2:
            layers.append(torch.nn.ReLU() if hidden == "relu" else torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


def _torch_criterion(torch, loss: str, outputs: int):
    if loss == "softmax_cross_entropy":
        return torch.nn.CrossEntropyLoss()
    if loss == "sigmoid_cross_entropy":  # summed over outputs, averaged over the batch
        def criterion(logits, labels):
            targets = torch.nn.functional.one_hot(labels, outputs).to(logits.dtype)
            return torch.nn.functional.binary_cross_entropy_with_logits(
                logits, targets, reduction="sum") / logits.shape[0]
        return criterion
    raise ValueError(f"no PyTorch criterion for loss {loss!r}")


TORCH_STYLES = ("idiomatic", "tuned", "compile")


def torch_epochs(x: np.ndarray, y: np.ndarray, test: tuple[np.ndarray, np.ndarray], *, sizes: Sequence[int],
                 hidden: str, loss: str, learning_rate: float, momentum: float, batch_size: int, epochs: int,
                 seed: int, style: str) -> Iterator[None]:
    """PyTorch training.

    ``style="idiomatic"`` is the tutorial loop: ``DataLoader(TensorDataset, shuffle=True)``,
    ``zero_grad()``, ``backward()``, ``step()``. ``"tuned"`` shuffles the whole tensor once per
    epoch and slices batches from it (no DataLoader, no per-example collation), sets
    gradients to None, and uses the fused SGD kernel where this PyTorch has one.
    ``"compile"`` is the tuned loop with ``torch.compile``: the model and the loss as one
    compiled function (its backward compiled by AOTAutograd) and the optimizer step compiled
    too (``foreach`` SGD, which the compiler fuses); the first epoch pays the compilation.
    """
    if style not in TORCH_STYLES:
        raise ValueError(f"unknown PyTorch style {style!r}; choose one of {TORCH_STYLES}")
    torch, why = torch_or_none()
    if torch is None:
        raise RuntimeError(why)
    torch.manual_seed(seed)
    model = _torch_model(torch, sizes, hidden)
    criterion = _torch_criterion(torch, loss, sizes[-1])
    features, labels = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))
    steps = len(x) // batch_size
    if style == "idiomatic":
        optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(features, labels),
                                             batch_size=batch_size, shuffle=True, drop_last=True,
                                             generator=torch.Generator().manual_seed(seed))
        for _ in range(epochs):
            for xb, yb in loader:
                optimizer.zero_grad()
                batch_loss = criterion(model(xb), yb)
                batch_loss.backward()
                optimizer.step()
            yield
    else:
        if style == "compile":
            optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum, foreach=True)
            loss_of = torch.compile(lambda xb, yb: criterion(model(xb), yb))
            step = torch.compile(optimizer.step)
        else:
            try:
                optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum, fused=True)
            except (RuntimeError, TypeError, ValueError):
                optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum, foreach=True)
            loss_of, step = (lambda xb, yb: criterion(model(xb), yb)), optimizer.step
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator)[: steps * batch_size]
            xs, ys = features[order], labels[order]
            for i in range(steps):
                xb, yb = xs[i * batch_size:(i + 1) * batch_size], ys[i * batch_size:(i + 1) * batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss_of(xb, yb).backward()
                step()
            yield
    with torch.no_grad():  # the eager model (the compiled one shares its parameters)
        predictions = model(torch.from_numpy(np.ascontiguousarray(test[0]))).argmax(dim=1).numpy()
    return float(np.mean(predictions == test[1]))


# --- NumPy --------------------------------------------------------------------------------


def numpy_init(sizes: Sequence[int], seed: int) -> list[dict[str, np.ndarray]]:
    """U(−1/√fan_in, 1/√fan_in) weights and biases, float32 (PyTorch's nn.Linear default)."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        params.append({"w": rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32),
                       "b": rng.uniform(-bound, bound, (fan_out,)).astype(np.float32)})
    return params


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * z))).astype(z.dtype)  # stable for any z


def numpy_forward(params, x: np.ndarray, hidden: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(zs, activations)`` as :func:`jaxnet.mlp.forward`: zˡ = aˡ⁻¹Wˡ + bˡ, aˡ = h(zˡ)."""
    zs, activations = [], [x]
    for index, layer in enumerate(params):
        z = activations[-1] @ layer["w"] + layer["b"]
        zs.append(z)
        if index < len(params) - 1:
            activations.append(np.maximum(z, 0) if hidden == "relu" else _sigmoid(z))
    return zs, activations


def numpy_loss_and_grads(params, x: np.ndarray, labels: np.ndarray, *, hidden: str, loss: str):
    """The batch-mean loss and the hand-derived gradients (the equations of jaxnet.backprop)."""
    zs, activations = numpy_forward(params, x, hidden)
    logits, batch = zs[-1], x.shape[0]
    onehot = np.zeros_like(logits)
    onehot[np.arange(batch), labels] = 1.0
    if loss == "softmax_cross_entropy":
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        value = -np.sum(onehot * log_p) / batch
        delta = (np.exp(log_p) - onehot) / batch  # δᴴ = (ŷ − y) / B
    elif loss == "sigmoid_cross_entropy":
        # −[y ln σ(z) + (1−y) ln(1−σ(z))] = softplus(z) − y·z, summed over outputs
        value = np.sum(np.logaddexp(0, logits) - onehot * logits) / batch
        delta = (_sigmoid(logits) - onehot) / batch  # δᴴ = (σ(z) − y) / B
    else:
        raise ValueError(f"no NumPy gradients for loss {loss!r}")
    grads = [None] * len(params)
    for index in reversed(range(len(params))):
        grads[index] = {"w": activations[index].T @ delta, "b": delta.sum(axis=0)}  # ∂L/∂Wˡ = aˡ⁻¹ᵀδˡ
        if index > 0:
            a = activations[index]
            h_prime = (zs[index - 1] > 0).astype(a.dtype) if hidden == "relu" else a * (1 - a)
            delta = h_prime * (delta @ params[index]["w"].T)  # δˡ⁻¹ = h′(zˡ⁻¹) ⊙ (δˡ Wˡᵀ)
    return np.float32(value), grads


def numpy_accuracy(params, test: tuple[np.ndarray, np.ndarray], hidden: str) -> float:
    zs, _ = numpy_forward(params, test[0], hidden)
    return float(np.mean(zs[-1].argmax(axis=1) == test[1]))


def numpy_epochs(x: np.ndarray, y: np.ndarray, test: tuple[np.ndarray, np.ndarray], *, sizes: Sequence[int],
                 hidden: str, loss: str, learning_rate: float, momentum: float, batch_size: int, epochs: int,
                 seed: int) -> Iterator[None]:
    """Float32 NumPy training: a fresh permutation per epoch, batches gathered from it,
    the hand-derived gradients, in-place momentum updates."""
    params = numpy_init(sizes, seed)
    traces = [{k: np.zeros_like(v) for k, v in layer.items()} for layer in params]
    rng = np.random.default_rng(seed)
    lr, mu = np.float32(learning_rate), np.float32(momentum)
    steps = len(x) // batch_size
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(steps):
            batch = order[i * batch_size:(i + 1) * batch_size]
            _, grads = numpy_loss_and_grads(params, x[batch], y[batch], hidden=hidden, loss=loss)
            for layer, trace, grad in zip(params, traces, grads):
                for k in layer:
                    trace[k] *= mu
                    trace[k] += grad[k]
                    layer[k] -= lr * trace[k]
        yield
    return numpy_accuracy(params, test, hidden)
