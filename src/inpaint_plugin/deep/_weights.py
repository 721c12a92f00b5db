"""Official weights: where they come from (:class:`WeightsEntry`, :class:`WeightsFile`), the user cache
and turning the user's ``weights`` argument into a local path.

Environment variables
---------------------
``INPAINT_PLUGIN_OFFLINE``
    ``1`` / ``true``: never download; registry weights must already be in the cache.
``INPAINT_PLUGIN_CACHE``
    Folder of the weights cache (default: the OS user cache folder of ``inpaint-plugin``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._spec import ModelSpec

__all__ = ["WeightsEntry", "WeightsFile", "cache_dir", "is_offline", "resolve_weights"]


@dataclass(frozen=True)
class WeightsFile:
    """One downloadable file of a checkpoint: its local file name, URL and sha256 (hex)."""

    filename: str
    url: str | None = None
    sha256: str | None = None

    @property
    def downloadable(self) -> bool:
        return bool(self.url) and bool(self.sha256)


@dataclass(frozen=True)
class WeightsEntry:
    """A named set of official weights (e.g. one per training dataset).

    ``files`` are fetched into ``<cache>/<model>/<name>/``. With ``folder=False`` (one file) the
    resolved weights are that file; with ``folder=True`` the folder (e.g. MEDFE's EN/DE/MEDEF.pkl).
    ``instructions`` tells how to get the files by hand when they are not directly downloadable
    (e.g. Google Drive).
    """

    name: str
    files: Sequence[WeightsFile]
    folder: bool = False
    description: str = ""
    instructions: str = ""

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
    """True when ``INPAINT_PLUGIN_OFFLINE`` is set to 1/true/yes/on."""
    return os.environ.get("INPAINT_PLUGIN_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir() -> Path:
    """Folder of the weights cache (``INPAINT_PLUGIN_CACHE`` or the OS user cache)."""
    env = os.environ.get("INPAINT_PLUGIN_CACHE")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("inpaint-plugin"))


def _how_to_get(spec: "ModelSpec") -> str:
    return (f"{spec.weights_help.rstrip('.')}. Then pass the path with inpaint(..., method={spec.name!r}, "
            f"weights='path/to/checkpoint') (or choose it in the plugin's weights field).")


def _fetch_entry(spec: "ModelSpec", entry: WeightsEntry) -> Path:
    import pooch

    target = cache_dir() / spec.name / entry.name
    offline = is_offline()
    for f in entry.files:
        local = target / f.filename
        if offline:
            if not local.is_file() or pooch.file_hash(str(local)).lower() != f.sha256.lower():
                raise ValueError(
                    f"weights=None: method {spec.name!r} would download its default weights {entry.name!r} "
                    f"({f.url}), but INPAINT_PLUGIN_OFFLINE is set and {local} is not in the cache (or has the "
                    f"wrong sha256). Unset INPAINT_PLUGIN_OFFLINE, or put the file there, or: {_how_to_get(spec)}"
                )
            continue
        try:
            pooch.retrieve(f.url, known_hash=f"sha256:{f.sha256}", fname=f.filename, path=str(target), progressbar=False)
        except Exception as e:
            raise ValueError(
                f"weights=None: could not download the default weights {entry.name!r} of method {spec.name!r} "
                f"from {f.url}: {e}. {_how_to_get(spec)}"
            ) from None
    return target if entry.folder else target / entry.files[0].filename


def resolve_weights(spec: "ModelSpec", weights) -> Path:
    """The local checkpoint path for the user's ``weights`` argument.

    A path (str or os.PathLike) must exist and is used as is. ``None`` means the first entry of
    ``spec.registry``, downloaded with pooch into :func:`cache_dir` (or only looked up there when
    :func:`is_offline`).

    Raises
    ------
    ValueError
        If the path does not exist, or there is no downloadable default: the message says where to get
        the weights and how to pass ``weights=``.
    """
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise TypeError(f"weights must be a path (str or os.PathLike) or None, got {weights!r}")
        path = Path(os.fspath(weights)).expanduser()
        if not path.exists():
            raise ValueError(f"weights={str(weights)!r}: no such file or folder. {_how_to_get(spec)}")
        return path
    entry = spec.registry[0] if spec.registry else None
    if entry is None or not entry.downloadable:
        extra = f" {entry.instructions}" if entry is not None and entry.instructions else ""
        raise ValueError(
            f"weights=None: method {spec.name!r} needs trained weights and none can be downloaded "
            f"automatically.{extra} {_how_to_get(spec)}"
        )
    return _fetch_entry(spec, entry)
