"""Official weights: where they come from (:class:`WeightsEntry`, :class:`WeightsFile`), the user cache
(weights imported once with ``_manage.import_weights`` / ``inpaint-plugin weights import``, official
files downloaded with ``_manage.fetch_weights``) and turning the user's ``weights`` argument into a local path.

Cache layout (``<cache>`` = :func:`cache_dir`)::

    <cache>/<method>/imported.safetensors   the imported weights: the network's own state_dict
    <cache>/<method>/imported.json          {"method", "sha256", "size", "source", "imported_at", ...}
    <cache>/<method>/<entry>/<file>         official files downloaded for a registry entry

Environment variables
---------------------
``INPAINT_PLUGIN_OFFLINE``
    ``1`` / ``true``: never download; registry weights must already be in the cache.
``INPAINT_PLUGIN_CACHE``
    Folder of the weights cache (default: the OS user cache folder of ``inpaint-plugin``).
"""
from __future__ import annotations

import contextvars
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._spec import ModelSpec

__all__ = ["WeightsEntry", "WeightsFile", "cache_dir", "imported_info", "imported_path", "is_imported", "is_offline",
           "load_imported", "resolve_weights", "sha256_file"]

#: Who is asking: ``"python"`` (default) or ``"cli"``; error messages name what the user can type there
#: (``weights=...`` in Python, ``-p weights=PATH`` / ``inpaint-plugin weights import`` on the command line).
INTERFACE: contextvars.ContextVar[str] = contextvars.ContextVar("inpaint_plugin_interface", default="python")

IMPORTED_NAME = "imported.safetensors"
INFO_NAME = "imported.json"


@dataclass(frozen=True)
class WeightsFile:
    """One downloadable file of a checkpoint: its local file name, URL and sha256 (hex).

    Parameters
    ----------
    filename : str
        The file's name in the cache folder.
    url : str, optional
        Where to download it from (default None: not directly downloadable).
    sha256 : str, optional
        The hex sha256 the download must have (default None: unknown, so never downloaded).

    Attributes
    ----------
    downloadable : bool
        True when both ``url`` and ``sha256`` are known.
    """

    filename: str
    url: str | None = None
    sha256: str | None = None

    @property
    def downloadable(self) -> bool:
        return bool(self.url) and bool(self.sha256)


@dataclass(frozen=True)
class WeightsEntry:
    """A named set of official weights (e.g. one per training dataset).

    Parameters
    ----------
    name : str
        The entry's name (e.g. the training dataset), its folder in ``<cache>/<model>/``.
    files : sequence of WeightsFile
        The files, fetched into ``<cache>/<model>/<name>/``; at least one.
    folder : bool, optional
        With ``False`` (default; one file) the resolved weights are that file; with ``True`` the folder
        (e.g. MEDFE's EN/DE/MEDEF.pkl).
    description : str, optional
        One line for ``inpaint-plugin weights list`` (default ``""``).
    instructions : str, optional
        How to get the files by hand when they are not directly downloadable (e.g. Google Drive);
        default ``""``.
    licence : str, optional
        The licence of the weights as their authors publish it (shown by ``inpaint-plugin weights
        list``; e.g. non-commercial), ``""`` (default) when not known.

    Attributes
    ----------
    downloadable : bool
        True when every file is downloadable.

    Raises
    ------
    ValueError
        When ``files`` is empty, or holds several files with ``folder=False``.
    """

    name: str
    files: Sequence[WeightsFile]
    folder: bool = False
    description: str = ""
    instructions: str = ""
    licence: str = ""

    def __post_init__(self):
        object.__setattr__(self, "files", tuple(self.files))
        if not self.files:
            raise ValueError(f"WeightsEntry {self.name!r}: files must not be empty")
        if not self.folder and len(self.files) != 1:
            raise ValueError(f"WeightsEntry {self.name!r}: several files need folder=True")

    @property
    def downloadable(self) -> bool:
        return all(f.downloadable for f in self.files)


def is_offline() -> bool:
    """True when ``INPAINT_PLUGIN_OFFLINE`` is set to 1/true/yes/on (any case).

    Returns
    -------
    bool
        Whether downloads are switched off.
    """
    return os.environ.get("INPAINT_PLUGIN_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir() -> Path:
    """Folder of the weights cache (``INPAINT_PLUGIN_CACHE`` or the OS user cache).

    Returns
    -------
    pathlib.Path
        ``$INPAINT_PLUGIN_CACHE`` (``~`` expanded) when set, else pooch's ``os_cache("inpaint-plugin")``;
        it may not exist yet.
    """
    env = os.environ.get("INPAINT_PLUGIN_CACHE")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("inpaint-plugin"))


