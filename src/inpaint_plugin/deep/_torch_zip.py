"""A restricted reader of PyTorch zip archives (``torch.save`` since torch 1.6, and ``torch.jit.save``)
that takes the tensors out without running any code from the file.

Why: some official checkpoints cannot be read with ``torch.load(weights_only=True)``. The published
LaMa ``best.ckpt`` is a PyTorch Lightning checkpoint whose ``hyper_parameters`` hold an omegaconf
``DictConfig`` (and Lightning callback states); IOPaint's ``big-lama.pt`` is a TorchScript archive,
which ``torch.jit.load`` would compile and whose objects are TorchScript classes. Both keep their
tensors exactly as ``torch.save`` does, so they can be read here instead.

How (facts from the format as written by ``torch/serialization.py`` and ``torch.jit.save``, checked on
files written by torch 2.x): the zip holds ``<archive>/data.pkl`` (a pickle, protocol 2), one record
``<archive>/data/<key>`` per storage (raw little-endian bytes unless ``<archive>/byteorder`` says
``big``), and for TorchScript also ``code/`` and ``constants.pkl``, which are not read. In the pickle a
tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)``
whose ``storage`` is a persistent id ``('storage', torch.<Type>Storage, key, location, numel)``.

The pickle is read by :class:`RestrictedUnpickler`, whose ``find_class`` returns our own functions for
the few tensor-rebuilding globals, ``collections.OrderedDict``, ``set``, ``frozenset`` and
``_codecs.encode`` (how protocol 2 stores ``bytes``), TorchScript's typed lists and type tags
(``torch.jit._pickle``: the plain list or value), and for **every other global** (classes of
omegaconf, Lightning, TorchScript modules, or anything malicious such as ``os.system``) an inert
placeholder class: creating, "calling" or restoring its state only records the arguments, no code of
the named class or function is imported or run. The result is made of plain containers, tensors and
:class:`Opaque` records; :func:`tensors_by_name` flattens it into dotted names. Storage records are
checked against the sizes the pickle claims before anything is allocated; a corrupt or crafted file gives
a ``ValueError``. The legacy (pre-1.6, non-zip) ``torch.save`` format is not read here.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

__all__ = ["Opaque", "RestrictedUnpickler", "is_torch_zip", "read_torch_zip", "tensors_by_name"]

#: torch's typed storage classes (``torch.FloatStorage`` ...) -> dtype names
_STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "UntypedStorage": "uint8",
}


class Opaque:
    """Inert stand-in for any global the reader does not allow (a class or a function of the file).

    Its subclasses are created per global name (``_pickle_global``); instances record what the pickle
    gave them and do nothing else.

    Parameters
    ----------
    *args, **kwargs
        What the pickle called the global with (``REDUCE``, ``NEWOBJ``); recorded, not used.

    Attributes
    ----------
    args : tuple
        The positional arguments.
    kwargs : dict
        The keyword arguments.
    state : object
        What ``BUILD`` passed to ``__setstate__`` (None when nothing).
    items : list
        Values ``APPEND``-ed / ``APPENDS``-ed to it.
    entries : dict
        Values ``SETITEM``-ed / ``SETITEMS``-ed into it.
    """

    _pickle_global = ("", "")

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.kwargs = args, kwargs
        obj.state, obj.items, obj.entries = None, [], {}
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def append(self, value):
        self.items.append(value)

    def extend(self, values):
        self.items.extend(values)

    def __setitem__(self, key, value):
        self.entries[key] = value

    def __repr__(self):
        return f"<Opaque {'.'.join(self._pickle_global)}>"


class _StorageType:
    """Stand-in for ``torch.<Type>Storage`` in a persistent id: only its dtype is used."""

    def __init__(self, name: str):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]


class _Storage:
    def __init__(self, tensor):
        self.tensor = tensor  # 1-D, the storage's elements


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    """Our version of ``torch._utils._rebuild_tensor(_v2)``: a strided view of the storage's elements.

    ``requires_grad``, backward hooks and metadata (``rest``) are ignored.
    """
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"tensor rebuilt from {type(storage).__name__}, not a storage of the archive")
    ints = (storage_offset, *size, *stride)
    if not all(isinstance(v, int) and v >= 0 for v in ints) or len(size) != len(stride):
        raise pickle.UnpicklingError("tensor with an invalid offset, size or stride")
    try:
        return storage.tensor.as_strided(tuple(size), tuple(stride), storage_offset)
    except RuntimeError as e:
        raise pickle.UnpicklingError(f"tensor out of its storage's bounds: {e}") from None


def _rebuild_parameter(data, requires_grad=False, hooks=None, *state):
    """``torch._utils._rebuild_parameter(_with_state)``: the tensor itself (no Parameter)."""
    import torch

    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("parameter rebuilt from something that is not a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    """``torch._tensor._rebuild_from_type_v2``: only our own rebuild functions are called; the type is
    ignored (a plain tensor comes back)."""
    if func not in (_rebuild_tensor, _rebuild_parameter):
        raise pickle.UnpicklingError("tensor subclass rebuilt by a function that is not allowed")
    return func(*args)


def _encode(text, encoding="utf-8"):
    """``_codecs.encode``, as protocol 2 stores ``bytes`` objects: str -> bytes only."""
    if not isinstance(text, str) or not isinstance(encoding, str):
        raise pickle.UnpicklingError("_codecs.encode called with arguments that are not strings")
    return text.encode(encoding)


def _typed_list(data):
    """``torch.jit._pickle.build_{int,double,bool,tensor}list``: TorchScript's typed lists, a list here."""
    if not isinstance(data, list):
        raise pickle.UnpicklingError("typed TorchScript list built from something that is not a list")
    return data


