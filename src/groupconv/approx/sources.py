"""Where model inputs come from: a tensor, an iterable of batches, a DataLoader, shard files.

:func:`iter_batches` turns any of these into a stream of checked batches, each a tuple of
the model's positional inputs, so that the statistics of :mod:`.stats` can be gathered
batch by batch with memory independent of the number of samples:

* a ``torch.Tensor`` or numpy array ``(S, ...)``: one input, cut into chunks of
  ``batch_size`` samples;
* a ``tuple`` of tensors: the model's positional inputs (all with the same first
  dimension), cut the same way;
* any other iterable (a ``list`` of batches, a generator, a
  :class:`torch.utils.data.DataLoader`): each item is one batch, a tensor or a
  tuple/list of tensors.

Labelled data: a DataLoader over ``(image, label)`` pairs yields ``[x, y]`` batches, and
by default every element of a batch is passed to the model. Say which part is the input
with ``input_index``: an int (``input_index=0``: the first element is the one input), a
sequence of ints (several positional inputs), or a callable ``batch -> tensor or tuple``
(e.g. ``lambda b: b["pixels"]`` for dict batches).

Every batch is checked against the first one: same number of inputs, same shape after
the batch dimension and same dtype; a stream that yields nothing is an error. Each
failure is one :class:`~groupconv.errors.GroupConvError` line naming the batch (or the
shard file).

:func:`resolve_data` reads the CLI's ``--data``: a ``.pt`` tensor, a ``.npy`` array, a
directory of ``.pt`` / ``.npy`` shards (one batch per file, in sorted order) or
``FILE.py:FACTORY`` / ``package.module:factory`` returning a DataLoader (or any iterable
of batches, or a tensor). torch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..errors import GroupConvError, UserModelError
from ..networks.resolve import load_user_module

__all__ = ["iter_batches", "resolve_data", "ShardDirectory", "describe_batch"]


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise GroupConvError("torch is needed for real networks: pip install -e '.[torch]'") from None
    return torch


def describe_batch(inputs: tuple) -> str:
    """``"(32, 3, 224, 224) float32"`` (one input) or the same for each input, joined by ``+``."""
    return " + ".join(f"{tuple(x.shape)} {str(x.dtype).replace('torch.', '')}" for x in inputs)


def _as_tensor(value, where: str):
    torch = _torch()
    if torch.is_tensor(value):
        tensor = value
    else:
        import numpy as np

        if isinstance(value, np.ndarray):
            if not np.issubdtype(value.dtype, np.number):
                raise GroupConvError(f"{where}: a numeric array expected, got dtype {value.dtype}")
            tensor = torch.from_numpy(value)
        else:
            raise GroupConvError(f"{where}: a tensor expected, got {type(value).__name__}")
    if tensor.is_complex():
        raise GroupConvError(f"{where}: complex {tuple(tensor.shape)}; model inputs must be real tensors")
    if tensor.ndim < 1:
        raise GroupConvError(f"{where}: a batch (samples, ...) expected, got a 0-d tensor")
    return tensor.detach()


def _select(batch, input_index, where: str) -> tuple:
    if callable(input_index):
        try:
            batch = input_index(batch)
        except Exception as exc:  # a user's selector can raise anything
            text = str(exc).strip().splitlines()
            raise GroupConvError(f"{where}: input_index raised {type(exc).__name__}: {text[0] if text else ''}") from None
    elif input_index is not None:
        if not isinstance(batch, (tuple, list)):
            raise GroupConvError(f"{where}: input_index={input_index!r} needs tuple/list batches, got {type(batch).__name__}")
        indices = [input_index] if isinstance(input_index, int) else list(input_index)
        try:
            batch = tuple(batch[i] for i in indices)
        except (IndexError, TypeError):
            raise GroupConvError(f"{where}: input_index={input_index!r} does not index a batch of {len(batch)} parts") from None
    parts = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
    if not parts:
        raise GroupConvError(f"{where}: an empty batch")
    return tuple(_as_tensor(p, where) for p in parts)


def _chunks(inputs: tuple, batch_size: int) -> Iterator[tuple]:
    total = int(inputs[0].shape[0])
    for x in inputs[1:]:
        if int(x.shape[0]) != total:
            raise GroupConvError(
                f"data: the model inputs have {total} and {int(x.shape[0])} samples; each input needs one row per sample"
            )
    for start in range(0, total, batch_size):
        yield tuple(x[start : start + batch_size] for x in inputs)


def iter_batches(data, *, input_index: int | Sequence[int] | Callable | None = None,
                 batch_size: int = 256) -> Iterator[tuple]:
    """Checked batches of model inputs, each a tuple of tensors (see the module docstring).

    Parameters
    ----------
    data : tensor, array, tuple of tensors, iterable of batches, or DataLoader
    input_index : int, sequence of int or callable, optional
        Which part of each batch is the model input (labelled data sets).
    batch_size : int
        Samples per chunk when ``data`` is one tensor (or a tuple of them).

    Yields
    ------
    tuple of torch.Tensor
        The positional inputs of one batch (``describe_batch`` prints one).
    """
    torch = _torch()
    import numpy as np

    if isinstance(data, (str, Path)):
        data = resolve_data(str(data))
    if torch.is_tensor(data) or isinstance(data, np.ndarray):
        source: object = _chunks(_select(data, None, "data"), batch_size)
        labelled = False
    elif isinstance(data, tuple) and data and all(torch.is_tensor(d) or isinstance(d, np.ndarray) for d in data):
        source = _chunks(_select(data, None, "data"), batch_size)
        labelled = False
    else:
        try:
            source = iter(data)
        except TypeError:
            raise GroupConvError(
                f"data must be a tensor, an array, a tuple of tensors, an iterable of batches or a DataLoader, "
                f"got {type(data).__name__}"
            ) from None
        labelled = True
    first = None
    count = 0
    names = getattr(data, "names", None)
    for i, batch in enumerate(source):
        where = f"data batch {i}" if names is None else f"data shard {names[i]}"
        inputs = _select(batch, input_index if labelled else None, where) if labelled else batch
        if first is None:
            first = inputs
        else:
            if len(inputs) != len(first):
                raise GroupConvError(f"{where} has {len(inputs)} inputs, the first batch {len(first)}")
            for x, f in zip(inputs, first):
                if tuple(x.shape[1:]) != tuple(f.shape[1:]):
                    raise GroupConvError(
                        f"{where} has shape {describe_batch(inputs)}, the first batch {describe_batch(first)}: "
                        f"every batch needs the same sample shape"
                    )
                if x.dtype != f.dtype:
                    raise GroupConvError(
                        f"{where} has dtype {str(x.dtype).replace('torch.', '')}, the first batch "
                        f"{str(f.dtype).replace('torch.', '')}: every batch needs the same dtype"
                    )
        if int(inputs[0].shape[0]) == 0:
            continue
        count += 1
        yield inputs
    if count == 0:
        raise GroupConvError("data yielded no samples (an empty tensor, loader or shard directory)")


class ShardDirectory:
    """The ``.pt`` / ``.npy`` files of a directory, read one at a time (one batch per file).

    A ``.pt`` file holds a tensor or a tuple/list of tensors (``torch.load`` with
    ``weights_only=True``); a ``.npy`` file a numeric array. Iterating twice reads the
    files twice; only one shard is in memory at a time.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.files = sorted(p for p in self.path.iterdir() if p.suffix in (".pt", ".npy") and p.is_file())
        if not self.files:
            raise GroupConvError(f"data directory {str(self.path)!r} has no .pt or .npy shard")
        self.names = [p.name for p in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self):
        for p in self.files:
            yield _load_file(p)