def _how_to_get(spec: "ModelSpec") -> str:
    if INTERFACE.get() == "cli":
        return (f"{spec.weights_help.rstrip('.')}. Then pass it with -p weights=PATH, or import it once with "
                f"'inpaint-plugin weights import PATH --method {spec.name}' (later runs need no -p weights).")
    return (f"{spec.weights_help.rstrip('.')}. Then pass the path with inpaint(..., method={spec.name!r}, "
            f"weights='path/to/checkpoint') (or choose it in the plugin's weights field), or import it once "
            f"(inpaint_plugin.deep.import_weights({spec.name!r}, 'path/to/checkpoint'); on the command line "
            f"'inpaint-plugin weights import PATH --method {spec.name}') so that weights=None finds it.")


def _arg(value=None) -> str:
    """How the user wrote the weights argument, in the language of the interface that is asking."""
    if INTERFACE.get() == "cli":
        return "-p weights" if value is None else f"-p weights={value}"
    return f"weights={None if value is None else str(value)!r}"


def _downloader(timeout: float, progress: bool = False):
    import pooch

    return pooch.HTTPDownloader(timeout=timeout, progressbar=progress)


def _fetch_entry(spec: "ModelSpec", entry: WeightsEntry, timeout: float = 30.0) -> Path:
    import pooch

    target = cache_dir() / spec.name / entry.name
    offline = is_offline()
    for f in entry.files:
        local = target / f.filename
        if offline:
            if not local.is_file() or pooch.file_hash(str(local)).lower() != str(f.sha256).lower():
                raise ValueError(
                    f"{_arg()}: method {spec.name!r} would download its default weights {entry.name!r} "
                    f"({f.url}), but INPAINT_PLUGIN_OFFLINE is set and {local} is not in the cache (or has the "
                    f"wrong sha256). Unset INPAINT_PLUGIN_OFFLINE, or put the file there, or: {_how_to_get(spec)}"
                )
            continue
        try:
            pooch.retrieve(f.url, known_hash=f"sha256:{f.sha256}", fname=f.filename, path=str(target),
                           downloader=_downloader(timeout))
        except Exception as e:
            raise ValueError(
                f"{_arg()}: could not download the default weights {entry.name!r} of method {spec.name!r} "
                f"from {f.url}: {e}. {_how_to_get(spec)}"
            ) from None
    return target if entry.folder else target / entry.files[0].filename


def resolve_weights(spec: "ModelSpec", weights) -> Path:
    """The local checkpoint path for the user's ``weights`` argument.

    Parameters
    ----------
    spec : ModelSpec
        The network's specification (its name and weights table ``registry``).
    weights : str, os.PathLike or None
        A path (``~`` expanded) must exist (a TensorFlow checkpoint may be named by its prefix) and is
        used as is. ``None`` means, in this order: the weights imported into the cache
        (:func:`~inpaint_plugin.deep.import_weights`, ``inpaint-plugin weights import``; their sha256 is
        checked against the one recorded at import), then the first entry of ``spec.registry`` when it
        is downloadable, downloaded with pooch into :func:`cache_dir` (or only looked up there when
        :func:`is_offline`).

    Returns
    -------
    pathlib.Path
        The checkpoint file or folder.

    Raises
    ------
    TypeError
        If ``weights`` is neither a path nor None.
    ValueError
        If the path does not exist, the imported weights were changed since the import, or there is
        no weights to use: the message says where to get them and how to pass or import them.
    """
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise TypeError(f"weights must be a path (str or os.PathLike) or None, got {weights!r}")
        path = Path(os.fspath(weights)).expanduser()
        # a TensorFlow checkpoint may be named by its prefix (``folder/snap-0``: snap-0.index beside it)
        if not path.exists() and not path.with_name(path.name + ".index").is_file():
            raise ValueError(f"{_arg(weights)}: no such file or folder. {_how_to_get(spec)}")
        return path
    info = imported_info(spec.name)
    if info is not None:
        path = Path(info["path"])
        _check_imported(spec.name, path, info)
        return path
    entry = spec.registry[0] if spec.registry else None
    if entry is None or not entry.downloadable:
        extra = f" {entry.instructions}" if entry is not None and entry.instructions else ""
        raise ValueError(
            f"{_arg()}: method {spec.name!r} needs trained weights; none are imported in the cache "
            f"({cache_dir() / spec.name}) and none can be downloaded automatically.{extra} {_how_to_get(spec)}"
        )
    return _fetch_entry(spec, entry)


