"""Read TensorFlow checkpoints (the "V2" tensor-bundle format of ``tf.train.Saver``) without TensorFlow.

The official weights of DeepFill v1/v2 and of the TensorFlow GMCNN are folders written by TF 1.x's
``Saver``: ``checkpoint`` (a text file naming the latest prefix), ``<prefix>.index``,
``<prefix>.data-00000-of-00001`` and ``<prefix>.meta`` (the graph; not needed). This module reads the
variables from ``.index`` and ``.data-*`` with numpy alone: no TensorFlow and no protobuf package at
run time, and nothing is ever executed or unpickled.

Format facts, as read in TensorFlow's source (``tensorflow/tensorflow``; the code below is our own):

- ``<prefix>.index`` is a LevelDB-style sorted table (``core/lib/io/table_format.txt``: "similar to the
  table format for the LevelDB ... except that our tables do not support filter meta blocks"):

  - the last 48 bytes are the footer (``core/lib/io/format.h``: ``kEncodedLength = 2 *
    BlockHandle::kMaxEncodedLength + 8`` with ``kMaxEncodedLength = 20``): the metaindex block handle
    and the index block handle (each two varint64: offset, size), zero padding to 40 bytes, then the
    magic number ``0xdb4775248b80fb57`` as two little-endian fixed32, low word first
    (``Footer::EncodeTo`` in ``core/lib/io/format.cc``);
  - each block is followed by a 5-byte trailer (``kBlockTrailerSize``): a type byte (0 = none,
    1 = snappy) and the *masked* CRC32C of the block contents plus the type byte (``ReadBlock``);
  - a block is a run of entries ``varint32 shared, varint32 non_shared, varint32 value_length,
    key_delta[non_shared], value[value_length]`` whose key is the first ``shared`` bytes of the
    previous key plus ``key_delta`` (prefix compression), then ``num_restarts`` fixed32 restart offsets
    and ``num_restarts`` itself as the last fixed32 (``core/lib/io/block.cc``, ``DecodeEntry`` and
    ``Block::Iter::ParseNextKey``); at a restart point ``shared`` is 0;
  - the index block maps the last key of each data block to that block's handle.

- The bundle (``core/util/tensor_bundle/tensor_bundle.cc``) stores under the empty key ``""``
  (``kHeaderEntryKey``, always the first entry) a ``BundleHeaderProto`` {1: num_shards, 2: endianness
  (0 little, 1 big), 3: version (VersionDef {1: producer, 2: min_consumer, 3: bad_consumers})} and
  under each variable name a ``BundleEntryProto`` {1: dtype, 2: shape (TensorShapeProto {2: dim
  {1: size, 2: name}, 3: unknown_rank}), 3: shard_id, 4: offset, 5: size, 6: crc32c (fixed32),
  7: slices} (``core/protobuf/tensor_bundle.proto``, ``core/framework/tensor_shape.proto``). The
  reader's version is 1 (``kTensorBundleVersion``).
- The table is written uncompressed: ``BundleWriter::Finish`` sets ``options.compression =
  table::kNoCompression`` ("the default use of Snappy compression may not be supported on all
  platforms") and ``TableBuilderOptions()`` does the same for merged bundles. A snappy block is
  therefore refused here with a clear message rather than decoded.
- A tensor's bytes are ``size`` bytes at ``offset`` of ``<prefix>.data-%05d-of-%05d`` (shard,
  num_shards), in the writer's byte order, row-major (C order), and ``crc32c`` is the masked CRC32C
  of those bytes (``BundleWriter::Add``: ``entry->set_crc32c(crc32c::Mask(crc32c))``). CRC32C masking
  is ``((crc >> 15) | (crc << 17)) + 0xa282ead8`` (``core/lib/hash/crc32c.h``, as in LevelDB).
- ``DataType`` numbers from ``core/framework/types.proto`` (1 float32, 2 float64, 3 int32, 4 uint8,
  5 int16, 6 int8, 7 string, 9 int64, 10 bool, 14 bfloat16, 17 uint16, 19 float16, 22 uint32, 23 uint64).
- The ``checkpoint`` file is a text-format ``CheckpointState``: ``model_checkpoint_path: "<prefix>"``
  (relative to the folder or absolute) then ``all_model_checkpoint_paths: ...`` lines.

Tensor slices (partitioned variables), string and variant tensors are not needed by any network here
and are refused if asked for. :func:`write_checkpoint` writes the same format (one uncompressed data
block) for networks whose official format is a TF folder (``gmcnn_tf``); TensorFlow reads it back.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NETWORKS", "TFVariable", "crc32c", "find_prefix", "generator_state_dict", "identify", "is_generator_variable",
           "is_tf_checkpoint", "list_variables", "read_variables", "write_checkpoint"]

_MAGIC = 0xDB4775248B80FB57
_FOOTER_LEN = 48
_TRAILER_LEN = 5
_BUNDLE_VERSION = 1
_MASK_DELTA = 0xA282EAD8
_DATA_RE = re.compile(r"^(?P<prefix>.+)\.data-\d{5}-of-\d{5}$")

#: DataType enum value -> (name, numpy little-endian dtype or None when it has no plain byte layout)
_DTYPES = {
    1: ("float32", "<f4"), 2: ("float64", "<f8"), 3: ("int32", "<i4"), 4: ("uint8", "|u1"), 5: ("int16", "<i2"),
    6: ("int8", "|i1"), 7: ("string", None), 8: ("complex64", "<c8"), 9: ("int64", "<i8"), 10: ("bool", "|b1"),
    14: ("bfloat16", "<u2"), 17: ("uint16", "<u2"), 18: ("complex128", "<c16"), 19: ("float16", "<f2"),
    20: ("resource", None), 21: ("variant", None), 22: ("uint32", "<u4"), 23: ("uint64", "<u8"),
}


# ------------------------------------------------------------------------------------------------ CRC32C
def _crc_table() -> np.ndarray:
    """Byte table of the reflected Castagnoli polynomial 0x82F63B78."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> np.uint32(1)) ^ np.uint32(0x82F63B78), table >> np.uint32(1))
    return table.astype(np.uint32)


