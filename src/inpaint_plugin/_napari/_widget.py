"""The "Inpaint" dock widget.

Choose an image layer, a mask (a Labels layer, a Shapes layer rasterized on the image grid, the
NaNs of the image, or detected defects where :func:`inpaint_plugin.detect` exists), a method and
its parameters (built from the method's metadata), and the scope (current slice or whole stack for
nD data). Run fills the holes in a napari ``thread_worker``: the progress bar advances per slice,
Cancel stops after the current slice without touching any layer, and errors appear as napari
notifications. The result goes to an image layer named ``"<image> inpainted"`` (updated on re-run)
with the input's geometry and display settings, and the method and parameters in its metadata.

Lazy layers (dask or zarr data, multiscale pyramids) are never read into memory: the mask is
built as a dask array on the image's chunks, the worker calls the tiled dask inpainting (which
scans image and mask once, chunk by chunk, to find the holes) and the output layer holds the lazy
result, of which napari computes only the tiles it shows; a multiscale layer gives a multiscale
output, each level filled on its own. The progress bar stays busy during the scan, and Cancel
stops it at the next chunk (with dask's local schedulers). The "current slice" scope takes the
slice lazily, so only that plane is read. "Detected defects" needs the image in memory and is
not available for lazy layers.

Nothing heavy (torch, ...) is imported here: a deep method imports it when it runs.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, ProgressBar, PushButton

from .. import __version__, iter_inpaint, methods
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
CURRENT_SLICE = "current slice"
WHOLE_STACK = "whole stack"
OUTPUT_SUFFIX = " inpainted"


@dataclass
class _Job:
    """What the worker thread needs: arrays and plain values only, no layers."""

    image: Any  # the image or the current slice of it; for lazy layers a list of dask levels
    mask: Any  # bool array (dask for lazy layers), None (fill the NaNs) or DETECT_SOURCE
    method: str
    params: dict
    channel_axis: Optional[int]
    index: tuple = ()  # leading-axis indices of the slice; () for the whole image
    base: Any = None  # full array(s) that receive the filled slice (when index is not empty)
    detect: Optional[Callable] = None
    detect_kwargs: dict = field(default_factory=dict)  # kinds and thresholds of detect()
    lazy: bool = False  # dask path: image, base are lists of dask arrays (one per pyramid level)
    nothing: str = ""  # the message when the lazy path finds nothing to fill
    cancel: threading.Event = field(default_factory=threading.Event)  # set by Cancel: stop the dask scan


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


class _Cancelled(Exception):
    """Raised inside a dask computation of the worker when Cancel was pressed."""


class _Nothing(Exception):
    """Raised while preparing a run when there is nothing to fill (reported as a warning)."""


def _run_job(job: _Job):
    """Generator run by the thread worker: yields ``(done, total)`` and returns an :class:`_Outcome`.

    Exceptions are returned rather than raised, so that the widget shows them as a notification
    instead of napari's traceback dialog.
    """
    if job.lazy:
        return (yield from _run_lazy(job))
    try:
        image, mask = job.image, job.mask
        if mask is None:  # the NaNs of the image
            image = np.asarray(image)
            if not np.isnan(image).any():
                return _Outcome(error=_Nothing("the image has no NaNs; nothing to inpaint"))
        elif isinstance(mask, str) and mask == DETECT_SOURCE:
            image = np.asarray(image)
            kwargs = {} if job.channel_axis is None else {"channel_axis": job.channel_axis}
            mask = np.asarray(job.detect(image, **job.detect_kwargs, **kwargs), dtype=bool)
            if not mask.any():
                kinds = ", ".join(job.detect_kwargs.get("kinds", ()))
                return _Outcome(error=_Nothing(f"no defects detected ({kinds}); nothing to inpaint"))
        result = yield from iter_inpaint(image, mask, job.method, channel_axis=job.channel_axis, **job.params)
        if job.index:
            full = np.array(job.base, copy=True)
            full[job.index] = result
            result = full
    except Exception as exc:  # reported to the user by the widget
        if not isinstance(exc, (ValueError, TypeError)):
            log.warning("inpainting with %r failed", job.method, exc_info=True)
        return _Outcome(error=exc)
    return _Outcome(result=result)


def _replace_region(base, index: tuple, region):
    """A lazy copy of the dask array ``base`` whose region ``index`` is ``region`` (``base`` is not changed)."""
    out = base.copy()
    out[index] = region
    return out


def _run_lazy(job: _Job):
    """The dask path of :func:`_run_job`: builds the lazy result; only the scan for holes runs here.

    Yields ``(1, 1)`` once the lazy result is built, so that a Cancel pressed during the scan
    stops the worker before the result is returned. A dask callback raises :class:`_Cancelled` in
    this thread's computations as soon as Cancel is pressed, so the scan stops at its next chunk.
    """
    from dask.callbacks import Callback

    from .. import inpaint
    from .._dask import inpaint_multiscale

    thread = threading.get_ident()

    def stop_when_cancelled(key, dsk, state):
        if job.cancel.is_set() and threading.get_ident() == thread:
            raise _Cancelled()

    kwargs = {} if job.channel_axis is None else {"channel_axis": job.channel_axis}
    try:
        with Callback(pretask=stop_when_cancelled):
            if len(job.image) > 1:
                result = inpaint_multiscale(job.image, job.mask, job.method, **kwargs, **job.params)
            else:
                result = [inpaint(job.image[0], job.mask, job.method, **kwargs, **job.params)]
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
    yield (1, 1)
    return _Outcome(result=result if len(result) > 1 else result[0])


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

        self._image = ComboBox(name="image", label="image", choices=self._image_choices,
                               tooltip="Image layer to repair")
        self._mask = ComboBox(name="mask", label="mask", choices=self._mask_choices,
                              tooltip="Pixels to fill: a Labels layer (any label), a Shapes layer "
                                      "(rasterized on the image grid), or the NaNs of a float image")
        self._method = ComboBox(name="method", label="method", choices=self._method_choices)
        self._detect = self._detect_controls()
        self._info = Label(name="info", label=" ")
        self._info.native.setWordWrap(True)
        self._params = Container(name="params")
        self._scope = ComboBox(name="scope", label="scope", choices=[CURRENT_SLICE, WHOLE_STACK], value=WHOLE_STACK,
                               tooltip="nD data: fill only the slice shown in the viewer, or every slice")
        self._run_button = PushButton(name="run_button", text="Run")
        self._cancel_button = PushButton(name="cancel_button", text="Cancel", enabled=False)
        self._progress = ProgressBar(name="progress", label="", min=0, max=1, value=0, visible=False)
        self._progress.native.setFormat("%v / %m")
        self.extend([self._image, self._mask, self._detect, self._method, self._info, self._params, self._scope,
                     self._run_button, self._cancel_button, self._progress])

        self._mask.changed.connect(self._on_mask_changed)
        self._method.changed.connect(self._on_method_changed)
        self._image.changed.connect(self._on_image_changed)
        self._run_button.changed.connect(self.start)
        self._cancel_button.changed.connect(self.cancel)
        self._on_method_changed()
        self._on_image_changed()
        self._on_mask_changed()

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
            if layer is None:
                raise ValueError("image: choose an image layer")
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
        from napari.layers import Labels, Shapes

        layers = list(self._viewer.layers)
        choices = [(f"{layer.name} (Labels)", layer) for layer in layers if isinstance(layer, Labels)]
        choices += [(f"{layer.name} (Shapes)", layer) for layer in layers if isinstance(layer, Shapes)]
        choices.append(("NaNs of the image", NAN_SOURCE))
        if detector() is not None:
            choices.append(("detected defects", DETECT_SOURCE))
        return choices

    def _method_choices(self, _widget=None) -> list:
        return list(methods())

    def reset_choices(self, *args) -> None:
        """Refresh the layer and method lists (napari calls this when layers change).

        When the first Labels or Shapes layer appears, it becomes the mask (instead of the NaNs).
        """
        had_layers = any(not isinstance(choice, str) for choice in self._mask.choices)
        super().reset_choices(*args)
        if not had_layers and isinstance(self._mask.value, str):
            first = next((choice for choice in self._mask.choices if not isinstance(choice, str)), None)
            if first is not None:
                self._mask.value = first
        self._on_image_changed()

    # --- reactions -------------------------------------------------------------------------------

    def _on_method_changed(self, *_) -> None:
        backend = methods().get(self._method.value)
        new = params_container(backend) if backend is not None else Container(name="params")
        new.visible = len(new) > 0
        index = self.index(self._params)
        self.remove(self._params)
        self.insert(index, new)
        self._params = new
        if backend is None:
            self._info.value = ""
            return
        text = backend.description
        if backend.needs_weights:
            text += " (deep network: needs trained weights)"
        if backend.spatial_ndim == 2:
            text += " [2-D: stacks are filled slice by slice]"
        self._info.value = text
        self._method.tooltip = text

    def _on_mask_changed(self, *_) -> None:
        self._detect.visible = isinstance(self._mask.value, str) and self._mask.value == DETECT_SOURCE

    def _on_image_changed(self, *_) -> None:
        layer = self._image.value
        self._scope.visible = layer is not None and len(spatial_shape(layer)) > 2

    # --- state -----------------------------------------------------------------------------------

    @property
    def worker(self):
        """The running thread worker, or None when idle."""
        return self._worker

    def _set_running(self, running: bool) -> None:
        for widget in (self._image, self._mask, self._detect, self._method, self._params, self._scope,
                       self._run_button):
            widget.enabled = not running
        self._cancel_button.enabled = running
        self._progress.visible = running
        if running:
            self._progress.native.setRange(0, 0)  # busy until the first slice reports

    # --- running ---------------------------------------------------------------------------------

    def start(self, *_) -> None:
        """Start inpainting with the current settings (the Run button)."""
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error, show_warning

        if self._worker is not None:
            return
        try:
            job, target = self._prepare()
        except _Nothing as nothing:
            show_warning(f"Inpaint: {nothing}")
            return
        except (TypeError, ValueError) as exc:
            show_error(f"Inpaint: {exc}")
            return
        self._target, self._job = target, job
        self._published = False
        worker = create_worker(_run_job, job, _start_thread=False)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._set_running(True)
        worker.start()

    def cancel(self, *_) -> None:
        """Stop the running job after its current slice; no layer is created or changed (Cancel)."""
        if self._worker is not None:
            self._worker.quit()
            self._job.cancel.set()
            self._cancel_button.enabled = False

    def _prepare(self):
        """Collect the inputs from the widgets and layers (main thread); raises on invalid settings."""
        layer = self._image.value
        if layer is None:
            raise ValueError("image: choose an image layer")
        backend = methods().get(self._method.value)
        if backend is None:
            raise ValueError(f"method: {self._method.value!r} is not available")
        params = read_params(self._params, backend)

        data = level0(layer)
        spatial = spatial_shape(layer)
        channel_axis = -1 if layer.rgb else None
        nlead = len(spatial) - 2
        index = ()
        if nlead > 0 and self._scope.value == CURRENT_SLICE:
            index = current_index(layer, self._viewer.dims.point, nlead)

        source = self._mask.value
        if is_lazy(layer):
            job, mask_text, update_slice = self._prepare_lazy(layer, source, index)
            job.method, job.params, job.channel_axis = backend.name, params, channel_axis
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
            job = _Job(image=data[index] if index else data, mask=mask, method=backend.name, params=params,
                       channel_axis=channel_axis, index=index, base=base,
                       detect=detector() if detecting else None,
                       detect_kwargs=self._detect_kwargs() if detecting else {})
        record = {
            "method": backend.name,
            "params": {**{p.name: p.default for p in backend.params}, **params},
            "mask": mask_text,
            "detect": job.detect_kwargs or None,
            "scope": CURRENT_SLICE if index else (WHOLE_STACK if nlead > 0 else "whole image"),
            "slice": list(index) if index else None,
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
        from napari.layers import Labels, Shapes

        levels = [as_dask(level) for level in (layer.data if layer.multiscale else [layer.data])]
        rgb = bool(layer.rgb)
        spatial = spatial_shape(layer)
        chunks = spatial_chunks(levels[0], rgb)
        where = f"the slice {index}" if index else "the image"
        if source is None:
            raise ValueError("mask: choose a Labels or Shapes layer, or 'NaNs of the image'")
        if isinstance(source, str) and source == NAN_SOURCE:
            if np.dtype(levels[0].dtype).kind != "f":
                raise ValueError(f"mask: image layer {layer.name!r} has dtype {levels[0].dtype} and cannot hold "
                                 "NaNs; choose a Labels or Shapes layer as mask")
            mask, text = None, "NaNs of the image"
            nothing = f"the image has no NaNs{f' in {where}' if index else ''}; nothing to inpaint"
        elif isinstance(source, str) and source == DETECT_SOURCE:
            raise ValueError(f"mask: 'detected defects' needs the whole image in memory; image layer {layer.name!r} "
                             "is lazy (dask, zarr or multiscale): use a Labels or Shapes layer as mask")
        elif isinstance(source, Labels):
            array = level0(source)
            check_mask_shape(array.shape, spatial, f"mask layer {source.name!r}")
            mask, text = lazy_mask(array, chunks), f"Labels layer {source.name!r}"
        elif isinstance(source, Shapes):
            mask, text = shapes_to_lazy_mask(source, layer, chunks), f"Shapes layer {source.name!r}"
        else:
            raise TypeError(f"mask: unsupported mask source {source!r}")
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
        from napari.layers import Labels, Shapes

        where = f"the slice {index}" if index else "the image"
        if source is None:
            raise ValueError("mask: choose a Labels or Shapes layer, or 'NaNs of the image'")
        if isinstance(source, str) and source == NAN_SOURCE:
            if np.dtype(level0(layer).dtype).kind != "f":
                raise ValueError(f"mask: image layer {layer.name!r} has dtype {level0(layer).dtype} and cannot hold "
                                 "NaNs; choose a Labels or Shapes layer as mask")
            return None, "NaNs of the image"
        if isinstance(source, str) and source == DETECT_SOURCE:
            return DETECT_SOURCE, "detected defects"
        if isinstance(source, Labels):
            array = level0(source)
            check_mask_shape(array.shape, spatial, f"mask layer {source.name!r}")
            text = f"Labels layer {source.name!r}"
        elif isinstance(source, Shapes):
            array = shapes_to_mask(source, layer)
            text = f"Shapes layer {source.name!r}"
        else:
            raise TypeError(f"mask: unsupported mask source {source!r}")
        mask = take_region(array, spatial, index) != 0
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

    def _on_progress(self, progress) -> None:
        done, total = progress
        self._progress.native.setRange(0, total)
        self._progress.value = done

    def _on_returned(self, outcome: _Outcome) -> None:
        from napari.utils.notifications import show_error, show_warning

        if outcome.cancelled:
            return
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