def _restore_type_tag(value, type_str=None):
    """``torch.jit._pickle.restore_type_tag``: the value itself (the TorchScript type tag is dropped)."""
    return value


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,  # protocol 2 names builtins as Python 2 did
    ("__builtin__", "frozenset"): frozenset,
    ("_codecs", "encode"): _encode,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch.jit._pickle", "build_intlist"): _typed_list,
    ("torch.jit._pickle", "build_doublelist"): _typed_list,
    ("torch.jit._pickle", "build_boollist"): _typed_list,
    ("torch.jit._pickle", "build_tensorlist"): _typed_list,
    ("torch.jit._pickle", "restore_type_tag"): _restore_type_tag,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler of a torch archive's ``data.pkl`` that never imports or runs the file's globals.

    Parameters
    ----------
    file : binary file
        The pickle.
    load_storage : callable
        ``load_storage(key, dtype_name, numel) -> 1-D tensor``: the elements of ``data/<key>``.
    """

    def __init__(self, file, load_storage):
        super().__init__(file)
        self._load_storage = load_storage
        self._storages = {}
        self._opaque = {}

    def find_class(self, module, name):
        allowed = _ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
            return _StorageType(name)
        key = (module, name)
        if key not in self._opaque:  # a new inert class per global name, so repeated globals compare equal
            self._opaque[key] = type(f"Opaque[{module}.{name}]", (Opaque,), {"_pickle_global": key})
        return self._opaque[key]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, stype, key, _location, numel = pid
        key = str(key)
        if key not in self._storages:
            self._storages[key] = _Storage(self._load_storage(key, stype.dtype, int(numel)))
        return self._storages[key]


#: what reading a damaged or crafted archive can raise (zip, zlib, pickle, torch and memory errors)
_READ_ERRORS = (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, zlib.error, ValueError, TypeError,
                AttributeError, IndexError, KeyError, RuntimeError, OSError, NotImplementedError, OverflowError,
                MemoryError, RecursionError)


def is_torch_zip(path) -> bool:
    """True when ``path`` is a readable zip archive holding a torch ``data.pkl``.

    That is the format of ``torch.save`` (since torch 1.6) and ``torch.jit.save``.

    Parameters
    ----------
    path : str or os.PathLike
        Any file system path.

    Returns
    -------
    bool
        False also for folders, missing or unreadable files.
    """
    path = Path(os.fspath(path))
    try:
        if not path.is_file() or not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            return _data_pkl(zf) is not None
    except _READ_ERRORS:
        return False


def _data_pkl(zf: zipfile.ZipFile):
    names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
    return names[0] if len(names) == 1 else None


def read_torch_zip(path, *, argument: str = "weights"):
    """The object pickled in a torch zip archive, with tensors (CPU) but no code run.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``torch.save`` (zip format, torch >= 1.6) or ``torch.jit.save``.
    argument : str
        User-facing argument name, for error messages.

    Returns
    -------
    object
        Plain containers, tensors, and :class:`Opaque` records for every object of another class
        (TorchScript modules included: their attributes are in ``.state``).

    Raises
    ------
    ValueError
        If the file is not such an archive (e.g. a zip of checkpoints, which it names), or it is
        truncated, corrupt or crafted.
    """
    import torch

    path = Path(os.fspath(path))
    where = f"{argument}={str(path)!r}"
    if not path.is_file():
        raise ValueError(f"{where}: no such checkpoint file")
    try:
        zf = zipfile.ZipFile(path)
    except _READ_ERRORS as e:
        raise ValueError(f"{where}: not a PyTorch zip archive (truncated or corrupt?): {_first_line(e)}") from None
    with zf:
        try:
            names = set(zf.namelist())
            pkl = _data_pkl(zf)
        except _READ_ERRORS as e:
            raise ValueError(f"{where}: could not read the checkpoint (truncated or corrupt?): {_first_line(e)}") from None
        if pkl is None:
            inner = sorted(n for n in names if n.endswith((".ckpt", ".pt", ".pth", ".safetensors")))
            hint = (f"; it holds {', '.join(inner[:3])}{', ...' if len(inner) > 3 else ''}: extract the "
                    f"checkpoint and pass that file (or folder)") if inner else ""
            raise ValueError(f"{where}: a zip file without a torch data.pkl record: not a PyTorch checkpoint{hint}")
        root = pkl.split("/")[0]

        def load_storage(key, dtype_name, numel):
            dtype = getattr(torch, dtype_name)
            record = f"{root}/data/{key}"
            if record not in names:
                raise pickle.UnpicklingError(f"storage record {record!r} is missing")
            itemsize = torch.empty((), dtype=dtype).element_size()
            size = zf.getinfo(record).file_size
            if numel < 0 or size < numel * itemsize:  # checked before anything is allocated
                raise pickle.UnpicklingError(f"storage record {record!r} holds {size} bytes, "
                                             f"{numel} x {itemsize} expected")
            data = torch.empty(numel * itemsize, dtype=torch.uint8)
            with zf.open(record) as fh:  # read straight into the tensor's memory (one copy)
                view, done = memoryview(data.numpy()), 0
                while done < len(view):
                    n = fh.readinto(view[done:])
                    if not n:
                        raise pickle.UnpicklingError(f"storage record {record!r} ends early")
                    done += n
            if big_endian and itemsize > 1:
                data = data.view(-1, itemsize).flip(1).reshape(-1)
            return data.view(dtype)

        try:
            big_endian = f"{root}/byteorder" in names and zf.read(f"{root}/byteorder").strip() == b"big"
            return RestrictedUnpickler(io.BytesIO(zf.read(pkl)), load_storage).load()
        except _READ_ERRORS as e:
            raise ValueError(f"{where}: could not read the checkpoint (truncated or corrupt?): {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def tensors_by_name(obj, prefix: str = "") -> dict:
    """Every tensor reachable from ``obj`` by dotted name.

    Follows mapping keys, list and tuple indices, and the state, entries and items of :class:`Opaque`
    records (e.g. TorchScript module attributes). Cycles are followed once.

    Examples: a Lightning checkpoint gives ``state_dict.generator.model.1.ffc.convl2l.weight``; a
    TorchScript trace of a wrapper ``model.generator.model.1.ffc.convl2l.weight``.

    Parameters
    ----------
    obj : object
        What the reader unpickled (dicts, lists, tensors, :class:`Opaque` records).
    prefix : str, optional
        Prepended to every name (default ``""``).

    Returns
    -------
    dict of str to torch.Tensor
        ``{dotted name: tensor}``; each tensor a fresh detached view without ``requires_grad``; the
        first name found wins for a tensor reached twice.
    """
    import torch

    out: dict = {}
    seen: set = set()

    def walk(o, name):
        if isinstance(o, torch.Tensor):
            # a fresh tensor object on the same memory: whatever a crafted pickle set on the one it
            # built (attributes, hooks, requires_grad) stays behind
            out.setdefault(name, o.detach().requires_grad_(False))
            return
        if id(o) in seen:
            return
        if isinstance(o, dict):
            seen.add(id(o))
            for k, v in o.items():
                walk(v, f"{name}.{k}" if name else str(k))
        elif isinstance(o, (list, tuple)):
            seen.add(id(o))
            for i, v in enumerate(o):
                walk(v, f"{name}.{i}" if name else str(i))
        elif isinstance(o, Opaque):
            seen.add(id(o))
            for part in (o.state, o.entries, o.items):
                walk(part, name)

    walk(obj, prefix)
    return out
