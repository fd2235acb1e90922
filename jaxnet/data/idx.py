"""Read IDX files (the MNIST file format) with NumPy; no TensorFlow involved.

An IDX file is: two zero bytes, a type byte, a byte giving the number of
dimensions ``d``, then ``d`` big-endian uint32 sizes, then the data, big-endian,
in C order. The files may be gzip-compressed (the official ``*.gz`` files).
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from jaxnet.data.errors import CorruptDataError

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Decodes the bytes of an (uncompressed) IDX file.

    Args:
      data: the whole file's content.
      source: the file name, used in error messages.

    Returns:
      The array, with the shape given in the header and native byte order.

    Raises:
      CorruptDataError: bad magic number, or fewer/more bytes than the header says.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise CorruptDataError(
            f"{source} is not an IDX file (bad magic number {data[:4].hex() or 'empty'}); "
            "delete it and fetch the file again."
        )
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptDataError(f"{source} is truncated: the IDX header itself is incomplete.")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got < expected:
        raise CorruptDataError(
            f"{source} is truncated: its header promises shape {shape} ({expected} bytes of data) "
            f"but it holds only {got}; delete it and fetch the file again."
        )
    if got > expected:
        raise CorruptDataError(
            f"{source} has {got - expected} bytes after the {shape} array its header describes; "
            "it is not a valid IDX file."
        )
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file, gzip-compressed (detected by content) or not.

    Args:
      path: the file.

    Returns:
      The decoded array (see :func:`parse_idx`).

    Raises:
      CorruptDataError: the file is truncated or not IDX.
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except EOFError:
            raise CorruptDataError(
                f"{name} is truncated: the gzip stream ends early; delete it and fetch it again."
            ) from None
        except (OSError, zlib.error) as e:
            raise CorruptDataError(f"{name} is not a valid gzip file ({e}).") from None
    return parse_idx(raw, source=name)
