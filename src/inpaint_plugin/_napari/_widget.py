"""The "Inpaint" dock widget.

Choose an image layer, a mask (a Labels layer, a Shapes layer rasterized on the image grid, the
NaNs of a float image, or detected defects where :func:`inpaint_plugin.detect` exists), a method
(or "auto", which picks one and shows its choice) and its parameters (built from the method's
metadata), and for stacks the scope (current slice or whole stack) and how a stack is filled
(jointly in nD, or frame by frame). The mask offered first fits the image: a Labels layer of its
shape (or of its frame shape: a 2-D mask applies to every frame of a stack), a Shapes layer, the
NaNs of a float image, detected defects for an integer image.

Run fills the holes in a napari thread worker. ``inpaint(..., progress=callback)`` reports every
unit of work (a slice, and inside deep methods a crop, tile or batch); the callback sends it to
the progress bar and raises a private exception once Cancel was pressed, so a run stops at its
next unit without touching any layer. Errors appear as napari notifications. The result goes to
an image layer named ``"<image> inpainted"`` (updated on re-run) with the input's geometry and
display settings, and the method and parameters in its metadata.

Deep methods: the info text says whether weights are present (given in the weights field, or in
the weights cache) and the licence of the official weights; "Import weights…" puts a checkpoint
file or folder into the cache (the same function as ``inpaint-plugin weights import``). A run
that needs missing weights is refused before any worker starts.

Lazy layers (dask or zarr data, multiscale pyramids) are never read into memory: the mask is
built as a dask array on the image's chunks, the worker calls the tiled dask inpainting (which
scans image and mask once, chunk by chunk, to find the holes) and the output layer holds the lazy
result, of which napari computes only the tiles it shows; a multiscale layer gives a multiscale
output, each level filled on its own. The progress bar counts the chunks of the scan (all levels
of a pyramid together), and Cancel stops it at the next chunk (with dask's local schedulers); the
chunks filled later, as napari computes tiles of the result, are not reported (the run is over by
then, and its callback does nothing any more). The "current slice" scope takes the
slice lazily, so only that plane is read. "Detected defects" and "auto" need the image in memory
and are not offered for lazy layers.

Nothing heavy (torch, ...) is imported here: a deep method imports it when it runs.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, ProgressBar, PushButton

from .. import __version__, inpaint, methods
from ._masks import (
    as_dask,
    check_mask_shape,
    current_index,
    detector,
    is_lazy,
    lazy_mask,
    level0,
    shapes_to_lazy_mask,
    shapes_to_mask,
    spatial_chunks,
    spatial_shape,
    take_region,
)
from ._params import param_widget, params_container, read_params, read_values

__all__ = ["InpaintWidget"]

log = logging.getLogger(__name__)

NAN_SOURCE = "nan"
DETECT_SOURCE = "detect"
AUTO = "auto"
CURRENT_SLICE = "current slice"
WHOLE_STACK = "whole stack"
JOINT = "jointly (nD)"
PER_FRAME = "frame by frame"
OUTPUT_SUFFIX = " inpainted"
AUTO_TEXT = ("auto: tries the quick methods on small trials around the holes and fills with the best "
             "(no deep or slow methods); its choice shows here after the run")
#: Leading axis labels that mean independent frames (filled frame by frame by default).
TIME_LABELS = ("t", "time", "frame", "frames")


@dataclass
class _Job:
    """What the worker thread needs: arrays and plain values only, no layers."""

    image: Any  # the image or the current slice of it; for lazy layers a list of dask levels
    mask: Any  # bool array (dask for lazy layers), None (fill the NaNs) or DETECT_SOURCE
    method: str  # a registered method or AUTO
    params: dict
    channel_axis: Optional[int]
    index: tuple = ()  # leading-axis indices of the slice; () for the whole image
    base: Any = None  # full array(s) that receive the filled slice (when index is not empty)
    per_slice: Optional[bool] = None  # stacks: True frame by frame, False jointly in nD (in-memory layers)
    detect: Optional[Callable] = None
    detect_kwargs: dict = field(default_factory=dict)  # kinds and thresholds of detect()
    lazy: bool = False  # dask path: image, base are lists of dask arrays (one per pyramid level)
    nothing: str = ""  # the message when the lazy path finds nothing to fill
    cancel: threading.Event = field(default_factory=threading.Event)  # set by Cancel
    report: Callable[[str, int, int], Any] = lambda phase, done, total: None  # progress to the GUI thread


@dataclass
class _Target:
    """Where the result goes (used in the main thread only)."""

    name: str
    rgb: bool
    multiscale: bool
    geometry: dict
    display: dict
    record: dict
    update_slice: bool


@dataclass
class _Outcome:
    """The worker's return value: the result, or the error to report."""

    result: Any = None
    error: Optional[BaseException] = None
    cancelled: bool = False
    method: str = ""  # the method that filled (the choice of "auto")


class _Cancelled(Exception):
    """Raised in the worker's progress callback (and dask callback) once Cancel was pressed."""


class _Nothing(Exception):
    """Raised while preparing a run when there is nothing to fill (reported as a warning)."""


