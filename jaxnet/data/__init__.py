"""Datasets as plain NumPy arrays, preprocessing, and derived datasets.

>>> from jaxnet import data
>>> ds = data.load("mnist", manual_dir="../shared/data/mnist")
>>> x = data.flatten(data.normalize(data.scale(ds.x_train), 0.5, 0.5))  # [-1, 1]
>>> x2, y2 = data.binary_pair(ds.x_train, ds.y_train, positive=2, negative=3)
"""

from jaxnet.data.dataset import Dataset
from jaxnet.data.derived import Split
from jaxnet.data.derived import binary_pair
from jaxnet.data.derived import first_n
from jaxnet.data.derived import random_labels
from jaxnet.data.derived import stratified_subset
from jaxnet.data.derived import train_val_split
from jaxnet.data.errors import ChecksumError
from jaxnet.data.errors import CorruptDataError
from jaxnet.data.errors import DataError
from jaxnet.data.errors import MissingDataError
from jaxnet.data.idx import parse_idx
from jaxnet.data.idx import read_idx
from jaxnet.data.loading import DATASETS
from jaxnet.data.loading import load
from jaxnet.data.mnist import resolve_data_dir
from jaxnet.data.mnist import resolve_manual_dir
from jaxnet.data.transforms import MNIST_MEAN
from jaxnet.data.transforms import MNIST_STD
from jaxnet.data.transforms import flatten
from jaxnet.data.transforms import normalize
from jaxnet.data.transforms import one_hot
from jaxnet.data.transforms import scale

__all__ = [
    "ChecksumError",
    "CorruptDataError",
    "DATASETS",
    "DataError",
    "Dataset",
    "MNIST_MEAN",
    "MNIST_STD",
    "MissingDataError",
    "Split",
    "binary_pair",
    "first_n",
    "flatten",
    "load",
    "normalize",
    "one_hot",
    "parse_idx",
    "random_labels",
    "read_idx",
    "resolve_data_dir",
    "resolve_manual_dir",
    "scale",
    "stratified_subset",
    "train_val_split",
]
