"""MNIST, Fashion-MNIST and KMNIST: fetched and verified by tfds, decoded by NumPy.

tensorflow-datasets does what it is good at without TensorFlow: it knows each
dataset's official URLs and sha256 sums, its ``DownloadManager`` downloads them
(or takes them from the manual directory) and verifies them. Preparing the
dataset (``tfds.load``) needs TensorFlow, so the verified IDX files are decoded
here with NumPy and the arrays cached as ``<data_dir>/jaxnet/<name>.npz``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from jaxnet.data.dataset import Dataset
from jaxnet.data.errors import ChecksumError, CorruptDataError, MissingDataError
from jaxnet.data.idx import read_idx

DATA_DIR_ENV = "JAXNET_DATA_DIR"
MANUAL_DIR_ENV = "JAXNET_MANUAL_DIR"
DEFAULT_DATA_DIR = "~/tensorflow_datasets"  # tfds's own default
NETWORK_TIMEOUT_S = 3.0  # an offline machine fails after at most this long
_CACHE_FORMAT = 1

# The four files, in the order train images, train labels, test images, test labels.
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
}


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: the argument, else ``$JAXNET_DATA_DIR``, else
    ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV) or os.environ.get("TFDS_DATA_DIR") or DEFAULT_DATA_DIR
    return Path(chosen).expanduser().absolute()


def resolve_manual_dir(
    manual_dir: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None
) -> Path:
    """The manual directory: the argument, else ``$JAXNET_MANUAL_DIR``, else
    ``<data_dir>/downloads/manual`` (tfds's convention)."""
    chosen = manual_dir or os.environ.get(MANUAL_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().absolute()
    return resolve_data_dir(data_dir) / "downloads" / "manual"


def registered_files(name: str) -> dict[str, tuple[str, object]]:
    """The official files of ``name`` as tfds registers them.

    Returns:
      ``{file name: (url, tfds UrlInfo with size and sha256)}`` for the four files.
    """
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    from tensorflow_datasets.core.download import checksums  # pylint: disable=g-import-not-at-top

    base_url = tfds.builder_cls(name).URL
    found = {}
    for url, info in checksums.get_all_url_infos().items():
        filename = url.rsplit("/", 1)[-1]
        if url.startswith(base_url) and filename in FILES:
            found[filename] = (url, info)
    if set(found) != set(FILES):
        raise RuntimeError(
            f"tfds does not register checksums for all four {name} files; "
            f"found {sorted(found)} under {base_url}"
        )
    return {f: found[f] for f in FILES}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _in_download_cache(download_dir: Path, url: str, info) -> bool:
    """Whether tfds' download manager already holds a verified copy of ``url``."""
    try:
        from tensorflow_datasets.core.download import resource  # pylint: disable=g-import-not-at-top

        path = download_dir / resource.get_dl_fname(url, info.checksum)
        return bool(resource.is_locally_cached(path))
    except Exception:  # pylint: disable=broad-except  (private tfds layout changed)
        return False


def _reachable(urls: list[str], timeout: float) -> bool:
    """Whether a TCP connection to every host (or its proxy) opens within ``timeout``.

    Runs in a daemon thread so that even a stalled DNS lookup cannot hang us.
    """
    proxies = urllib.request.getproxies()
    addresses = set()
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        proxy = proxies.get(parts.scheme) or proxies.get("all")
        if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
            parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        default_port = 443 if parts.scheme == "https" else 80
        addresses.add((parts.hostname, parts.port or default_port))

    ok: dict = {}

    def probe():
        for address in addresses:
            try:
                socket.create_connection(address, timeout=timeout).close()
                ok[address] = True
            except Exception:  # any failure to connect means: offline
                ok[address] = False
                return

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout * len(addresses) + 0.5)
    return len(ok) == len(addresses) and all(ok.values())


def _missing_message(name: str, files: dict, manual_dir: Path, missing: list[str], why: str) -> str:
    lines = [
        f"{name}: {len(missing)} of the {len(files)} dataset files are not on this "
        f"machine, and they cannot be downloaded ({why}).",
        f"Put these {len(files)} files (keep the .gz names) in {manual_dir}/ :",
    ]
    for filename, (url, _) in files.items():
        state = "missing" if filename in missing else "present"
        lines.append(f"  {filename:<28} {state:<8} from {url}")
    lines.append(
        f"or point to a folder that holds them with --manual-dir DIR, the "
        f"{MANUAL_DIR_ENV} environment variable, or load({name!r}, manual_dir=DIR)."
    )
    return "\n".join(lines)


@contextlib.contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    """tfds' progress bars only while something is really downloaded."""
    from tensorflow_datasets.core.utils import tqdm_utils  # pylint: disable=g-import-not-at-top

    before = getattr(tqdm_utils, "_active", True)
    tqdm_utils.display_progress_bar(enabled)
    try:
        yield
    finally:
        tqdm_utils.display_progress_bar(before)


def fetch_files(name: str, *, data_dir: Path, manual_dir: Path) -> dict[str, Path]:
    """Returns verified local copies of the four files of ``name``.

    Files in ``manual_dir`` are used as they are; the others are downloaded by
    tfds into ``<data_dir>/downloads`` (or taken from there if already
    downloaded). Every file is checked against tfds' registered sha256.

    Raises:
      MissingDataError: files missing and the network unreachable (fails in seconds).
      ChecksumError: a file's sha256 differs from the registered one.
    """
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    from tensorflow_datasets.core.download.download_manager import (  # pylint: disable=g-import-not-at-top
        NonMatchingChecksumError,
    )

    files = registered_files(name)
    download_dir = data_dir / "downloads"
    missing = [
        f
        for f, (url, info) in files.items()
        if not (manual_dir / f).is_file() and not _in_download_cache(download_dir, url, info)
    ]
    if not missing and all((manual_dir / f).is_file() for f in files):
        # every file is in the manual folder: verify it here, so that nothing is written
        # (a read-only data dir works; tfds' manager would create its download folder)
        return {filename: _verified(name, manual_dir / filename, url, info) for filename, (url, info) in files.items()}
    if missing and not _reachable([files[f][0] for f in missing], NETWORK_TIMEOUT_S):
        host = urllib.parse.urlsplit(files[missing[0]][0]).hostname
        raise MissingDataError(
            _missing_message(name, files, manual_dir, missing, f"{host} is unreachable: no network?")
        )

    manager = tfds.download.DownloadManager(
        download_dir=download_dir,
        manual_dir=manual_dir,
        dataset_name=name,
        url_infos={url: info for url, info in files.values()},
        register_checksums=False,
    )
    paths = {}
    with _progress_bars(enabled=bool(missing)):
        for filename, (url, info) in files.items():
            try:
                paths[filename] = Path(os.fspath(manager.download(url)))
            except NonMatchingChecksumError as e:
                local = manual_dir / filename
                if local.is_file():
                    where, got = local, _sha256(local)
                else:
                    where, got = f"the file downloaded from {url}", re.findall(r"[0-9a-f]{64}", str(e))[-1:]
                    got = got[0] if got else "unknown"
                raise ChecksumError(_mismatch(name, filename, where, got, url, info.checksum)) from None
            except (OSError, ConnectionError) as e:
                raise MissingDataError(
                    _missing_message(name, files, manual_dir, missing, f"download of {url} failed: {e}")
                ) from None
    return paths


def _verified(name: str, path: Path, url: str, info) -> Path:
    """``path`` if its sha256 is the one tfds registers for ``url``; else ChecksumError."""
    got = _sha256(path)
    if got != info.checksum:
        raise ChecksumError(_mismatch(name, path.name, path, got, url, info.checksum))
    return path


def _mismatch(name: str, filename: str, where: object, got: str, url: str, expected: str) -> str:
    """The checksum error's text. A file that is another dataset's official one (Fashion-MNIST's
    files in the MNIST folder, say) is named as such, with the folder to fix, not the file."""
    head = (f"{filename}: checksum mismatch, so the file was not used.\n"
            f"  file:     {where}\n  expected: sha256 {expected} (registered by tfds)\n  got:      sha256 {got}\n")
    other = next((o for o in CLASS_NAMES if o != name and registered_files(o)[filename][1].checksum == got), None)
    if other is not None:
        return (head + f"It is the official {other} file, not the {name} one: point --manual-dir (or "
                f"${MANUAL_DIR_ENV}) at a folder holding the {name} files, or load {other!r} instead.")
    return head + f"Replace it with the official file from {url}."


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != _CACHE_FORMAT:
                return None
            return {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (FileNotFoundError, NotADirectoryError):
        return None
    except Exception as e:  # pylint: disable=broad-except  (corrupt cache: rebuild it)
        warnings.warn(f"ignoring unreadable cache {path} ({e}); rebuilding it")
        return None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez_compressed(f, format=np.int32(_CACHE_FORMAT), **arrays)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not write the cache {path} ({e}); the next load will decode again")
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # the folder itself could not be made: there is no temporary file
            pass


def decode_files(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    """Decodes the four IDX files into uint8 images and int32 labels, checking shapes."""
    arrays = {}
    for split, (images, labels) in {"train": FILES[:2], "test": FILES[2:]}.items():
        x, y = read_idx(paths[images]), read_idx(paths[labels])
        if x.ndim != 3 or x.dtype != np.uint8 or y.ndim != 1 or len(x) != len(y):
            raise CorruptDataError(
                f"{images} / {labels}: expected (N, H, W) uint8 images and N "
                f"labels, got {x.shape} {x.dtype} and {y.shape}"
            )
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y.astype(np.int32)
    return arrays


def load_idx_dataset(
    name: str, *, data_dir: str | os.PathLike | None = None, manual_dir: str | os.PathLike | None = None
) -> Dataset:
    """Loads ``mnist``, ``fashion_mnist`` or ``kmnist`` (see :func:`jaxnet.data.load`)."""
    data_path = resolve_data_dir(data_dir)
    cache = data_path / "jaxnet" / f"{name}.npz"
    arrays = _read_cache(cache)
    if arrays is None:
        paths = fetch_files(name, data_dir=data_path, manual_dir=resolve_manual_dir(manual_dir, data_path))
        arrays = decode_files(paths)
        _write_cache(cache, arrays)
    return Dataset(name=name, class_names=CLASS_NAMES[name], test_split="test", **arrays)
