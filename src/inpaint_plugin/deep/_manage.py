"""Managing the weights cache by method name: import a checkpoint once (:func:`import_weights`,
``inpaint-plugin weights import``), download official files (:func:`fetch_weights`), remove them
(:func:`remove_weights`).

These look methods up in the registry, so they sit above the backend factory in the import graph
(``_weights`` below them only knows specs and paths).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._backend import find_spec
from ._device import require_torch
from ._weights import (
    IMPORTED_NAME,
    INFO_NAME,
    INTERFACE,
    WeightsEntry,
    _downloader,
    _how_to_get,
    _own_format,
    cache_dir,
    is_offline,
    load_imported,
    sha256_file,
)

if TYPE_CHECKING:
    from ._spec import ModelSpec

__all__ = ["fetch_weights", "import_weights", "remove_weights"]


def _remove_quietly(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except OSError:
            pass


def import_weights(method: str, path, *, source: str | None = None, entry: WeightsEntry | None = None) -> dict:
    """Import a checkpoint into the cache, so that ``weights=None`` uses it.

    The checkpoint (any format the method loads: the official file or folder, a port's ``.pth``, ...)
    is loaded through the method's ``ModelSpec.load``, which checks every key and shape; weights that
    are not finite are refused. The network's state_dict is then written as
    ``<cache>/<method>/imported.safetensors`` (to a temporary file first, then renamed) and its sha256
    recorded in ``imported.json`` beside it. An earlier import of the same method is replaced.

    Parameters
    ----------
    method : str
        A registered deep method, e.g. ``"deepfill_v2"``.
    path : str or os.PathLike
        The checkpoint file or folder.
    source : str, optional
        What to record as the origin (default: the absolute path).
    entry : WeightsEntry, optional
        The official entry the file belongs to (its name and licence are recorded).

    Returns
    -------
    dict
        The record (see :func:`imported_info`), with ``"path"``.

    Raises
    ------
    ValueError
        If the method is not a deep method, the path does not exist, or the checkpoint does not fit
        the network (the message lists missing / unexpected keys and shape mismatches).
    """

    spec = find_spec(method)
    require_torch(f"importing weights for method {spec.name!r}")
    import torch
    from safetensors.torch import save_file

    src = Path(os.fspath(path)).expanduser()
    if not src.exists():
        raise ValueError(f"path={str(path)!r}: no such file or folder")
    module = spec.build()
    if _own_format(src, spec.name):  # weights imported before (e.g. copied from another machine's cache)
        load_imported(module, src)
    else:
        spec.load(module, src)  # every key and shape checked; ValueError naming the file otherwise
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"path={str(src)!r}: the checkpoint holds NaN or infinite weights "
                         f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}); refused")
    folder = cache_dir() / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    target, record = folder / IMPORTED_NAME, folder / INFO_NAME
    tag = f"{os.getpid()}.{time.monotonic_ns()}"
    tmp, tmp_record = folder / f".{IMPORTED_NAME}.{tag}.tmp", folder / f".{INFO_NAME}.{tag}.tmp"
    try:
        save_file(state, str(tmp), metadata={"method": spec.name, "format": "inpaint_plugin state_dict"})
        info = {
            "method": spec.name,
            "sha256": sha256_file(tmp),
            "size": tmp.stat().st_size,
            "source": source or str(src.resolve()),
            "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "tensors": len(state),
        }
        if entry is not None:
            info["entry"] = entry.name
            if entry.licence:
                info["licence"] = entry.licence
        tmp_record.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        os.replace(tmp_record, record)
    except BaseException:
        _remove_quietly(tmp, tmp_record)
        raise
    info["path"] = str(target)
    return info


def remove_weights(method: str) -> list:
    """Delete everything cached for ``method`` (imported and downloaded weights).

    Parameters
    ----------
    method : str
        A registered deep method (so no other folder can be named); its cache folder is
        ``cache_dir() / method``.

    Returns
    -------
    list of pathlib.Path
        The files removed, sorted; empty when nothing was cached.

    Raises
    ------
    ValueError
        When ``method`` is not a registered deep method.
    """
    import shutil


    spec = find_spec(method)
    folder = cache_dir() / spec.name
    if not folder.exists():
        return []
    removed = sorted(p for p in folder.rglob("*") if p.is_file())
    shutil.rmtree(folder)
    return removed


def _network_reachable(url: str, timeout: float) -> bool:
    """Whether a TCP connection to the URL's host and port opens within ``timeout`` seconds (name lookup
    included: it runs in a daemon thread, so a resolver that hangs cannot hold the caller)."""
    import socket
    import threading
    from urllib.parse import urlparse

    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result = []

    def probe():
        try:
            with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    return bool(result and result[0])


def _by_hand(spec: "ModelSpec", entry: WeightsEntry) -> str:
    how = entry.instructions or spec.weights_help.rstrip(".") + "."
    return (f"{how} Then import it: inpaint-plugin weights import PATH --method {spec.name}"
            + (f" (or, in Python, inpaint_plugin.deep._weights.import_weights({spec.name!r}, path))"
               if INTERFACE.get() != "cli" else "") + ".")


def fetch_weights(method: str, entry=None, *, timeout: float = 10.0, progress: bool = False) -> dict:
    """Download an official checkpoint of ``method`` and import it into the cache (:func:`import_weights`).

    Direct links are downloaded with pooch (checked against the sha256 of the weights table when it has
    one); Google Drive files need the optional ``gdown`` package (the ``fetch`` extra). Offline (``INPAINT_PLUGIN_OFFLINE``,
    or the host cannot be reached within ``timeout`` seconds) nothing is downloaded and the error says
    how to get the files by hand; nothing waits longer than ``timeout`` for a connection.

    Parameters
    ----------
    method : str
        A registered deep method.
    entry : str or WeightsEntry, optional
        Name of the registry entry (default: the first, the default weights), or an entry of your own.
    timeout : float
        Seconds to wait for a connection (and between received blocks).
    progress : bool
        Show download progress.

    Returns
    -------
    dict
        The import record (see :func:`import_weights`).

    Raises
    ------
    ValueError
        Unknown entry, offline, no network, not downloadable automatically (e.g. a Google Drive folder,
        or gdown missing), a download failure or a checkpoint that does not fit: the message says what
        to do instead.
    """
    import shutil
    import tempfile
    from urllib.parse import urlparse


    spec = find_spec(method)
    if entry is None or isinstance(entry, str):
        names = [e.name for e in spec.registry]
        if not spec.registry:
            raise ValueError(f"method {spec.name!r} has no official weights to fetch. {_how_to_get(spec)}")
        if entry is not None and entry not in names:
            raise ValueError(f"entry={entry!r}: method {spec.name!r} has the weights {names}")
        entry = spec.registry[names.index(entry) if entry is not None else 0]
    if is_offline():
        raise ValueError(f"INPAINT_PLUGIN_OFFLINE is set: nothing is downloaded. Unset it on a machine with "
                         f"internet, or get the weights {entry.name!r} of {spec.name!r} by hand: {_by_hand(spec, entry)}")
    for f in entry.files:
        if not f.url:
            raise ValueError(f"the weights {entry.name!r} of {spec.name!r} cannot be downloaded automatically. "
                             f"{_by_hand(spec, entry)}")
        if "drive.google.com/drive/folders" in f.url:
            raise ValueError(f"the weights {entry.name!r} of {spec.name!r} are in a Google Drive folder "
                             f"({f.url}), which cannot be fetched automatically. {_by_hand(spec, entry)}")
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=_ensure(cache_dir())) as tmpdir:
        folder = Path(tmpdir) / entry.name
        folder.mkdir()
        for f in entry.files:
            host = urlparse(f.url).hostname or ""
            is_drive = host.endswith("drive.google.com")
            if is_drive:
                try:
                    import gdown
                except ImportError:
                    raise ValueError(
                        f"the weights {entry.name!r} of {spec.name!r} are on Google Drive ({f.url}); downloading "
                        f"them needs the optional package gdown (pip install 'inpaint-plugin[fetch]'). Or: {_by_hand(spec, entry)}"
                    ) from None
            if host and urlparse(f.url).scheme in ("http", "https") and not _network_reachable(f.url, timeout):
                raise ValueError(f"cannot reach {host} (no network within {timeout:g} s): nothing was downloaded. "
                                 f"On a machine with internet run 'inpaint-plugin weights fetch {spec.name}', or "
                                 f"get the weights by hand: {_by_hand(spec, entry)}")
            local = folder / f.filename
            try:
                if is_drive:
                    got = gdown.download(f.url, str(local), quiet=not progress, fuzzy=True)
                    if not got or not local.is_file():
                        raise OSError("gdown could not download the file (Google Drive may ask for a "
                                      "confirmation or limit the downloads)")
                else:
                    import pooch

                    pooch.retrieve(f.url, known_hash=f"sha256:{f.sha256}" if f.sha256 else None,
                                   fname=f.filename, path=str(folder), downloader=_downloader(timeout, progress))
            except Exception as e:
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ValueError(f"could not download {f.url}: {msg}. {_by_hand(spec, entry)}") from None
            if f.sha256 and sha256_file(local) != f.sha256.lower():
                raise ValueError(f"{f.url}: the downloaded file does not have the expected sha256 {f.sha256}; "
                                 f"nothing was imported")
        got = folder if entry.folder else folder / entry.files[0].filename
        source = entry.files[0].url if len(entry.files) == 1 else ", ".join(f.url for f in entry.files)
        info = import_weights(spec.name, got, source=source, entry=entry)
        shutil.rmtree(folder, ignore_errors=True)
    return info


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