def _progress_callback(job: _Job, phase: str = "fill") -> Callable[[int, int], None]:
    """``progress(done, total)`` for the library's functions: stops the run once Cancel was pressed
    (by raising :class:`_Cancelled`, which the library lets through), else sends the numbers and the
    ``phase`` ("detect", "auto: trials", "fill") to the GUI thread."""

    def progress(done: int, total: int) -> None:
        if job.cancel.is_set():
            raise _Cancelled()
        job.report(phase, int(done), int(total))

    return progress


def _with_progress(func, progress) -> dict:
    """``{"progress": progress}`` when ``func`` takes a ``progress(done, total)`` callback, else ``{}``
    (e.g. an older ``detect``): the same rule as the command line's progress bars."""
    import inspect

    try:
        param = inspect.signature(func).parameters.get("progress")
    except (TypeError, ValueError):
        return {}
    return {} if param is None or isinstance(param.default, bool) else {"progress": progress}


def _run_job(job: _Job) -> _Outcome:
    """Run by the thread worker: fills the job's image and returns an :class:`_Outcome`.

    Exceptions are returned rather than raised, so that the widget shows them as a notification
    instead of napari's traceback dialog; a cancelled run returns ``_Outcome(cancelled=True)``.
    """
    if job.lazy:
        return _run_lazy(job)
    method = job.method
    try:
        image, mask = job.image, job.mask
        if mask is None:  # the NaNs of the image
            image = np.asarray(image)
            if not np.isnan(image).any():
                return _Outcome(error=_Nothing("the image has no NaNs; nothing to inpaint"))
        elif isinstance(mask, str) and mask == DETECT_SOURCE:
            image = np.asarray(image)
            kwargs = {} if job.channel_axis is None else {"channel_axis": job.channel_axis}
            kwargs.update(_with_progress(job.detect, _progress_callback(job, "detect")))
            mask = np.asarray(job.detect(image, **job.detect_kwargs, **kwargs), dtype=bool)
            if not mask.any():
                kinds = ", ".join(job.detect_kwargs.get("kinds", ()))
                return _Outcome(error=_Nothing(f"no defects detected ({kinds}); nothing to inpaint"))
        if method == AUTO:  # the choice inpaint(method="auto") makes, with progress and Cancel during the trials
            from .._evaluate import choose_method

            trials = _with_progress(choose_method, _progress_callback(job, "auto: trials"))
            if trials:
                method = choose_method(image, mask, channel_axis=job.channel_axis, accepts=tuple(job.params),
                                       **trials)
        extra = {}
        if job.per_slice is not None and (job.per_slice or method != AUTO):
            extra["per_slice"] = job.per_slice  # "auto" may choose a 2-D method, which refuses per_slice=False
        result, method = inpaint(image, mask, method, channel_axis=job.channel_axis, progress=_progress_callback(job),
                                 return_method=True, **extra, **job.params)
        if job.index:
            full = np.array(job.base, copy=True)
            full[job.index] = result
            result = full
    except _Cancelled:
        return _Outcome(cancelled=True)
    except Exception as exc:  # reported to the user by the widget
        if job.cancel.is_set():
            return _Outcome(cancelled=True)
        if not isinstance(exc, (ValueError, TypeError)):
            log.warning("inpainting with %r failed", method, exc_info=True)
        return _Outcome(error=exc, method=method)
    return _Outcome(result=result, method=method)


def _replace_region(base, index: tuple, region):
    """A lazy copy of the dask array ``base`` whose region ``index`` is ``region`` (``base`` is not changed)."""
    out = base.copy()
    out[index] = region
    return out


class _ScanProgress:
    """The ``progress(done, total)`` callbacks of :func:`_run_lazy`: the scan of every level as one
    determinate count on the progress bar, Cancel as :class:`_Cancelled`, nothing after the run.

    :func:`inpaint_plugin._dask.inpaint_dask` counts one unit per chunk scanned (during the call,
    in the calling thread), then one per chunk with holes filled (later, from dask's threads, when
    napari computes tiles of the result); see its docstring. Like ``_ScanBar`` there, only the
    first ``n`` units of a level (its ``n`` scan chunks) are shown. :meth:`close`, called when
    :func:`_run_lazy` returns, makes every later call return at once: a finished job's progress
    bar is never touched and a tile computation never fails because of this callback.

    Parameters
    ----------
    job : _Job
        The lazy job (its ``cancel`` event and ``report`` function are used).
    sizes : sequence of int
        The number of chunks each level's scan counts, in the order the levels are filled.
    """

    def __init__(self, job: _Job, sizes):
        self.job = job
        self.sizes = [int(n) for n in sizes]
        self.total = sum(self.sizes)
        self.open = True

    def level(self, k: int) -> Callable[[int, int], None]:
        """The callback for the ``k``-th level's :func:`inpaint_dask` call."""
        offset, n = sum(self.sizes[:k]), self.sizes[k]

        def progress(done: int, total: int) -> None:
            if not self.open:  # the run is over: napari filling chunks of the result
                return
            if self.job.cancel.is_set():
                raise _Cancelled()
            self.job.report("scan", offset + min(int(done), n), self.total)

        return progress

    def close(self) -> None:
        """The run is over: later calls do nothing."""
        self.open = False