_TABLE = _crc_table()
_TABLE_LIST = [int(v) for v in _TABLE]
_CHUNK = 4096
_ZERO_CHUNK_TABLES: list | None = None


def _zero_chunk_tables() -> list:
    """The linear map "feed ``_CHUNK`` zero bytes to the CRC register" as four 256-entry tables
    (one per byte of the register), built by pushing the 32 basis registers through the zeros."""
    global _ZERO_CHUNK_TABLES
    if _ZERO_CHUNK_TABLES is None:
        basis = np.uint32(1) << np.arange(32, dtype=np.uint32)
        r = basis.copy()
        for _ in range(_CHUNK):
            r = (r >> np.uint32(8)) ^ _TABLE[r & np.uint32(0xFF)]
        tables = []
        values = np.arange(256, dtype=np.uint32)
        for k in range(4):
            t = np.zeros(256, dtype=np.uint32)
            for bit in range(8):
                t ^= np.where((values >> np.uint32(bit)) & np.uint32(1), r[8 * k + bit], np.uint32(0))
            tables.append([int(v) for v in t])
        _ZERO_CHUNK_TABLES = tables
    return _ZERO_CHUNK_TABLES


_SLICE_TABLES: tuple | None = None


def _slice_tables() -> tuple:
    """``T[0]`` is the byte table; ``T[k][i] = (T[k-1][i] >> 8) ^ T[0][T[k-1][i] & 0xFF]`` (the register
    after ``i`` and then ``k`` zero bytes), so one 32-bit word is consumed with four look-ups."""
    global _SLICE_TABLES
    if _SLICE_TABLES is None:
        tables = [_TABLE]
        for _ in range(3):
            prev = tables[-1]
            tables.append((prev >> np.uint32(8)) ^ _TABLE[prev & np.uint32(0xFF)])
        _SLICE_TABLES = tuple(tables)
    return _SLICE_TABLES


def _crc_register(data: bytes, register: int) -> int:
    r = register
    table = _TABLE_LIST
    for b in data:
        r = (r >> 8) ^ table[(r ^ b) & 0xFF]
    return r


