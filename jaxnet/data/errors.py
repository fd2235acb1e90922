"""Errors raised by :mod:`jaxnet.data`; each message names the problem and the fix."""

from __future__ import annotations


class DataError(Exception):
    """Base class of every error raised by :mod:`jaxnet.data`."""


class MissingDataError(DataError, FileNotFoundError):
    """The dataset files are not on this machine and could not be downloaded."""


class ChecksumError(DataError, ValueError):
    """A dataset file's sha256 differs from the checksum that tfds registers."""


class CorruptDataError(DataError, ValueError):
    """A file is truncated, unreadable, or holds data of the wrong shape."""