def _scan_chunks(array, channel_axis: Optional[int]) -> int:
    """How many chunks :func:`inpaint_dask` scans in the dask array ``array``: one per block, the
    chunks along the channel axis being merged into one."""
    blocks = list(array.numblocks)
    if channel_axis is not None and blocks:
        blocks[channel_axis % len(blocks)] = 1
    return int(np.prod(blocks, dtype=np.int64))


def _run_lazy(job: _Job) -> _Outcome:
    """The dask path of :func:`_run_job`: builds the lazy result; only the scan for holes runs here.

    The scan reports each chunk through :class:`_ScanProgress` (``inpaint(..., progress=)``), which
    raises :class:`_Cancelled` once Cancel was pressed; a dask callback also raises it in this
    thread's computations, so the scan stops at its next task even before a chunk finishes. A
    Cancel pressed after the scan still discards the result. Each level of a pyramid has its own
    callback (:func:`inpaint_multiscale` takes one per level).
    """
    from dask.callbacks import Callback

    from .._dask import inpaint_multiscale

    thread = threading.get_ident()

    def stop_when_cancelled(key, dsk, state):
        if job.cancel.is_set() and threading.get_ident() == thread:
            raise _Cancelled()

    kwargs = {} if job.channel_axis is None else {"channel_axis": job.channel_axis}
    scan = _ScanProgress(job, [_scan_chunks(level, job.channel_axis) for level in job.image])
    try:
        with Callback(pretask=stop_when_cancelled):
            if len(job.image) > 1:
                result = inpaint_multiscale(job.image, job.mask, job.method, **kwargs, **job.params,
                                            progress=[scan.level(k) for k in range(len(job.image))])
            else:
                result = [inpaint(job.image[0], job.mask, job.method, progress=scan.level(0), **kwargs,
                                  **job.params)]
        if result[0] is job.image[0]:  # the dask path returns its input when there is nothing to fill
            return _Outcome(error=_Nothing(job.nothing))
        if job.index:
            result = [_replace_region(base, job.index, level) for base, level in zip(job.base, result)]
    except Exception as exc:  # reported to the user by the widget
        if job.cancel.is_set():
            return _Outcome(cancelled=True)
        if not isinstance(exc, (ValueError, TypeError)):
            log.warning("inpainting with %r failed", job.method, exc_info=True)
        return _Outcome(error=exc)
    finally:
        scan.close()  # the chunks filled later, as napari computes tiles, are not this run's
    if job.cancel.is_set():
        return _Outcome(cancelled=True)
    return _Outcome(result=result if len(result) > 1 else result[0], method=job.method)


def _check_mask_source(source, layer, dtype) -> None:
    """The rules of the mask chooser, for the in-memory and the lazy paths alike: a source is chosen,
    it is a Labels or Shapes layer, the image's NaNs (a float image) or the detected defects."""
    from napari.layers import Labels, Shapes

    if source is None:
        raise ValueError("mask: choose a Labels or Shapes layer, or 'NaNs of the image'")
    if isinstance(source, str) and source == NAN_SOURCE:
        if np.dtype(dtype).kind != "f":
            raise ValueError(f"mask: image layer {layer.name!r} has dtype {dtype} and cannot hold "
                             "NaNs; choose a Labels or Shapes layer as mask")
    elif not (isinstance(source, (Labels, Shapes)) or (isinstance(source, str) and source == DETECT_SOURCE)):
        raise TypeError(f"mask: unsupported mask source {source!r}")


def _signal_relay():
    """A QObject with a ``progress(int, int)`` signal, made in the GUI thread.

    Emitting it from the worker thread runs the connected slot in the GUI thread (a queued
    connection), as napari's own worker signals do.
    """
    from qtpy.QtCore import QObject, Signal

    class _Relay(QObject):
        progress = Signal(str, int, int)

    return _Relay()