def crc32c(data) -> int:
    """CRC32C (Castagnoli) of ``data``, as ``crc32c::Value`` computes it.

    Long inputs are cut into chunks whose CRC registers are computed side by side with numpy (four bytes
    a step, "slicing-by-4") and
    combined with the "feed zero bytes" linear map, so 100 MB take well under a second. The initial
    register (all ones) is folded into the first four bytes, which is equivalent for a reflected CRC,
    and zero bytes are prepended to fill the first chunk, which leaves a zero register unchanged.

    Parameters
    ----------
    data : bytes-like
        Any object supporting the buffer protocol (bytes, bytearray, memoryview, numpy array).

    Returns
    -------
    int
        The unmasked CRC32C, 0 to 2**32 - 1.
    """
    buf = memoryview(data).cast("B")
    n = len(buf)
    if n < 1 << 16:
        return _crc_register(bytes(buf), 0xFFFFFFFF) ^ 0xFFFFFFFF
    k = -(-n // _CHUNK)
    padded = np.zeros(k * _CHUNK, dtype=np.uint8)
    padded[k * _CHUNK - n:] = np.frombuffer(buf, dtype=np.uint8)
    padded[k * _CHUNK - n : k * _CHUNK - n + 4] ^= np.uint8(0xFF)  # the initial register
    # slicing-by-4: four bytes (one little-endian word) per step, with the tables of 1..4 byte shifts
    words = np.ascontiguousarray(padded.reshape(k, _CHUNK).view("<u4").T.astype(np.uint32))
    t0, t1, t2, t3 = _slice_tables()
    r = np.zeros(k, dtype=np.uint32)
    mask = np.uint32(0xFF)
    s8, s16, s24 = np.uint32(8), np.uint32(16), np.uint32(24)
    for j in range(_CHUNK // 4):
        x = r ^ words[j]
        r = t3[x & mask] ^ t2[(x >> s8) & mask] ^ t1[(x >> s16) & mask] ^ t0[x >> s24]
    t0, t1, t2, t3 = _zero_chunk_tables()
    acc = 0
    for g in r.tolist():
        acc = t0[acc & 0xFF] ^ t1[(acc >> 8) & 0xFF] ^ t2[(acc >> 16) & 0xFF] ^ t3[acc >> 24] ^ g
    return acc ^ 0xFFFFFFFF


def _unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ------------------------------------------------------------------------------------------------ protobuf
class _Corrupt(Exception):
    """Internal: malformed bytes (turned into a ValueError naming the file)."""


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Corrupt("truncated or overlong varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _fields(buf: bytes, start: int = 0, end: int | None = None) -> dict[int, list]:
    """Decode one protobuf message: ``{field_number: [value, ...]}`` with ints for varint/fixed
    fields and ``(start, end)`` byte ranges for length-delimited ones."""
    end = len(buf) if end is None else end
    out: dict[int, list] = {}
    pos = start
    value: Any
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise _Corrupt("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1:
            if pos + 8 > end:
                raise _Corrupt("truncated fixed64")
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 5:
            if pos + 4 > end:
                raise _Corrupt("truncated fixed32")
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise _Corrupt("truncated length-delimited field")
            value, pos = (pos, pos + length), pos + length
        else:
            raise _Corrupt(f"unsupported wire type {wire}")
        out.setdefault(field, []).append(value)
    return out


def _last(fields: dict, number: int, default=0):
    values = fields.get(number)
    return values[-1] if values else default


# ------------------------------------------------------------------------------------------------ table
def _read_block(raw: bytes, offset: int, size: int) -> bytes:
    if offset < 0 or size < 0 or offset + size + _TRAILER_LEN > len(raw):
        raise _Corrupt("a block lies outside the file")
    contents = raw[offset : offset + size]
    kind = raw[offset + size]
    stored = int.from_bytes(raw[offset + size + 1 : offset + size + 5], "little")
    if crc32c(raw[offset : offset + size + 1]) != _unmask(stored):
        raise _Corrupt("block checksum mismatch")
    if kind == 1:
        raise _Corrupt("a snappy-compressed table block (TensorFlow's bundle writer never compresses its "
                       "index; this file was not written by tf.train.Saver)")
    if kind != 0:
        raise _Corrupt(f"unknown block type {kind}")
    return contents


def _block_entries(block: bytes) -> Iterable[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise _Corrupt("block too short")
    num_restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 * (num_restarts + 1)
    if num_restarts == 0 or limit < 0:
        raise _Corrupt("bad restart array")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos, limit)
        non_shared, pos = _varint(block, pos, limit)
        value_length, pos = _varint(block, pos, limit)
        if shared > len(key) or pos + non_shared + value_length > limit:
            raise _Corrupt("bad entry in block")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        yield key, block[pos : pos + value_length]
        pos += value_length


def _table_entries(raw: bytes) -> Iterable[tuple[bytes, bytes]]:
    if len(raw) < _FOOTER_LEN:
        raise _Corrupt("file shorter than a table footer")
    footer = raw[-_FOOTER_LEN:]
    magic = int.from_bytes(footer[40:44], "little") | (int.from_bytes(footer[44:48], "little") << 32)
    if magic != _MAGIC:
        raise _Corrupt("not a TensorFlow table (bad magic number)")
    _, pos = _varint(footer, 0, 40)  # metaindex offset
    _, pos = _varint(footer, pos, 40)  # metaindex size (no filters: unused)
    index_offset, pos = _varint(footer, pos, 40)
    index_size, pos = _varint(footer, pos, 40)
    for _, handle in _block_entries(_read_block(raw, index_offset, index_size)):
        offset, p = _varint(handle, 0, len(handle))
        size, _ = _varint(handle, p, len(handle))
        yield from _block_entries(_read_block(raw, offset, size))


# ------------------------------------------------------------------------------------------------ bundle
@dataclass(frozen=True)
class TFVariable:
    """One entry of a checkpoint's index (a ``BundleEntryProto``, see the module's docstring).

    Parameters
    ----------
    name : str
        The variable's name, e.g. ``"inpaint_net/conv1/kernel"``.
    dtype : str
        The numpy name of its ``DataType`` (e.g. ``"float32"``), or ``"DataType N"`` for a type
        without a numpy equivalent.
    shape : tuple of int
        Its shape (TF's layout: HWIO for convolution kernels).
    shard : int
        The number of the ``<prefix>.data-NNNNN-of-NNNNN`` file that holds its bytes.
    offset, size : int
        Where its bytes are in that file, in bytes.
    crc : int
        The masked CRC32C of those bytes.
    sliced : bool
        Whether it is stored as partitioned slices (not read here).
    """

    name: str
    dtype: str
    shape: tuple
    shard: int
    offset: int
    size: int
    crc: int
    sliced: bool


def find_prefix(path) -> Path | None:
    """The checkpoint prefix that ``path`` designates, or None when it holds no TF checkpoint.

    Parameters
    ----------
    path : str or os.PathLike
        The folder (its ``checkpoint`` / ``checkpoint.txt`` file names the prefix; without one, the
        folder's only ``*.index`` file, or the one with the highest trailing step number), one of the
        files (``*.index``, ``*.meta``, ``*.data-*-of-*``, ``checkpoint``) or the prefix itself
        (``folder/snap-0``).

    Returns
    -------
    pathlib.Path or None
        The prefix (``<prefix>.index`` exists), or None.
    """
    path = Path(os.fspath(path))
    if path.is_dir():
        return _prefix_in_folder(path)
    name = path.name
    if path.is_file():
        if name in ("checkpoint", "checkpoint.txt"):
            return _prefix_in_folder(path.parent)
        for suffix in (".index", ".meta"):
            if name.endswith(suffix):
                prefix = path.with_name(name[: -len(suffix)])
                return prefix if _index(prefix).is_file() else None
        m = _DATA_RE.match(name)
        if m:
            prefix = path.with_name(m["prefix"])
            return prefix if _index(prefix).is_file() else None
        return None
    return path if _index(path).is_file() else None


def _index(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".index")


def _prefix_in_folder(folder: Path) -> Path | None:
    for state in ("checkpoint", "checkpoint.txt"):
        f = folder / state
        if f.is_file() and f.stat().st_size < 1 << 20:
            m = re.search(r'^\s*model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', f.read_text(errors="replace"), re.M)
            if m:
                named = Path(m[1].replace('\\"', '"').replace("\\\\", "\\"))
                # relative to the folder, or absolute (often on the author's machine): a prefix in the folder
                # the user gave wins over one elsewhere
                candidates = (folder / named.name, named) if named.is_absolute() else (folder / named, folder / named.name)
                for candidate in candidates:
                    if _index(candidate).is_file():
                        return candidate
    indexes = sorted(folder.glob("*.index"))
    if len(indexes) == 1:
        return indexes[0].with_suffix("")
    if not indexes:
        return None

    def step(p: Path):
        m = re.search(r"-(\d+)$", p.stem)
        return (int(m[1]) if m else -1, p.stem)

    return max(indexes, key=step).with_suffix("")


def is_tf_checkpoint(path) -> bool:
    """Whether ``path`` (folder, file or prefix) designates a TensorFlow checkpoint.

    Parameters
    ----------
    path : str or os.PathLike
        As for :func:`find_prefix`.

    Returns
    -------
    bool
        True when :func:`find_prefix` finds a prefix; False also when the path cannot be read.
    """
    try:
        return find_prefix(path) is not None
    except OSError:
        return False


def _where(argument: str, path) -> str:
    return f"{argument}={str(path)!r}"


def _prefix_or_raise(path, argument: str) -> Path:
    prefix = find_prefix(path)
    if prefix is None:
        raise ValueError(f"{_where(argument, path)}: no TensorFlow checkpoint there (expected a folder with "
                         "'checkpoint' and '<prefix>.index' / '<prefix>.data-00000-of-00001' files, one of "
                         "those files, or the prefix)")
    return prefix


def _header_version(value: bytes, header: dict) -> None:
    """Refuse bundles that need a newer reader (``VersionDef.min_consumer`` above our version 1)."""
    if 3 in header:
        v0, v1 = header[3][-1]
        version = _fields(value, v0, v1)
        min_consumer = _last(version, 2)
        if min_consumer > _BUNDLE_VERSION or _BUNDLE_VERSION in version.get(3, []):
            raise _Corrupt(f"tensor bundle version needs a reader >= {min_consumer}; this reader is version "
                           f"{_BUNDLE_VERSION}")


def list_variables(path, *, argument: str = "weights") -> dict[str, TFVariable]:
    """Every variable of the checkpoint at ``path``, in the table's (sorted) order.

    Parameters
    ----------
    path : str or os.PathLike
        Folder, file or prefix of the checkpoint (see :func:`find_prefix`).
    argument : str, optional
        The name of the argument ``path`` came from, used in error messages (default
        ``"weights"``).

    Returns
    -------
    dict of str to TFVariable
        ``{name: TFVariable}``.

    Raises
    ------
    ValueError
        When ``path`` holds no TF checkpoint, or its index is truncated or corrupt.
    """
    prefix = _prefix_or_raise(path, argument)
    try:
        return _load_index(prefix)[0]
    except _Corrupt as e:
        raise ValueError(f"{_where(argument, path)}: not a readable TensorFlow checkpoint index "
                         f"({_index(prefix).name}): {e}") from None


def _load_index(prefix: Path) -> tuple[dict[str, TFVariable], int, bool]:
    raw = _index(prefix).read_bytes()
    header = None
    variables: dict[str, TFVariable] = {}
    for key, value in _table_entries(raw):
        if key == b"":
            header = _fields(value)
            _header_version(value, header)
            continue
        f = _fields(value)
        dtype_num = _last(f, 1)
        shape: list[int] = []
        unknown_rank = False
        if 2 in f:
            s0, s1 = f[2][-1]
            shape_fields = _fields(value, s0, s1)
            unknown_rank = bool(_last(shape_fields, 3))
            for d0, d1 in shape_fields.get(2, []):
                shape.append(_int64(_last(_fields(value, d0, d1), 1)))
        name = key.decode("utf-8", errors="replace")
        if unknown_rank or any(d < 0 for d in shape):
            raise _Corrupt(f"variable {name!r} has an unknown shape")
        variables[name] = TFVariable(
            name=name, dtype=_DTYPES.get(dtype_num, (f"DataType {dtype_num}", None))[0], shape=tuple(shape),
            shard=_last(f, 3), offset=_int64(_last(f, 4)), size=_int64(_last(f, 5)), crc=_last(f, 6),
            sliced=bool(f.get(7)),
        )
    if header is None:
        raise _Corrupt("no bundle header entry (the empty key); not a tf.train.Saver checkpoint")
    num_shards = _last(header, 1)
    if num_shards < 1:
        raise _Corrupt(f"bad number of data shards {num_shards}")
    return variables, num_shards, _last(header, 2) == 1


def read_variables(path, select: Callable[[str], bool] | Iterable[str] | None = None, *,
                   argument: str = "weights") -> dict[str, np.ndarray]:
    """The values of the checkpoint's variables: ``{name: numpy array}`` (C order, native byte order).

    Parameters
    ----------
    path : str or os.PathLike
        Folder, one of its checkpoint files, or the prefix (see :func:`find_prefix`).
    select : callable, iterable of str or None
        Which variables to read: a predicate on the name, a collection of names (all must exist), or
        None for all. Only the selected bytes are read from the data file.
    argument : str
        User-facing argument name, for error messages.

    Returns
    -------
    dict of str to numpy.ndarray
        bfloat16 variables come back as float32 (exactly).

    Raises
    ------
    ValueError
        Naming the file: no checkpoint, corrupt or truncated index or data file, checksum mismatch,
        a requested variable that is missing, sliced (partitioned), or of a type without a plain byte
        layout (strings, resources, variants).
    """
    prefix = _prefix_or_raise(path, argument)
    where = _where(argument, path)
    try:
        variables, num_shards, big_endian = _load_index(prefix)
    except _Corrupt as e:
        raise ValueError(f"{where}: not a readable TensorFlow checkpoint index ({_index(prefix).name}): {e}") from None
    if select is None:
        names = list(variables)
    elif callable(select):
        names = [n for n in variables if select(n)]
    else:
        names = list(select)
        missing = [n for n in names if n not in variables]
        if missing:
            raise ValueError(f"{where}: the checkpoint has no variable(s) {missing[:10]}")
    out: dict[str, np.ndarray] = {}
    handles: dict[int, Any] = {}
    try:
        for name in names:
            v = variables[name]
            out[name] = _read_one(prefix, v, num_shards, big_endian, handles, where)
    finally:
        for h in handles.values():
            h.close()
    return out


def _read_one(prefix: Path, v: TFVariable, num_shards: int, big_endian: bool, handles: dict, where: str):
    if v.sliced:
        raise ValueError(f"{where}: variable {v.name!r} is partitioned (saved as slices), which is not supported")
    layout = next((d for num, (n, d) in _DTYPES.items() if n == v.dtype), None)
    if layout is None:
        raise ValueError(f"{where}: variable {v.name!r} has type {v.dtype}, which has no plain byte layout")
    dtype = np.dtype(layout)
    if big_endian:
        dtype = dtype.newbyteorder(">")
    count = int(np.prod(v.shape, dtype=np.int64)) if v.shape else 1
    if v.size != count * dtype.itemsize:
        raise ValueError(f"{where}: variable {v.name!r}: {v.size} bytes recorded for shape {v.shape} of {v.dtype}")
    if not 0 <= v.shard < num_shards:
        raise ValueError(f"{where}: variable {v.name!r} refers to data shard {v.shard} of {num_shards}")
    data = prefix.with_name(f"{prefix.name}.data-{v.shard:05d}-of-{num_shards:05d}")
    if v.shard not in handles:
        if not data.is_file():
            raise ValueError(f"{where}: the data file {data.name} is missing beside {prefix.name}.index")
        handles[v.shard] = open(data, "rb")
    f = handles[v.shard]
    if v.offset < 0 or v.offset + v.size > os.fstat(f.fileno()).st_size:
        raise ValueError(f"{where}: the data file {data.name} is truncated (variable {v.name!r} lies beyond its end)")
    f.seek(v.offset)
    raw = f.read(v.size)
    if len(raw) != v.size:
        raise ValueError(f"{where}: the data file {data.name} is truncated (variable {v.name!r})")
    if crc32c(raw) != _unmask(v.crc):
        raise ValueError(f"{where}: checksum mismatch for variable {v.name!r} in {data.name} (corrupt download?)")
    arr = np.frombuffer(raw, dtype=dtype).reshape(v.shape)
    if v.dtype == "bfloat16":  # the upper half of a float32
        return (arr.astype("<u4") << np.uint32(16)).view("<f4").reshape(v.shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


# ------------------------------------------------------------------------------------------------ networks
#: Human names of the networks :func:`identify` tells apart.
NETWORKS = {
    "deepfill_v1": "DeepFill v1 (JiahuiYu/generative_inpainting v1.0.0)",
    "deepfill_v2": "DeepFill v2 (JiahuiYu/generative_inpainting v2.0.0, gated convolutions)",
    "gmcnn_tf": "GMCNN, TensorFlow version (shepnerd/inpainting_gmcnn, tensorflow/)",
}


def identify(variables) -> str | None:
    """Which official TensorFlow network a checkpoint's variables belong to, or None.

    Facts from the official code (variable scopes):

    - DeepFill v1 and v2 (``inpaint_model.py``, ``build_inpaint_net``): ``variable_scope('inpaint_net')``
      holding ``conv1 ... conv17`` (stage 1) and ``xconv1 ...``, ``pmconv1 ...``, ``allconv11 ...``
      (stage 2), ``tf.layers.conv2d`` variables ``kernel`` and ``bias``. v2's ``gen_conv`` is gated: the
      conv has ``cnum`` filters split into features and gates, so the next layer takes half as many
      input channels as ``conv1`` has filters; in v1 the two are equal.
    - GMCNN TensorFlow (``tensorflow/net/network.py``, ``build_generator``): ``inpaint_net`` holding
      ``b1conv1 ...``, ``b2conv1 ...``, ``b3conv1 ...`` (three columns) and ``mergeconv17/18``.

    Parameters
    ----------
    variables : dict of str to TFVariable
        A checkpoint's variables, from :func:`list_variables`.

    Returns
    -------
    str or None
        A key of :data:`NETWORKS` (``"deepfill_v1"``, ``"deepfill_v2"`` or ``"gmcnn_tf"``), or None
        when the variables fit none of them.
    """
    shapes = {name: v.shape for name, v in variables.items()}
    if "inpaint_net/b1conv1/kernel" in shapes or "inpaint_net/mergeconv18/kernel" in shapes:
        return "gmcnn_tf"
    c1 = shapes.get("inpaint_net/conv1/kernel")
    c2 = shapes.get("inpaint_net/conv2_downsample/kernel")
    if c1 is not None and c2 is not None and len(c1) == 4 and len(c2) == 4:
        if c2[2] * 2 == c1[3]:
            return "deepfill_v2"
        if c2[2] == c1[3]:
            return "deepfill_v1"
    return None


def is_generator_variable(name: str) -> bool:
    """A generator weight of the official graphs: ``inpaint_net/.../kernel`` or ``.../bias``.

    Everything else is ignored when loading: the discriminators (``discriminator/...``), the optimiser's
    slots (``inpaint_net/.../kernel/Adam``, ``Adam_1``), ``beta1_power``, ``global_step`` etc.

    Parameters
    ----------
    name : str
        A variable name of the checkpoint.

    Returns
    -------
    bool
        True for generator kernels and biases.
    """
    parts = name.split("/")
    return len(parts) >= 3 and parts[0] == "inpaint_net" and parts[-1] in ("kernel", "bias")


def generator_state_dict(path, network: str, own: dict, to_tf: Callable[[str], str], *,
                         bgr_inputs: Iterable[str] = (), bgr_outputs: Iterable[str] = (),
                         argument: str = "weights") -> dict:
    """The torch state_dict of ``network`` from the official TF checkpoint at ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        Folder, file or prefix of the checkpoint.
    network : str
        Key of :data:`NETWORKS` the module implements; a checkpoint of another network is refused.
    own : dict
        The module's ``state_dict()`` (keys and shapes wanted).
    to_tf : callable
        Official variable name of each of our keys.
    bgr_inputs, bgr_outputs : iterable of str
        Our keys of convolutions whose input channels 0..2 (``bgr_inputs``) or output channels 0..2 and
        bias (``bgr_outputs``) are image channels: the official DeepFill graphs were trained and run on
        BGR images (``cv2.imread`` in neuralgym's ``DataFromFNames`` and in ``test.py``) while the
        networks here take RGB, so those channels are reversed, which makes the network on an RGB image
        compute exactly what the official one computes on the BGR image. Default: none.
    argument : str, optional
        The name of the argument ``path`` came from, used in error messages (default
        ``"weights"``).

    Returns
    -------
    dict of str to torch.Tensor
        Kernels transposed from TF's HWIO to torch's OIHW (``permute(3, 2, 0, 1)``), biases as they are.

    Raises
    ------
    ValueError
        Naming the file: not a TF checkpoint, a checkpoint of another network (saying which one it
        looks like), missing or unexpected generator variables.
    """
    import torch

    where = _where(argument, path)
    variables = list_variables(path, argument=argument)
    kind = identify(variables)
    if kind != network:
        examples = [n for n in variables if is_generator_variable(n)][:4] or list(variables)[:4]
        if kind is None:
            raise ValueError(f"{where}: this TensorFlow checkpoint is not a {NETWORKS[network]} checkpoint "
                             f"(its variables are e.g. {examples})")
        hint = f"use method={kind!r}"
        raise ValueError(f"{where}: this TensorFlow checkpoint looks like {NETWORKS[kind]}, not "
                         f"{NETWORKS[network]} (variables e.g. {examples}): {hint}")
    names = {to_tf(k): k for k in own}
    present = [n for n in names if n in variables]
    missing = [n for n in names if n not in variables]
    unexpected = [n for n in variables if is_generator_variable(n) and n not in names]
    if missing or unexpected:
        parts = []
        for title, items in (("missing variables", missing), ("unexpected generator variables", unexpected)):
            if items:
                parts.append(f"{title}: " + ", ".join(items[:10]) + (f", ... ({len(items)} in all)" if len(items) > 10 else ""))
        raise ValueError(f"{where}: the TensorFlow checkpoint does not fit the {NETWORKS[network]} network; "
                         + "; ".join(parts))
    arrays = read_variables(path, present, argument=argument)
    bgr_inputs, bgr_outputs = set(bgr_inputs), set(bgr_outputs)
    state = {}
    for tf_name, key in names.items():
        a = arrays[tf_name]
        if a.ndim == 4:
            a = a.transpose(3, 2, 0, 1)
        t = torch.from_numpy(np.ascontiguousarray(a))
        if key in bgr_inputs and t.ndim == 4 and t.shape[1] >= 3:
            t = torch.cat([t[:, :3].flip(1), t[:, 3:]], dim=1)
        if key in bgr_outputs and t.shape[0] >= 3:
            t = torch.cat([t[:3].flip(0), t[3:]], dim=0)
        state[key] = t.contiguous()
    return state


# ------------------------------------------------------------------------------------------------ writer
def _put_varint(out: bytearray, v: int) -> None:
    v &= (1 << 64) - 1
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _field_varint(out: bytearray, number: int, v: int) -> None:
    _put_varint(out, number << 3)
    _put_varint(out, v)


def _field_bytes(out: bytearray, number: int, payload: bytes) -> None:
    _put_varint(out, (number << 3) | 2)
    _put_varint(out, len(payload))
    out += payload


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A table block with a restart point at every entry (no prefix compression: always valid)."""
    out = bytearray()
    restarts = []
    for key, value in entries:
        restarts.append(len(out))
        for v in (0, len(key), len(value)):
            _put_varint(out, v)
        out += key + value
    for r in restarts or [0]:
        out += r.to_bytes(4, "little")
    out += len(restarts or [0]).to_bytes(4, "little")
    return bytes(out)


def write_checkpoint(folder, variables: dict, prefix: str = "snap-0") -> Path:
    """Write ``variables`` as a TensorFlow checkpoint folder.

    ``tf.train.load_checkpoint`` / ``Saver.restore`` and :func:`read_variables` read it:
    ``checkpoint``, ``<prefix>.index``, ``<prefix>.data-00000-of-00001`` (the layout described at the
    top of this module; one uncompressed data block, every entry a restart point). Files are written
    to temporary names and renamed.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to write to; created when missing. Existing files of the same names are replaced.
    variables : dict of str to numpy.ndarray
        ``{name: array}``; float16, float32, float64, int8, int16, int32, int64, uint8, bool,
        complex64 or complex128.
    prefix : str, optional
        The checkpoint's file name prefix (default ``"snap-0"``).

    Returns
    -------
    pathlib.Path
        The prefix path ``folder / prefix``.

    Raises
    ------
    ValueError
        For a variable of an unsupported dtype.
    """
    folder = Path(os.fspath(folder))
    folder.mkdir(parents=True, exist_ok=True)
    codes = {np.dtype(d).newbyteorder("<") if np.dtype(d).itemsize > 1 else np.dtype(d): num
             for num, (_, d) in _DTYPES.items() if d is not None and num not in (14, 17, 22, 23)}
    data = bytearray()
    entries = []
    header = bytearray()
    _field_varint(header, 1, 1)  # num_shards
    version = bytearray()
    _field_varint(version, 1, _BUNDLE_VERSION)  # producer
    _field_bytes(header, 3, bytes(version))
    entries.append((b"", bytes(header)))
    for name in sorted(variables, key=lambda n: n.encode("utf-8")):
        arr = np.asarray(variables[name])  # tobytes() is C order
        dtype = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
        if dtype not in codes:
            raise ValueError(f"write_checkpoint: variable {name!r} has unsupported dtype {arr.dtype}")
        raw = arr.astype(dtype, copy=False).tobytes()
        entry = bytearray()
        _field_varint(entry, 1, codes[dtype])
        shape = bytearray()
        for d in arr.shape:
            dim = bytearray()
            _field_varint(dim, 1, int(d))
            _field_bytes(shape, 2, bytes(dim))
        _field_bytes(entry, 2, bytes(shape))
        _field_varint(entry, 4, len(data))  # offset (shard 0: the default, left out as proto3 does)
        _field_varint(entry, 5, len(raw))
        _put_varint(entry, (6 << 3) | 5)
        entry += _mask(crc32c(raw)).to_bytes(4, "little")
        data += raw
        entries.append((name.encode("utf-8"), bytes(entry)))
    table = bytearray()

    def add_block(contents: bytes) -> bytes:
        handle = bytearray()
        _put_varint(handle, len(table))
        _put_varint(handle, len(contents))
        table.extend(contents)
        table.append(0)  # no compression
        table.extend(_mask(crc32c(contents + b"\x00")).to_bytes(4, "little"))
        return bytes(handle)

    data_handle = add_block(_block(entries))
    meta_handle = add_block(_block([]))
    index_handle = add_block(_block([(entries[-1][0] + b"\x00", data_handle)]))
    footer = bytearray(meta_handle + index_handle)
    footer += bytes(40 - len(footer))
    footer += (_MAGIC & 0xFFFFFFFF).to_bytes(4, "little") + (_MAGIC >> 32).to_bytes(4, "little")
    table += footer
    base = folder / prefix
    for path, payload in ((base.with_name(f"{prefix}.data-00000-of-00001"), bytes(data)),
                          (_index(base), bytes(table)),
                          (folder / "checkpoint", f'model_checkpoint_path: "{prefix}"\n'
                                                  f'all_model_checkpoint_paths: "{prefix}"\n'.encode())):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    return base
