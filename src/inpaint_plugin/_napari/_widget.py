"""The "Inpaint" dock widget.

Choose an image layer, a mask (a Labels layer, a Shapes layer rasterized on the image grid, the
NaNs of the image, or detected defects where :func:`inpaint_plugin.detect` exists), a method and
its parameters (built from the method's metadata), and the scope (current slice or whole stack for
nD data). Run fills the holes in a napari ``thread_worker``: the progress bar advances per slice,
Cancel stops after the current slice without touching any layer, and errors appear as napari
notifications. The result goes to an image layer named ``"<image> inpainted"`` (updated on re-run)
with the input's geometry and display settings, and the method and parameters in its metadata.

Nothing heavy (torch, ...) is imported here: a deep method imports it when it runs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton

from .. import __version__, iter_inpaint, methods
from ._masks import check_mask_shape, current_index, detector, level0, shapes_to_mask, spatial_shape, take_region
from ._params import params_container, read_params

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

    image: Any  # the image or the current slice of it (may be a lazy dask array)
    mask: Any  # bool array, None (fill the NaNs) or DETECT_SOURCE
    method: str
    params: dict
    channel_axis: Optional[int]
    index: tuple = ()  # leading-axis indices of the slice; () for the whole image
    base: Any = None  # full array that receives the filled slice (when index is not empty)
    detect: Optional[Callable] = None


@dataclass
class _Target:
    """Where the result goes (used in the main thread only)."""

    name: str
    rgb: bool
    geometry: dict
    display: dict
    record: dict
    update_slice: bool


@dataclass
class _Outcome:
    """The worker's return value: the result, or the error to report."""

    result: Any = None
    error: Optional[BaseException] = None


class _Nothing(Exception):
    """Raised while preparing a run when there is nothing to fill (reported as a warning)."""


def _run_job(job: _Job):
    """Generator run by the thread worker: yields ``(done, total)`` and returns an :class:`_Outcome`.

    Exceptions are returned rather than raised, so that the widget shows them as a notification
    instead of napari's traceback dialog.
    """
    try:
        image, mask = job.image, job.mask
        if mask is None:  # the NaNs of the image
            image = np.asarray(image)
            if not np.isnan(image).any():
                return _Outcome(error=_Nothing("the image has no NaNs; nothing to inpaint"))
        elif isinstance(mask, str) and mask == DETECT_SOURCE:
            image = np.asarray(image)
            kwargs = {} if job.channel_axis is None else {"channel_axis": job.channel_axis}
            mask = np.asarray(job.detect(image, **kwargs), dtype=bool)
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
        self._target: Optional[_Target] = None
        self._published = False

        self._image = ComboBox(name="image", label="image", choices=self._image_choices,
                               tooltip="Image layer to repair")
        self._mask = ComboBox(name="mask", label="mask", choices=self._mask_choices,
                              tooltip="Pixels to fill: a Labels layer (any label), a Shapes layer "
                                      "(rasterized on the image grid), or the NaNs of a float image")
        self._method = ComboBox(name="method", label="method", choices=self._method_choices)
        self._info = Label(name="info", label=" ")
        self._info.native.setWordWrap(True)
        self._params = Container(name="params")
        self._scope = ComboBox(name="scope", label="scope", choices=[CURRENT_SLICE, WHOLE_STACK], value=WHOLE_STACK,
                               tooltip="nD data: fill only the slice shown in the viewer, or every slice")
        self._run_button = PushButton(name="run_button", text="Run")
        self._cancel_button = PushButton(name="cancel_button", text="Cancel", enabled=False)
        self._progress = ProgressBar(name="progress", label="", min=0, max=1, value=0, visible=False)
        self._progress.native.setFormat("%v / %m")
        self.extend([self._image, self._mask, self._method, self._info, self._params, self._scope,
                     self._run_button, self._cancel_button, self._progress])

        self._method.changed.connect(self._on_method_changed)
        self._image.changed.connect(self._on_image_changed)
        self._run_button.changed.connect(self.start)
        self._cancel_button.changed.connect(self.cancel)
        self._on_method_changed()
        self._on_image_changed()

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

    def _on_image_changed(self, *_) -> None:
        layer = self._image.value
        self._scope.visible = layer is not None and len(spatial_shape(layer)) > 2

    # --- state -----------------------------------------------------------------------------------

    @property
    def worker(self):
        """The running thread worker, or None when idle."""
        return self._worker

    def _set_running(self, running: bool) -> None:
        for widget in (self._image, self._mask, self._method, self._params, self._scope, self._run_button):
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
        self._target = target
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
        mask, mask_text = self._mask_for(source, layer, spatial, index)

        base = None
        update_slice = bool(index)
        if index:
            previous = self._output_layer(layer.name + OUTPUT_SUFFIX)
            if previous is not None and previous.data.shape == data.shape and previous.data.dtype == data.dtype:
                base = previous.data
            else:
                base, update_slice = data, False
        job = _Job(image=data[index] if index else data, mask=mask, method=backend.name, params=params,
                   channel_axis=channel_axis, index=index, base=base,
                   detect=detector() if source == DETECT_SOURCE else None)
        record = {
            "method": backend.name,
            "params": {**{p.name: p.default for p in backend.params}, **params},
            "mask": mask_text,
            "scope": CURRENT_SLICE if index else (WHOLE_STACK if nlead > 0 else "whole image"),
            "slice": list(index) if index else None,
            "source": layer.name,
            "inpaint_plugin_version": __version__,
        }
        target = _Target(
            name=layer.name + OUTPUT_SUFFIX,
            rgb=bool(layer.rgb),
            geometry={"scale": layer.scale, "translate": layer.translate, "rotate": layer.rotate,
                      "shear": layer.shear, "affine": layer.affine},
            display={"colormap": layer.colormap, "contrast_limits": layer.contrast_limits, "gamma": layer.gamma},
            record=record,
            update_slice=update_slice,
        )
        return job, target

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

    def _publish(self, result: np.ndarray) -> None:
        """Put ``result`` into the output layer (created, or updated when it exists)."""
        target = self._target
        previous = self._output_layer(target.name)
        history = list(previous.metadata.get("inpaint_history", [])) if previous is not None else []
        history = history + [target.record] if target.update_slice else [target.record]
        metadata = {"inpaint": target.record, "inpaint_history": history}
        if previous is not None and previous.rgb == target.rgb and previous.data.ndim == result.ndim:
            previous.data = result
            for key, value in target.geometry.items():
                setattr(previous, key, value)
            previous.metadata = metadata
            return
        if previous is not None:
            self._viewer.layers.remove(previous)
        self._viewer.add_image(result, name=target.name, rgb=target.rgb, metadata=metadata,
                               **target.geometry, **target.display)