class InpaintWidget(Container):
    """Dock widget that inpaints an image layer of a napari viewer.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose layers are offered and which receives the result.
    """

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self._worker = None
        self._job: Optional[_Job] = None
        self._target: Optional[_Target] = None
        self._published = False
        self._importing = None  # the worker importing weights
        self._mask_by_user = False  # the user chose the mask source (kept while it fits the image)
        self._setting_mask = False
        self._auto_choice = ""  # what "auto" chose in the last run
        self._frames_for = None  # the image layer whose default the "stack" choice shows

        self._image = ComboBox(name="image", label="image", choices=self._image_choices,
                               tooltip="Image layer to repair")
        self._mask = ComboBox(name="mask", label="mask", choices=self._mask_choices,
                              tooltip="Pixels to fill: a Labels layer (any label; of the image's shape, or of "
                                      "its frame shape to apply to every frame), a Shapes layer (rasterized on "
                                      "the image grid), the NaNs of a float image, or detected defects")
        self._method = ComboBox(name="method", label="method", choices=self._method_choices)
        if "biharmonic" in self._method.choices:
            self._method.value = "biharmonic"
        self._detect = self._detect_controls()
        self._info = Label(name="info", label=" ")
        self._info.native.setWordWrap(True)
        self._import_button = self._import_controls()
        self._params = Container(name="params")
        self._scope = ComboBox(name="scope", label="scope", choices=[CURRENT_SLICE, WHOLE_STACK], value=WHOLE_STACK,
                               tooltip="nD data: fill only the slice shown in the viewer, or every slice")
        self._frames = ComboBox(name="frames", label="stack", choices=[JOINT, PER_FRAME], value=JOINT,
                                tooltip="Fill the stack as one nD volume (z-stacks with fine steps), or each 2-D "
                                        "frame on its own (time series, independent frames, coarse z). "
                                        "2-D methods always go frame by frame.")
        self._run_button = PushButton(name="run_button", text="Run")
        self._cancel_button = PushButton(name="cancel_button", text="Cancel", enabled=False)
        self._progress = ProgressBar(name="progress", label="", min=0, max=1, value=0, visible=False)
        self._progress.native.setFormat("%v / %m")
        self._relay = _signal_relay()
        self._relay.progress.connect(self._on_progress)
        self.extend([self._image, self._mask, self._detect, self._method, self._info, self._import_button,
                     self._params, self._scope, self._frames, self._run_button, self._cancel_button, self._progress])

        self._mask.changed.connect(self._on_mask_chosen)
        self._mask.changed.connect(self._on_mask_changed)
        self._method.changed.connect(self._on_method_changed)
        self._image.changed.connect(self._on_image_changed)
        self._scope.changed.connect(self._update_stack_controls)
        self._run_button.changed.connect(self.start)
        self._cancel_button.changed.connect(self.cancel)
        self._on_method_changed()
        self._on_image_changed()
        self._on_mask_changed()

    def _import_controls(self) -> PushButton:
        """The "Import weights…" button: a menu to choose a checkpoint file or folder (TensorFlow
        checkpoints, MEDFE) and import it into the weights cache (:meth:`import_weights`)."""
        from qtpy.QtWidgets import QMenu

        button = PushButton(name="import_button", text="Import weights…", visible=False,
                            tooltip="Check a checkpoint (file or folder) against the network and keep it in the "
                                    "weights cache, as 'inpaint-plugin weights import' does; later runs use it")
        menu = QMenu(button.native)
        menu.addAction("Checkpoint file…", lambda: self._ask_and_import(folder=False))
        menu.addAction("Checkpoint folder…", lambda: self._ask_and_import(folder=True))
        button.native.setMenu(menu)
        return button

    def _detect_controls(self) -> Container:
        """The settings of the "detected defects" mask source: one check box per kind of defect (the
        defaults of :func:`inpaint_plugin.detect` ticked), its thresholds, and a button that shows the
        detected mask as a Labels layer (to check or edit it before filling)."""
        from .._detect import DEFAULT_KINDS, KINDS, PARAMS

        widgets = [CheckBox(name=f"kind_{kind}", label=kind, value=kind in DEFAULT_KINDS, tooltip=text)
                   for kind, text in KINDS.items()]
        widgets += [param_widget(p) for p in PARAMS]
        show = PushButton(name="show_defects", text="Show detected defects",
                          tooltip="Add the detected mask as a Labels layer (edit it, then use it as the mask)")
        show.changed.connect(self.show_defects)
        widgets.append(show)
        return Container(name="detect", widgets=widgets, labels=True, visible=False)

    def _detect_kwargs(self) -> dict:
        """``kinds`` and thresholds for :func:`inpaint_plugin.detect` from the detect controls."""
        from .._detect import KINDS, PARAMS

        kinds = [kind for kind in KINDS if self._detect[f"kind_{kind}"].value]
        if not kinds:
            raise ValueError("detect: tick at least one kind of defect")
        return {"kinds": kinds, **read_values(self._detect, PARAMS, "detect")}

    def show_defects(self, *_) -> None:
        """Run :func:`inpaint_plugin.detect` on the image layer with the current settings and show the
        result as a Labels layer named ``"<image> defects"`` (updated in place on later clicks)."""
        from napari.utils.notifications import show_error, show_info

        layer = self._image.value
        try:
            self._chosen_image()
            if is_lazy(layer):
                raise ValueError(f"detect: image layer {layer.name!r} is lazy (dask, zarr or multiscale); "
                                 "detection needs the whole image in memory")
            kwargs = self._detect_kwargs()
            if layer.rgb:
                kwargs["channel_axis"] = -1
            mask = np.asarray(detector()(np.asarray(level0(layer)), **kwargs), dtype=bool)
        except (TypeError, ValueError) as exc:
            show_error(f"Inpaint: {exc}")
            return
        from napari.layers import Labels

        name = f"{layer.name} defects"
        labels = mask.astype(np.uint8)
        existing = next((lay for lay in self._viewer.layers if lay.name == name and isinstance(lay, Labels)), None)
        if existing is not None and existing.data.shape == labels.shape:
            existing.data = labels
        else:
            self._viewer.add_labels(labels, name=name, scale=layer.scale, translate=layer.translate,
                                    rotate=layer.rotate, shear=layer.shear, affine=layer.affine)
        show_info(f"Inpaint: {int(mask.sum())} defective pixels detected ({', '.join(kwargs['kinds'])})")

    # --- choices ---------------------------------------------------------------------------------

    def _image_choices(self, _widget=None) -> list:
        from napari.layers import Image

        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def _mask_choices(self, _widget=None) -> list:
        """Labels and Shapes layers, then "NaNs of the image" (float images) and "detected defects"
        (images in memory) when they fit the chosen image."""
        from napari.layers import Labels, Shapes

        layers = list(self._viewer.layers)
        choices = [(f"{layer.name} (Labels)", layer) for layer in layers if isinstance(layer, Labels)]
        choices += [(f"{layer.name} (Shapes)", layer) for layer in layers if isinstance(layer, Shapes)]
        image = getattr(self, "_image", None)
        layer = image.value if image is not None else None
        if layer is None or np.dtype(level0(layer).dtype).kind == "f":
            choices.append(("NaNs of the image", NAN_SOURCE))
        if detector() is not None and (layer is None or not is_lazy(layer)):
            choices.append(("detected defects", DETECT_SOURCE))
        return choices

    def _method_choices(self, _widget=None) -> list:
        """"auto" and the registered methods; a deep method without weights says so in its label."""
        from ._weights import weights_state

        choices = [(AUTO, AUTO)]
        for name, backend in methods().items():
            label = name
            if backend.needs_weights:
                state = weights_state(name, None)
                label = f"{name} ({'weights' if state is not None and state.ready else 'no weights'})"
            choices.append((label, name))
        return choices

    def _fits(self, source, layer) -> bool:
        """True when the mask source ``source`` can be used with image layer ``layer``."""
        from napari.layers import Labels

        if source is None or layer is None:
            return False
        if isinstance(source, str):
            if source == NAN_SOURCE:
                return np.dtype(level0(layer).dtype).kind == "f"
            return source == DETECT_SOURCE and not is_lazy(layer)
        if isinstance(source, Labels):
            try:
                check_mask_shape(level0(source).shape, spatial_shape(layer), "mask")
            except ValueError:
                return False
        return True

    def _default_mask(self, layer):
        """The mask source offered for ``layer``: a Labels layer that fits it (one named after the image
        first), a Shapes layer, the NaNs of a float image, detected defects; else the first choice."""
        from napari.layers import Labels, Shapes

        choices = list(self._mask.choices)
        if layer is None:
            return choices[0] if choices else None
        labels = [c for c in choices if isinstance(c, Labels) and self._fits(c, layer)]
        labels.sort(key=lambda c: not c.name.startswith(layer.name))
        shapes = [c for c in choices if isinstance(c, Shapes)]
        for candidate in (*labels, *shapes, NAN_SOURCE, DETECT_SOURCE):
            if candidate in choices and self._fits(candidate, layer):
                return candidate
        return choices[0] if choices else None

    def _choose_mask(self) -> None:
        """Keep the user's mask source while it fits the image, else offer the default."""
        layer = self._image.value
        if self._mask_by_user and self._fits(self._mask.value, layer):
            return
        default = self._default_mask(layer)
        if default is not None and default is not self._mask.value:
            before, self._setting_mask = self._setting_mask, True
            try:
                self._mask.value = default
            finally:
                self._setting_mask = before
        self._mask_by_user = False
        self._on_mask_changed()

    def reset_choices(self, *args) -> None:
        """Refresh the layer and method lists (napari calls this when layers change).

        The mask source then is the user's choice while it fits the image, else the default
        (:meth:`_default_mask`): e.g. a Labels layer added for the image becomes its mask.
        """
        before, self._setting_mask = self._setting_mask, True
        try:
            with self._method_kept():
                super().reset_choices(*args)
        finally:
            self._setting_mask = before
        self._on_image_changed()

    @contextlib.contextmanager
    def _method_kept(self):
        """Keep the chosen method (and its parameter values) while the method list is rebuilt: a deep
        method's label changes with its weights ("(no weights)" / "(weights)"), which makes the combo
        box fall back to its first item."""
        method = self._method.value
        with self._method.changed.blocked():
            yield
            if method in self._method.choices:
                self._method.value = method
        if self._method.value != method:
            self._on_method_changed()

    # --- reactions -------------------------------------------------------------------------------

    def _on_method_changed(self, *_) -> None:
        backend = methods().get(self._method.value)
        new = params_container(backend) if backend is not None else Container(name="params")
        new.visible = len(new) > 0
        index = self.index(self._params)
        self.remove(self._params)
        self.insert(index, new)
        self._params = new
        weights = next((w for w in new if w.name == "weights"), None)
        if weights is not None:
            weights.changed.connect(self._update_info)
        self._method.tooltip = backend.description if backend is not None else AUTO_TEXT
        self._import_button.visible = backend is not None and backend.needs_weights
        self._auto_choice = ""
        self._update_stack_controls()
        self._update_info()

    def _weights_state(self):
        from ._weights import weights_state

        backend = methods().get(self._method.value)
        if backend is None or not backend.needs_weights:
            return None
        field = next((w for w in self._params if w.name == "weights"), None)
        given = field.value if field is not None else None
        return weights_state(backend.name, None if given in (None, "") else str(given))

    def _update_info(self, *_) -> None:
        """The info text: what the method does, its weights and their licence (deep methods), how it
        fills a stack (2-D methods), and what "auto" chose in the last run. Each fact once."""
        from ._weights import licence_text

        backend = methods().get(self._method.value)
        if backend is None:
            lines = [AUTO_TEXT if self._method.value == AUTO else ""]
            if self._auto_choice:
                lines.append(f"auto chose: {self._auto_choice}")
        else:
            lines = [backend.description]
            state = self._weights_state()
            if state is not None:
                lines.append(state.text)
                licence = licence_text(backend.name)
                if licence:
                    lines.append(licence)
            layer = self._image.value
            if backend.spatial_ndim == 2 and layer is not None and len(spatial_shape(layer)) > 2:
                lines.append("2-D method: the stack is filled frame by frame")
        self._info.value = "\n".join(line for line in lines if line)

    def _on_mask_chosen(self, *_) -> None:
        if not self._setting_mask:
            self._mask_by_user = True

    def _on_mask_changed(self, *_) -> None:
        self._detect.visible = isinstance(self._mask.value, str) and self._mask.value == DETECT_SOURCE

    def _on_image_changed(self, *_) -> None:
        layer = self._image.value
        before, self._setting_mask = self._setting_mask, True
        try:
            self._mask.reset_choices()
        finally:
            self._setting_mask = before
        self._choose_mask()
        self._scope.visible = layer is not None and len(spatial_shape(layer)) > 2
        if layer is not self._frames_for:  # a new image: its default; the user's choice stays for the same one
            self._frames_for = layer
            self._frames.value = PER_FRAME if self._leading_axis_is_time(layer) else JOINT
        self._update_stack_controls()
        self._update_info()

    def _leading_axis_is_time(self, layer) -> bool:
        """True when the viewer labels the first axis of ``layer`` as time (t, time, frame)."""
        if layer is None or len(spatial_shape(layer)) < 3:
            return False
        labels = tuple(self._viewer.dims.axis_labels)
        offset = len(labels) - layer.ndim
        first = labels[offset] if 0 <= offset < len(labels) else ""
        return str(first).strip().lower() in TIME_LABELS

    def _update_stack_controls(self, *_) -> None:
        """The "stack" choice (jointly in nD / frame by frame) for whole stacks and nD methods only."""
        layer = self._image.value
        backend = methods().get(self._method.value)
        stack = (layer is not None and len(spatial_shape(layer)) > 2 and self._scope.value == WHOLE_STACK
                 and not is_lazy(layer))  # lazy stacks are filled chunk by chunk, as the method works
        self._frames.visible = stack and (backend is None or backend.spatial_ndim is None)

    # --- state -----------------------------------------------------------------------------------

    @property
    def worker(self):
        """The running thread worker, or None when idle."""
        return self._worker

    def _set_running(self, running: bool) -> None:
        for widget in (self._image, self._mask, self._detect, self._method, self._params, self._scope,
                       self._frames, self._import_button, self._run_button):
            widget.enabled = not running
        self._cancel_button.enabled = running
        self._progress.visible = running
        if running:
            self._progress.native.setRange(0, 0)  # busy until the first unit of work reports
            self._progress.native.setFormat("%v / %m")

    # --- weights ---------------------------------------------------------------------------------

    def _ask_and_import(self, folder: bool) -> None:
        """Ask for a checkpoint file (``folder=False``) or folder and import it (the button's menu)."""
        path = self._ask_weights_path(folder)
        if path:
            self.import_weights(path)

    def _ask_weights_path(self, folder: bool) -> str:
        """A file or folder dialog; ``""`` when the user cancels."""
        from qtpy.QtWidgets import QFileDialog

        title = f"Weights for {self._method.value}"
        if folder:
            return QFileDialog.getExistingDirectory(self.native, title)
        path, _ = QFileDialog.getOpenFileName(self.native, title)
        return path

    def import_weights(self, path) -> None:
        """Import the checkpoint ``path`` (file or folder) for the chosen deep method into the weights
        cache, in a thread worker, with :func:`inpaint_plugin.deep.import_weights` (the
        function behind ``inpaint-plugin weights import``): it checks every key and shape against the
        network and refuses NaN weights. The info text then shows the imported weights; errors are
        notifications."""
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error, show_info

        backend = methods().get(self._method.value)
        if backend is None or not backend.needs_weights or self._importing is not None or self._worker is not None:
            return
        method = backend.name

        def work():
            from ..deep._manage import import_weights

            try:
                return import_weights(method, path), None
            except Exception as exc:  # shown to the user
                return None, exc

        def done(outcome):
            info, exc = outcome
            if exc is not None:
                kind = "" if isinstance(exc, (ValueError, TypeError)) else f" ({type(exc).__name__})"
                show_error(f"Inpaint: importing weights for {method} failed{kind}: {exc}")
            else:
                show_info(f"Inpaint: weights imported for {method} ({info['path']})")

        def finished():
            self._importing = None
            with self._method_kept():
                self._method.reset_choices()  # the method's label: "(weights)"
            self._run_button.enabled = self._worker is None
            self._import_button.enabled = self._worker is None
            self._update_info()

        worker = create_worker(work, _start_thread=False)
        worker.returned.connect(done)
        worker.finished.connect(finished)
        self._importing = worker
        self._run_button.enabled = self._import_button.enabled = False
        self._info.value = f"importing weights for {method} from {path} …"
        worker.start()

    @property
    def importing(self):
        """The thread worker importing weights, or None."""
        return self._importing

    # --- running ---------------------------------------------------------------------------------

    def start(self, *_) -> None:
        """Start inpainting with the current settings (the Run button)."""
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error, show_warning

        if self._worker is not None or self._importing is not None:
            return
        try:
            job, target = self._prepare()
        except _Nothing as nothing:
            show_warning(f"Inpaint: {nothing}")
            return
        except (TypeError, ValueError) as exc:
            show_error(f"Inpaint: {exc}")
            return
        job.report = self._relay.progress.emit
        self._target, self._job = target, job
        self._published = False
        worker = create_worker(_run_job, job, _start_thread=False)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._set_running(True)
        worker.start()

    def cancel(self, *_) -> None:
        """Stop the running job at its next unit of work (slice, crop, tile, chunk); no layer is
        created or changed (Cancel)."""
        if self._worker is not None:
            self._worker.quit()
            self._job.cancel.set()
            self._cancel_button.enabled = False

    def _chosen_image(self):
        """The chosen image layer; a ValueError naming the control when there is none."""
        layer = self._image.value
        if layer is None:
            raise ValueError("image: choose an image layer")
        return layer

    def _prepare(self):
        """Collect the inputs from the widgets and layers (main thread); raises on invalid settings."""
        layer = self._chosen_image()
        name = self._method.value
        backend = methods().get(name)
        if backend is None and name != AUTO:
            raise ValueError(f"method: {name!r} is not available")
        params = read_params(self._params, backend) if backend is not None else {}
        state = self._weights_state()
        if state is not None and not state.ready:
            raise ValueError(state.problem)

        data = level0(layer)
        spatial = spatial_shape(layer)
        channel_axis = -1 if layer.rgb else None
        nlead = len(spatial) - 2
        index = ()
        if nlead > 0 and self._scope.value == CURRENT_SLICE:
            index = current_index(layer, self._viewer.dims.point, nlead)
        per_slice = None
        if nlead > 0 and not index and not is_lazy(layer) and (backend is None or backend.spatial_ndim is None):
            per_slice = self._frames.value == PER_FRAME

        source = self._mask.value
        if is_lazy(layer):
            if backend is None:
                raise ValueError(f"method: 'auto' needs the whole image in memory; image layer {layer.name!r} "
                                 "is lazy (dask, zarr or multiscale): choose a method")
            job, mask_text, update_slice = self._prepare_lazy(layer, source, index)
            job.method, job.params, job.channel_axis, job.per_slice = backend.name, params, channel_axis, per_slice
        else:
            mask, mask_text = self._mask_for(source, layer, spatial, index)
            base = None
            update_slice = bool(index)
            if index:
                previous = self._output_layer(layer.name + OUTPUT_SUFFIX)
                if previous is not None and previous.data.shape == data.shape and previous.data.dtype == data.dtype:
                    base = previous.data
                else:
                    base, update_slice = data, False
            detecting = isinstance(source, str) and source == DETECT_SOURCE
            job = _Job(image=data[index] if index else data, mask=mask, method=name, params=params,
                       channel_axis=channel_axis, index=index, base=base, per_slice=per_slice,
                       detect=detector() if detecting else None,
                       detect_kwargs=self._detect_kwargs() if detecting else {})
        defaults = {p.name: p.default for p in backend.params} if backend is not None else {}
        record = {
            "method": name,
            "params": {**defaults, **params},
            "mask": mask_text,
            "detect": job.detect_kwargs or None,
            "scope": CURRENT_SLICE if index else (WHOLE_STACK if nlead > 0 else "whole image"),
            "slice": list(index) if index else None,
            "per_slice": per_slice,
            "source": layer.name,
            "inpaint_plugin_version": __version__,
        }
        target = _Target(
            name=layer.name + OUTPUT_SUFFIX,
            rgb=bool(layer.rgb),
            multiscale=bool(layer.multiscale),
            geometry={"scale": layer.scale, "translate": layer.translate, "rotate": layer.rotate,
                      "shear": layer.shear, "affine": layer.affine},
            display={"colormap": layer.colormap, "contrast_limits": layer.contrast_limits, "gamma": layer.gamma},
            record=record,
            update_slice=update_slice,
        )
        return job, target

    def _prepare_lazy(self, layer, source, index: tuple):
        """The job for a lazy (dask, zarr, multiscale) layer: dask arrays only, nothing is read.

        Returns the job (its method, parameters and channel axis are set by the caller), the mask's
        description and whether a previous output layer receives the slice ``index``.
        """
        from napari.layers import Labels

        levels = [as_dask(level) for level in (layer.data if layer.multiscale else [layer.data])]
        rgb = bool(layer.rgb)
        spatial = spatial_shape(layer)
        chunks = spatial_chunks(levels[0], rgb)
        where = f"the slice {index}" if index else "the image"
        _check_mask_source(source, layer, levels[0].dtype)
        if isinstance(source, str) and source == NAN_SOURCE:
            mask, text = None, "NaNs of the image"
            nothing = f"the image has no NaNs{f' in {where}' if index else ''}; nothing to inpaint"
        elif isinstance(source, str) and source == DETECT_SOURCE:
            raise ValueError(f"mask: 'detected defects' needs the whole image in memory; image layer {layer.name!r} "
                             "is lazy (dask, zarr or multiscale): use a Labels or Shapes layer as mask")
        elif isinstance(source, Labels):
            array = level0(source)
            check_mask_shape(array.shape, spatial, f"mask layer {source.name!r}")
            mask, text = lazy_mask(array, chunks), f"Labels layer {source.name!r}"
        else:
            mask, text = shapes_to_lazy_mask(source, layer, chunks), f"Shapes layer {source.name!r}"
        if mask is not None:
            nothing = f"the mask ({text}) is empty in {where}; nothing to inpaint"

        base, update_slice = None, bool(index)
        if index:
            lead = spatial[:len(index)]
            if any(tuple(level.shape[:len(index)]) != lead for level in levels):
                raise ValueError(f"scope: the levels of the multiscale layer {layer.name!r} do not all have the "
                                 f"leading shape {lead}; choose '{WHOLE_STACK}'")
            previous = self._output_layer(layer.name + OUTPUT_SUFFIX)
            old = None
            if previous is not None and bool(previous.multiscale) == bool(layer.multiscale):
                old = list(previous.data) if previous.multiscale else [previous.data]
            if old is not None and [(a.shape, a.dtype) for a in old] == [(a.shape, a.dtype) for a in levels]:
                base = [as_dask(a, chunks=b.chunks) for a, b in zip(old, levels)]
            else:
                base, update_slice = levels, False
            levels = [level[index] for level in levels]
            mask = None if mask is None else mask[index]
        job = _Job(image=levels, mask=mask, method="", params={}, channel_axis=None, index=index, base=base,
                   lazy=True, nothing=nothing)
        return job, text, update_slice

    def _mask_for(self, source, layer, spatial: tuple, index: tuple):
        """The mask for the region ``index`` of ``layer`` and a description of where it came from."""
        from napari.layers import Labels

        where = f"the slice {index}" if index else "the image"
        _check_mask_source(source, layer, level0(layer).dtype)
        if isinstance(source, str) and source == NAN_SOURCE:
            return None, "NaNs of the image"
        if isinstance(source, str) and source == DETECT_SOURCE:
            return DETECT_SOURCE, "detected defects"
        if isinstance(source, Labels):
            array = level0(source)
            check_mask_shape(array.shape, spatial, f"mask layer {source.name!r}")
            text = f"Labels layer {source.name!r}"
        else:
            array = shapes_to_mask(source, layer)
            text = f"Shapes layer {source.name!r}"
        mask = take_region(array, spatial, index, broadcast=False) != 0  # a frame-shaped mask stays 2-D
        if not mask.any():
            raise _Nothing(f"the mask ({text}) is empty in {where}; nothing to inpaint")
        return mask, text

    def _output_layer(self, name: str):
        """The image layer called ``name`` that a previous run created, if any."""
        from napari.layers import Image

        for layer in self._viewer.layers:
            if layer.name == name and isinstance(layer, Image) and "inpaint" in layer.metadata:
                return layer
        return None

    # --- worker signals (main thread) ------------------------------------------------------------

    def _on_progress(self, phase: str, done: int, total: int) -> None:
        if self._worker is None or total <= 0:
            return
        self._progress.native.setFormat(f"{phase} %v / %m")
        self._progress.native.setRange(0, total)
        self._progress.value = min(done, total)

    def _on_returned(self, outcome: _Outcome) -> None:
        from napari.utils.notifications import show_error, show_info, show_warning

        if outcome.cancelled:
            return
        if self._target.record["method"] == AUTO and outcome.method and outcome.method != AUTO:
            self._auto_choice = outcome.method
            self._target.record.update(method=outcome.method, requested="auto")
            self._update_info()
            show_info(f"Inpaint: auto chose {outcome.method}")
        if isinstance(outcome.error, _Nothing):
            show_warning(f"Inpaint: {outcome.error}")
            return
        if outcome.error is not None:
            exc = outcome.error
            kind = "" if isinstance(exc, (ValueError, TypeError)) else f" ({type(exc).__name__})"
            show_error(f"Inpaint: {self._target.record['method']} failed{kind}: {exc}")
            return
        self._publish(outcome.result)
        self._published = True

    def _on_finished(self) -> None:
        from napari.utils.notifications import show_info

        cancelled = self._worker is not None and self._worker.abort_requested and not self._published
        self._worker = None
        self._set_running(False)
        if cancelled:
            show_info("Inpaint: cancelled; no layer was changed")

    def _publish(self, result) -> None:
        """Put ``result`` into the output layer (created, or updated when it exists).

        ``result`` is a numpy or dask array, or a list of dask arrays for a multiscale layer. The
        display settings (contrast limits included) are the input layer's, so a lazy result is
        never computed to find them.
        """
        target = self._target
        previous = self._output_layer(target.name)
        history = list(previous.metadata.get("inpaint_history", [])) if previous is not None else []
        history = history + [target.record] if target.update_slice else [target.record]
        metadata = {"inpaint": target.record, "inpaint_history": history}
        ndim = result[0].ndim if target.multiscale else result.ndim
        if (previous is not None and previous.rgb == target.rgb and bool(previous.multiscale) == target.multiscale
                and level0(previous).ndim == ndim):
            previous.data = result
            for key, value in target.geometry.items():
                setattr(previous, key, value)
            previous.metadata = metadata
            return
        if previous is not None:
            self._viewer.layers.remove(previous)
        self._viewer.add_image(result, name=target.name, rgb=target.rgb, multiscale=target.multiscale,
                               metadata=metadata, **target.geometry, **target.display)