def _load_file(path: Path):
    torch = _torch()
    import numpy as np

    text = str(path)
    if not path.exists():
        raise GroupConvError(f"data file {text!r} does not exist")
    if path.suffix == ".npy":
        try:
            array = np.load(text, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise GroupConvError(f"data {text!r}: not a readable .npy array ({exc})".split("\n")[0]) from None
        if not np.issubdtype(array.dtype, np.number):
            raise GroupConvError(f"data {text!r}: a numeric array expected, got dtype {array.dtype}")
        return torch.from_numpy(array)
    try:
        obj = torch.load(text, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on a corrupt file
        raise GroupConvError(f"data {text!r}: not a readable torch file ({type(exc).__name__})") from None
    if torch.is_tensor(obj):
        return obj
    if isinstance(obj, (tuple, list)) and obj and all(torch.is_tensor(t) for t in obj):
        return tuple(obj)
    raise GroupConvError(f"data {text!r}: a tensor or a tuple of tensors expected, got {type(obj).__name__}")


def _factory(spec: str):
    where, _, attr = spec.rpartition(":")
    # a private module name: the data file may be the model's file, whose module (and the
    # classes of the model already built from it) must stay the one in sys.modules
    name = f"_groupconv_user_data_{abs(hash(str(Path(where).resolve())))}"
    try:
        module = load_user_module(where, module_name=name)
    except GroupConvError as exc:  # the loader's line, prefixed with the spec it came from
        raise type(exc)(f"data spec {spec!r}: {exc}") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise GroupConvError(f"data spec {spec!r}: {where} has no callable {attr!r}")
    try:
        return factory()
    except GroupConvError:
        raise
    except SystemExit as exc:  # a factory that calls sys.exit must not end the CLI silently
        raise UserModelError(f"data spec {spec!r}: the factory called sys.exit({exc.code!r})") from None
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise UserModelError(f"data spec {spec!r}: the factory raised {type(exc).__name__}: {text[0] if text else ''}") from None


def resolve_data(spec: str):
    """The data that the CLI's ``--data SPEC`` names.

    ``SPEC`` is a ``.pt`` tensor, a ``.npy`` array, a directory of ``.pt`` / ``.npy``
    shards (a :class:`ShardDirectory`), or ``FILE.py:FACTORY`` /
    ``package.module:factory`` whose factory (called without arguments) returns a
    DataLoader, an iterable of batches or a tensor.
    """
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        return ShardDirectory(path)
    if path.suffix in (".pt", ".npy"):
        return _load_file(path)
    if ":" in text and not path.exists():
        return _factory(text)
    raise GroupConvError(
        f"data {text!r}: must be a .pt tensor, a .npy array, a directory of .pt/.npy shards or FILE.py:FACTORY"
    )