# --------------------------------------------------------------------------------------------------
# the cache of imported weights
# --------------------------------------------------------------------------------------------------
def training_report_path(weights) -> Path:
    """Where :func:`inpaint_plugin.train` writes the held-out comparison of a checkpoint:
    ``<weights>.train.json``.

    Parameters
    ----------
    weights : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    Path
    """
    weights = Path(os.fspath(weights))
    return weights.with_name(weights.name + ".train.json")


def read_training_report(weights) -> dict | None:
    """The training report of a checkpoint trained by :func:`inpaint_plugin.train`, or None.

    Parameters
    ----------
    weights : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    dict or None
        ``method``, ``step``, ``val_psnr``, ``baseline`` (classical PSNRs on the same held-out crops),
        ``best_classical``, ``beats_biharmonic`` and ``verdict``; None when there is no (readable) report.
    """
    try:
        return json.loads(training_report_path(weights).read_text())
    except (OSError, ValueError):
        return None


def imported_path(method: str) -> Path:
    """Where the imported weights of ``method`` are (or would be).

    Parameters
    ----------
    method : str
        A deep method's name.

    Returns
    -------
    pathlib.Path
        ``<cache>/<method>/imported.safetensors``.
    """
    return cache_dir() / method / IMPORTED_NAME


def imported_info(method: str) -> dict | None:
    """The record of the weights imported for ``method``, or None if there are none.

    Parameters
    ----------
    method : str
        A deep method's name.

    Returns
    -------
    dict or None
        The record holds ``method``, ``sha256`` and ``size`` of the safetensors file, ``source`` (what
        was imported), ``imported_at`` (UTC, ISO 8601) and, when known, ``entry`` and ``licence``, plus
        ``path`` (the weights file). An unreadable record gives ``damaged_record: True`` and an empty
        ``sha256``. None when the weights file or its record is missing.
    """
    folder = cache_dir() / method
    weights, record = folder / IMPORTED_NAME, folder / INFO_NAME
    if not weights.is_file() or not record.is_file():
        return None
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict) or not isinstance(info.get("sha256"), str):
        info = {"method": method, "sha256": "", "size": -1, "source": "?", "damaged_record": True}
    info["path"] = str(weights)
    return info


def sha256_file(path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        The 64 hex digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_VERIFIED: dict = {}  # (path, mtime_ns, size) -> sha256 already checked in this process


def _check_imported(method: str, path: Path, info: dict) -> None:
    """Refuse imported weights whose file no longer has the sha256 recorded at import."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if _VERIFIED.get(key) == info.get("sha256"):
        return
    digest = sha256_file(path)
    if digest != info.get("sha256"):
        redo = (f"inpaint-plugin weights import PATH --method {method}" if INTERFACE.get() == "cli"
                else f"inpaint_plugin.deep.import_weights({method!r}, path)")
        raise ValueError(
            f"{_arg()}: the weights imported for method {method!r} ({path}) do not match the sha256 recorded at "
            f"import ({str(info.get('sha256'))[:16] or 'no record'}... vs {digest[:16]}...): the file was changed or "
            f"damaged. Import the weights again ({redo}) or remove them (inpaint-plugin weights remove {method})."
        )
    _VERIFIED[key] = digest


def is_imported(path) -> bool:
    """True when ``path`` is weights written by :func:`~inpaint_plugin.deep.import_weights`.

    Such a file holds the network's own state_dict.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint path.

    Returns
    -------
    bool
        True for an ``imported.safetensors`` file with its import record beside it.
    """
    path = Path(os.fspath(path))
    return path.name == IMPORTED_NAME and path.is_file() and (path.parent / INFO_NAME).is_file()


def _own_format(path: Path, method: str) -> bool:
    """True for a safetensors file written by :func:`~inpaint_plugin.deep.import_weights` for ``method`` (found by its metadata)."""
    if path.suffix.lower() != ".safetensors" or not path.is_file():
        return False
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception:
        return False
    return meta.get("format") == "inpaint_plugin state_dict" and meta.get("method") == method


def load_imported(module, path) -> None:
    """Load weights written by :func:`~inpaint_plugin.deep.import_weights` into ``module``, strictly.

    The file is the network's own state_dict (not an official format), so this, not ``ModelSpec.load``,
    reads it; :func:`is_imported` tells such a file.

    Parameters
    ----------
    module : torch.nn.Module
        The network; every key and shape of the file must match it.
    path : str or os.PathLike
        The ``imported.safetensors`` file.

    Raises
    ------
    ValueError
        When the file does not fit the module (missing or unexpected keys, other shapes).
    """
    from ._checkpoint import load_checked, load_state_dict_file

    load_checked(module, load_state_dict_file(path), path=path)
