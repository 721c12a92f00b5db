"""The napari plugin with a real viewer: manifest, sample data, dock widget runs, cancel, errors.

Runs under Xvfb (pytest-xvfb); each test opens the widget through the plugin's manifest.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

import inpaint_plugin  # noqa: E402
from inpaint_plugin import Backend, Param, hookimpl, inpaint  # noqa: E402
from inpaint_plugin import data as sample  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "src" / "inpaint_plugin" / "napari.yaml"
WAIT_MS = 60_000


# --- helpers (the viewer_widget and notes fixtures are in conftest.py) ------------------------------

def run(qtbot, widget):
    """Click Run and wait until the worker has finished."""
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)


def ramp(shape, seed=0):
    """A smooth float image with some texture (so filled values differ from the damage)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    return (sum(np.sin(3 * g + i) for i, g in enumerate(grids)) + 0.05 * rng.random(shape)).astype(np.float32)


class GatedPlugin:
    """A test plugin with a 2-D method that has one parameter of every kind.

    Its function records the parameters it receives and waits for ``gate`` (set by default), so a
    test can hold a run in its first slice to cancel it.
    """

    def __init__(self):
        self.calls = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    @hookimpl
    def inpaint_plugin_backends(self):
        params = (
            Param("iterations", "int", 3, "number of passes", min=1, max=10),
            Param("strength", "float", 0.125, "blend factor", min=0.0, max=1.0),
            Param("smooth", "bool", True, "smooth the fill"),
            Param("mode", "str", "mean", "fill value", choices=("mean", "zero")),
            Param("weights", "path", None, "checkpoint"),
            Param("seed", "int", None, "random seed"),
        )
        return [Backend("test-gated", self.fill, "test method (mean fill)", spatial_ndim=2, params=params)]

    def fill(self, image, mask, **params):
        self.calls.append(params)
        self.entered.set()
        assert self.gate.wait(30)
        out = image.copy()
        out[mask] = image[~mask].mean(axis=0) if params["mode"] == "mean" else 0.0
        return out


@pytest.fixture
def gated():
    plugin = GatedPlugin()
    inpaint_plugin.register(plugin, name="tests.napari.gated")
    yield plugin
    plugin.gate.set()
    inpaint_plugin.unregister(name="tests.napari.gated")


# --- manifest and sample data ------------------------------------------------------------------------

def test_manifest_is_valid_and_installed():
    import npe2

    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "inpaint-plugin"
    manifest.validate_imports()  # every python_name resolves
    assert {w.display_name for w in manifest.contributions.widgets} == {"Inpaint"}
    assert {s.key for s in manifest.contributions.sample_data} == {"damaged_cell", "damaged_ihc", "nodata_stripes"}
    # the entry point of the installed package finds the same manifest, as does the top-level symlink
    assert npe2.PluginManifest.from_distribution("inpaint-plugin").name == manifest.name
    assert (REPO / "napari.yaml").resolve() == MANIFEST.resolve()


def test_sample_data(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("inpaint-plugin", "damaged_cell")
    image, mask = sample.damaged_cell()
    assert [layer.name for layer in viewer.layers] == ["damaged cell", "damaged cell mask"]
    np.testing.assert_array_equal(viewer.layers["damaged cell"].data, image)
    np.testing.assert_array_equal(viewer.layers["damaged cell mask"].data != 0, mask)
    viewer.open_sample("inpaint-plugin", "damaged_ihc")
    assert viewer.layers["damaged IHC"].rgb


# --- runs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["damaged_cell", "damaged_ihc"])
def test_run_on_sample_keeps_geometry_and_display(viewer_widget, qtbot, notes, key):
    viewer, widget = viewer_widget
    viewer.open_sample("inpaint-plugin", key)
    layer, labels = viewer.layers[0], viewer.layers[1]
    layer.scale, layer.translate = (0.5, 0.25), (10.0, -3.0)
    if not layer.rgb:
        layer.colormap, layer.contrast_limits = "magma", (20, 200)
    widget.image.value, widget.mask.value, widget.method.value = layer, labels, "biharmonic"
    assert widget.scope.native.isHidden()  # 2-D data: no scope choice

    run(qtbot, widget)

    out = viewer.layers[f"{layer.name} inpainted"]
    image, mask = np.asarray(layer.data), labels.data != 0
    expected = inpaint(image, mask, "biharmonic", channel_axis=-1 if layer.rgb else None)
    assert out.data.dtype == image.dtype
    np.testing.assert_array_equal(out.data[~mask], image[~mask])  # known pixels exact
    np.testing.assert_array_equal(out.data, expected)  # holes filled as by the API
    assert not np.array_equal(out.data[mask], image[mask])
    np.testing.assert_allclose(out.scale, layer.scale)
    np.testing.assert_allclose(out.translate, layer.translate)
    assert out.rgb == layer.rgb
    assert out.colormap.name == layer.colormap.name
    np.testing.assert_allclose(out.contrast_limits, layer.contrast_limits)
    assert out.metadata["inpaint"]["method"] == "biharmonic"
    assert out.metadata["inpaint"]["mask"] == f"Labels layer {labels.name!r}"
    assert [s for s, _ in notes() if s == "error"] == []

    # a re-run updates the same output layer instead of adding one
    n_layers = len(viewer.layers)
    run(qtbot, widget)
    assert len(viewer.layers) == n_layers
    assert viewer.layers[f"{layer.name} inpainted"] is out


def test_nans_of_the_image(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    viewer.open_sample("inpaint-plugin", "nodata_stripes")
    layer = viewer.layers[0]
    widget.image.value, widget.mask.value = layer, "nan"
    run(qtbot, widget)
    out = viewer.layers[f"{layer.name} inpainted"].data
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, inpaint(layer.data, None, "biharmonic"))


def test_params_built_from_metadata(viewer_widget, qtbot, notes, gated):
    viewer, widget = viewer_widget
    image = ramp((24, 30))
    mask = np.zeros(image.shape, np.uint8)
    mask[5:9, 10:14] = 1
    layer = viewer.add_image(image)
    viewer.add_labels(mask)
    widget.reset_choices()
    assert "test-gated" in widget.method.choices  # methods registered later appear
    widget.method.value = "test-gated"

    params = widget.params
    kinds = {w.name: type(w).__name__ for w in params}
    assert kinds == {"iterations": "SpinBox", "strength": "FloatSpinBox", "smooth": "CheckBox", "mode": "ComboBox",
                     "weights": "FileEdit", "seed": "LineEdit"}
    assert (params.iterations.value, params.iterations.min, params.iterations.max) == (3, 1, 10)
    assert params.strength.value == 0.125  # not rounded by the spin box
    assert params.mode.choices == ("mean", "zero")
    assert params.weights.value is None and params.seed.value == ""

    params.iterations.value, params.strength.value, params.smooth.value = 7, 0.5, False
    params.mode.value, params.seed.value = "zero", "42"
    run(qtbot, widget)
    assert gated.calls == [{"iterations": 7, "strength": 0.5, "smooth": False, "mode": "zero", "weights": None,
                            "seed": 42}]
    out = viewer.layers[f"{layer.name} inpainted"]
    assert out.metadata["inpaint"]["params"] == gated.calls[0]

    # an invalid value is reported, nothing runs
    params.seed.value = "many"
    run(qtbot, widget)
    assert len(gated.calls) == 1
    assert any("parameter 'seed' of method 'test-gated' must be an int" in m for m in _errors(notes))

    np.testing.assert_array_equal(out.data, inpaint(image, mask, "test-gated", **gated.calls[0]))


def test_cancel_leaves_no_layer(viewer_widget, qtbot, notes, gated):
    viewer, widget = viewer_widget
    stack = np.stack([ramp((20, 20), seed=i) for i in range(4)])
    mask = np.zeros(stack.shape, np.uint8)
    mask[:, 8:12, 8:12] = 1
    viewer.add_image(stack, name="stack")
    viewer.add_labels(mask)
    widget.reset_choices()
    widget.method.value, widget.scope.value = "test-gated", "whole stack"
    gated.gate.clear()

    widget.run_button.native.click()
    assert gated.entered.wait(30)  # the worker is inside the first slice
    assert widget.cancel_button.enabled and not widget.run_button.enabled
    widget.cancel_button.native.click()
    gated.gate.set()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)

    assert len(gated.calls) == 1  # stopped after the current slice
    assert [layer.name for layer in viewer.layers] == ["stack", "mask"]
    assert ("info", "Inpaint: cancelled; no layer was changed") in notes()
    assert widget.run_button.enabled and not widget.cancel_button.enabled

    # run to the end: the 2-D method runs once per slice and the progress bar counts the slices
    run(qtbot, widget)
    assert len(gated.calls) == 1 + 4
    assert (widget.progress.value, widget.progress.native.maximum()) == (4, 4)
    assert "stack inpainted" in viewer.layers


def _errors(notes):
    return [message for severity, message in notes() if severity == "error"]


def test_error_wrong_mask_shape(viewer_widget, qtbot, notes):
    viewer, widget = viewer_widget
    viewer.add_image(ramp((20, 20)), name="img")
    viewer.add_labels(np.ones((10, 10), np.uint8), name="small")
    widget.reset_choices()
    assert widget.mask.value == "nan"  # the default fits the image: not a Labels layer of another shape
    widget.mask.value = viewer.layers["small"]
    run(qtbot, widget)
    (message,) = _errors(notes)
    assert "mask layer 'small' has shape (10, 10)" in message
    assert [layer.name for layer in viewer.layers] == ["img", "small"]


def test_error_in_worker_is_a_notification(viewer_widget, qtbot, notes):
    viewer, widget = viewer_widget
    viewer.add_image(ramp((20, 20)), name="img")
    viewer.add_labels(np.ones((20, 20), np.uint8), name="everything")
    widget.reset_choices()
    run(qtbot, widget)
    (message,) = _errors(notes)
    assert "mask covers the whole image" in message
    assert [layer.name for layer in viewer.layers] == ["img", "everything"]
    assert widget.run_button.enabled


def test_nan_mask_needs_a_float_image_and_empty_mask_warns(viewer_widget, qtbot, notes):
    viewer, widget = viewer_widget
    viewer.add_image(np.zeros((20, 20), np.uint8), name="int")
    viewer.add_labels(np.zeros((20, 20), np.uint8), name="empty")
    widget.reset_choices()
    assert "nan" not in widget.mask.choices  # an integer image has no NaNs to offer
    assert widget.mask.value is viewer.layers["empty"]
    run(qtbot, widget)
    assert ("warning", "Inpaint: the mask (Labels layer 'empty') is empty in the image; nothing to inpaint") in notes()
    assert len(viewer.layers) == 2


def test_shapes_mask_is_rasterized_on_the_image_grid(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    image = ramp((40, 50))
    image[10:21, 10:21] = 5.0  # damage where the rectangle lies
    layer = viewer.add_image(image, scale=(2, 2), translate=(10, 20))
    # world rectangle rows 30..50, cols 40..60 -> image pixels rows 10..20, cols 10..20
    viewer.add_shapes([np.array([[30, 40], [30, 60], [50, 60], [50, 40]])], shape_type="rectangle", name="rect")
    widget.reset_choices()
    widget.mask.value = viewer.layers["rect"]
    run(qtbot, widget)

    expected_mask = np.zeros(image.shape, bool)
    expected_mask[10:21, 10:21] = True
    out = viewer.layers[f"{layer.name} inpainted"]
    np.testing.assert_array_equal(out.data, inpaint(image, expected_mask, "biharmonic"))
    assert out.data[10:21, 10:21].max() < 5.0
    assert out.metadata["inpaint"]["mask"] == "Shapes layer 'rect'"


def test_stack_current_slice_and_whole_stack(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    stack = np.stack([ramp((24, 24), seed=i) for i in range(4)])
    mask = np.zeros(stack.shape, np.uint8)
    for z in range(4):
        mask[z, 4 + z:9 + z, 6:12] = 1
    stack[mask != 0] = 9.0
    original = stack.copy()
    layer = viewer.add_image(stack, name="stack", scale=(3, 1, 1))
    viewer.add_labels(mask, name="holes", scale=(3, 1, 1))
    widget.reset_choices()
    assert not widget.scope.native.isHidden()
    out_name = "stack inpainted"

    widget.scope.value = "current slice"
    viewer.dims.set_current_step(0, 2)
    run(qtbot, widget)
    out = viewer.layers[out_name]
    np.testing.assert_array_equal(out.data[2], inpaint(stack[2], mask[2], "biharmonic"))
    np.testing.assert_array_equal(out.data[[0, 1, 3]], stack[[0, 1, 3]])  # other slices untouched
    assert out.metadata["inpaint"]["slice"] == [2]
    np.testing.assert_allclose(out.scale, (3, 1, 1))

    viewer.dims.set_current_step(0, 0)
    run(qtbot, widget)  # fills slice 0 into the same layer, keeps slice 2
    assert viewer.layers[out_name] is out
    np.testing.assert_array_equal(out.data[0], inpaint(stack[0], mask[0], "biharmonic"))
    np.testing.assert_array_equal(out.data[2], inpaint(stack[2], mask[2], "biharmonic"))
    np.testing.assert_array_equal(out.data[[1, 3]], stack[[1, 3]])
    assert [r["slice"] for r in out.metadata["inpaint_history"]] == [[2], [0]]

    widget.scope.value = "whole stack"
    run(qtbot, widget)  # biharmonic is nD: one 3-D solve
    np.testing.assert_array_equal(out.data, inpaint(stack, mask, "biharmonic"))
    assert out.metadata["inpaint"]["scope"] == "whole stack"
    assert len(out.metadata["inpaint_history"]) == 1

    # a 2-D mask applies to every slice of the stack
    viewer.add_labels(mask[1], name="flat")
    widget.reset_choices()
    widget.mask.value = viewer.layers["flat"]
    run(qtbot, widget)
    np.testing.assert_array_equal(out.data, inpaint(stack, np.broadcast_to(mask[1], stack.shape), "biharmonic"))
    np.testing.assert_array_equal(layer.data, original)  # the input layer is never modified


def test_gui_does_not_import_torch():
    """Building the widget and every method's parameter form must not import torch."""
    code = (
        "import sys\n"
        "from napari.components import ViewerModel\n"
        "from inpaint_plugin._napari._widget import InpaintWidget\n"
        "import inpaint_plugin\n"
        "w = InpaintWidget(ViewerModel())\n"
        "for name in inpaint_plugin.methods():\n"
        "    w.method.value = name\n"
        "    assert w.info.value, name\n"
        "assert 'torch' not in sys.modules\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_detected_defects_mask_source(viewer_widget, qtbot):
    """"detected defects" uses the real ``inpaint_plugin.detect`` as the mask."""
    viewer, widget = viewer_widget
    image = (ramp((30, 30)) * 40 + 100).astype(np.uint8)
    hot = np.zeros(image.shape, bool)
    hot[3:28:7, 2:28:5] = True
    image[hot] = 255  # isolated hot pixels
    detected = inpaint_plugin.detect(image)
    assert detected[hot].all()  # the detector really finds them
    layer = viewer.add_image(image, name="hot")
    widget.reset_choices()
    assert "detect" in widget.mask.choices
    widget.mask.value = "detect"
    run(qtbot, widget)
    out = viewer.layers["hot inpainted"]
    np.testing.assert_array_equal(out.data, inpaint(image, detected, "biharmonic"))
    assert out.metadata["inpaint"]["mask"] == "detected defects"
    assert layer.data.max() == 255 and out.data.max() < 255


# --- lazy layers: dask, multiscale -------------------------------------------------------------------

class ReadCounter:
    """A read-only array-like that records the index of every read (as dask's ``from_array`` does).

    ``gate`` (set by default) is waited for before each read, so a test can hold a run in its scan.
    """

    def __init__(self, array):
        self.array = array
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.reads = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __getitem__(self, key):
        self.entered.set()
        assert self.gate.wait(30)
        self.reads.append(key)
        return self.array[key]

    def planes_read(self) -> set:
        """Indices along the first axis of every non-empty read."""
        out = set()
        for key in self.reads:
            first = key[0]
            if isinstance(first, slice):
                out.update(range(*first.indices(self.shape[0])))
            else:
                out.add(int(first))
        return out


def counted_dask(array, chunks):
    """A dask array over ``array`` that records its reads in ``.counter`` (the meta read is forgotten)."""
    import dask.array as da

    counter = ReadCounter(array)
    lazy = da.from_array(counter, chunks=chunks)
    counter.reads.clear()
    return lazy, counter


class CountingPlugin:
    """The biharmonic method under another name, recording the spatial shape of every image it fills."""

    def __init__(self):
        self.shapes = []

    @hookimpl
    def inpaint_plugin_backends(self):
        import dataclasses

        from inpaint_plugin.backends.biharmonic import (
            BACKENDS,  # not get_backend: this hook builds the registry
        )

        (biharmonic,) = [b for b in BACKENDS if b.name == "biharmonic"]

        def fill(image, mask, **params):
            self.shapes.append(mask.shape)
            return biharmonic.func(image, mask, **params)

        return [dataclasses.replace(biharmonic, name="test-counting", func=fill)]


@pytest.fixture
def counting():
    plugin = CountingPlugin()
    inpaint_plugin.register(plugin, name="tests.napari.counting")
    yield plugin
    inpaint_plugin.unregister(name="tests.napari.counting")


def test_dask_layer_is_filled_lazily(viewer_widget, qtbot, notes, counting):
    import dask.array as da

    viewer, widget = viewer_widget
    image = ramp((64, 64))
    mask = np.zeros(image.shape, np.uint8)
    mask[20:24, 22:26] = 1  # inside chunk (1, 1) of 16 x 16 chunks
    image[mask != 0] = 7.0
    lazy, counter = counted_dask(image, chunks=16)
    viewer.add_image(lazy, name="big", contrast_limits=(-2.0, 3.0), colormap="viridis")
    viewer.add_labels(mask, name="holes")
    widget.reset_choices()
    widget.method.value = "test-counting"
    run(qtbot, widget)
    assert _errors(notes) == []

    out = viewer.layers["big inpainted"]
    assert isinstance(out.data, da.Array) and not out.multiscale
    assert out.data.chunks == lazy.chunks
    assert out.colormap.name == "viridis"
    np.testing.assert_allclose(out.contrast_limits, (-2.0, 3.0))  # the input's, not computed

    # a chunk far from the hole is the input chunk: reading it fills nothing, reads nothing else
    counting.shapes.clear()
    counter.reads.clear()
    np.testing.assert_array_equal(np.asarray(out.data[48:, 48:]), image[48:, 48:])
    assert counting.shapes == []
    assert counter.reads == [(slice(48, 64), slice(48, 64))]

    # the whole result equals the in-memory one; the method only saw the window around the hole
    result = np.asarray(out.data)
    expected = inpaint(np.asarray(lazy), mask, "biharmonic")
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result[mask == 0], image[mask == 0])
    margin = inpaint_plugin.get_backend("biharmonic").margin
    assert counting.shapes and all(h <= 4 + 2 * margin and w <= 4 + 2 * margin for h, w in counting.shapes)
    assert out.metadata["inpaint"]["method"] == "test-counting"


def test_dask_stack_current_slice_reads_one_plane(viewer_widget, qtbot, notes):
    import dask.array as da

    viewer, widget = viewer_widget
    stack = np.stack([ramp((32, 32), seed=i) for i in range(4)])
    mask = np.zeros(stack.shape, np.uint8)
    mask[:, 10:14, 12:18] = 1
    lazy, counter = counted_dask(stack, chunks=(1, 16, 16))
    viewer.add_image(lazy, name="stack")
    viewer.add_labels(da.from_array(mask, chunks=(1, 16, 16)), name="holes")  # a dask mask too
    widget.reset_choices()
    widget.scope.value = "current slice"
    viewer.dims.set_current_step(0, 2)
    counter.reads.clear()
    run(qtbot, widget)
    assert _errors(notes) == []

    out = viewer.layers["stack inpainted"]
    assert isinstance(out.data, da.Array)
    np.testing.assert_allclose(np.asarray(out.data[2]), inpaint(stack[2], mask[2], "biharmonic"), rtol=0, atol=1e-6)
    assert counter.planes_read() == {2}  # the run and the displayed plane read slice 2 only
    np.testing.assert_array_equal(np.asarray(out.data[[0, 1, 3]]), stack[[0, 1, 3]])
    assert out.metadata["inpaint"]["slice"] == [2]


def test_multiscale_layer_gives_multiscale_output(viewer_widget, qtbot, notes):
    import dask.array as da

    viewer, widget = viewer_widget
    full = ramp((64, 64))
    coarse = full.reshape(32, 2, 32, 2).mean(axis=(1, 3))
    mask = np.zeros(full.shape, np.uint8)
    mask[30:35, 40:45] = 1
    levels = [da.from_array(full, chunks=16), da.from_array(coarse, chunks=16)]
    layer = viewer.add_image(levels, multiscale=True, name="pyramid", contrast_limits=(-1.0, 2.5))
    viewer.add_labels(mask, name="holes")
    widget.reset_choices()
    run(qtbot, widget)
    assert _errors(notes) == []

    out = viewer.layers["pyramid inpainted"]
    assert out.multiscale and len(out.data) == 2
    assert all(isinstance(level, da.Array) for level in out.data)
    np.testing.assert_allclose(out.contrast_limits, layer.contrast_limits)
    np.testing.assert_allclose(np.asarray(out.data[0]), inpaint(full, mask, "biharmonic"), rtol=0, atol=1e-6)
    coarse_mask = mask.reshape(32, 2, 32, 2).any(axis=(1, 3))  # a coarse pixel covering any hole is a hole
    np.testing.assert_allclose(np.asarray(out.data[1]), inpaint(coarse, coarse_mask, "biharmonic"), rtol=0, atol=1e-6)

    run(qtbot, widget)  # a re-run updates the multiscale output layer
    assert viewer.layers["pyramid inpainted"] is out and out.multiscale


def test_nans_of_a_dask_image(viewer_widget, qtbot, notes):
    import dask.array as da

    viewer, widget = viewer_widget
    image = ramp((48, 48))
    image[:, 20:22] = np.nan  # a dead column crossing three chunks
    viewer.add_image(da.from_array(image, chunks=16), name="nodata", contrast_limits=(-1.0, 2.0))
    widget.reset_choices()
    widget.mask.value = "nan"
    run(qtbot, widget)
    assert _errors(notes) == []
    out = viewer.layers["nodata inpainted"]
    assert isinstance(out.data, da.Array)
    result = np.asarray(out.data)
    assert np.isfinite(result).all()
    np.testing.assert_allclose(result, inpaint(image, None, "biharmonic"), rtol=0, atol=1e-6)

    # a dask image without NaNs: a warning, no new layer
    viewer.layers.remove(out)
    viewer.add_image(da.from_array(ramp((32, 32)), chunks=16), name="clean")
    widget.reset_choices()
    widget.image.value, widget.mask.value = viewer.layers["clean"], "nan"
    run(qtbot, widget)
    assert ("warning", "Inpaint: the image has no NaNs; nothing to inpaint") in notes()
    assert "clean inpainted" not in viewer.layers


def test_cancel_during_the_dask_scan_leaves_no_layer(viewer_widget, qtbot, notes):
    viewer, widget = viewer_widget
    image = ramp((32, 32))
    mask = np.zeros(image.shape, np.uint8)
    mask[5:9, 5:9] = 1
    lazy, counter = counted_dask(image, chunks=16)
    viewer.add_image(lazy, name="slow", contrast_limits=(-1.0, 2.0))
    viewer.add_labels(mask, name="holes")
    widget.reset_choices()
    counter.entered.clear()
    counter.gate.clear()
    widget.run_button.native.click()
    assert counter.entered.wait(30)  # the worker's scan is waiting for a chunk
    assert widget.progress.native.maximum() == 0  # busy until the first chunk of the scan is done
    widget.cancel_button.native.click()
    counter.gate.set()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert [layer.name for layer in viewer.layers] == ["slow", "holes"]
    assert ("info", "Inpaint: cancelled; no layer was changed") in notes()
    assert _errors(notes) == []


def test_lazy_shapes_mask_equals_the_full_rasterization(make_napari_viewer):
    from inpaint_plugin._napari._masks import shapes_to_lazy_mask, shapes_to_mask

    viewer = make_napari_viewer()
    layer = viewer.add_image(np.zeros((3, 60, 70), np.float32), scale=(1, 2, 2), translate=(0, 10, 20))
    shapes = viewer.add_shapes(
        [np.array([[30, 40], [30, 60], [50, 60], [50, 40]]),  # rectangle
         np.array([[60, 80], [60, 110], [90, 110], [90, 80]]),  # ellipse
         np.array([[20, 30], [100, 190], [40, 170]])],  # path, leaving the image
        shape_type=["rectangle", "ellipse", "path"])
    chunks = ((1, 1, 1), (16, 16, 16, 12), (32, 32, 6))
    expected = shapes_to_mask(shapes, layer)
    assert expected.shape == (60, 70) and expected.sum() > 100
    lazy = shapes_to_lazy_mask(shapes, layer, chunks)
    assert lazy.chunks == chunks
    np.testing.assert_array_equal(np.asarray(lazy), np.broadcast_to(expected, (3, 60, 70)))


def test_detect_controls_choose_the_kinds_and_thresholds(viewer_widget, qtbot, notes):
    """The "detected defects" source has a check box per kind and the thresholds of detect()."""
    from inpaint_plugin._detect import DEFAULT_KINDS, KINDS

    viewer, widget = viewer_widget
    image = (ramp((40, 40)) * 40 + 100).astype(np.uint8)
    image[5, 7] = 255  # an isolated hot pixel
    image[20:23, 30:33] = 0  # a dark 3x3 cluster
    viewer.add_image(image, name="sensor")
    widget.reset_choices()
    box = widget.detect
    assert widget.mask.value == "detect"  # the default for an integer image without a mask layer
    assert not box.native.isHidden()
    viewer.add_labels(np.zeros(image.shape, np.uint8), name="manual")
    widget.reset_choices()
    assert widget.mask.value is viewer.layers["manual"]  # a mask layer of the image's shape comes first
    assert box.native.isHidden()  # only shown for the "detected defects" source
    widget.mask.value = "detect"
    assert not box.native.isHidden()
    assert [k for k in KINDS if box[f"kind_{k}"].value] == list(DEFAULT_KINDS)
    box["kind_clusters"].value = False  # hot pixels only
    run(qtbot, widget)
    out = viewer.layers["sensor inpainted"]
    only_hot = inpaint_plugin.detect(image, [k for k in DEFAULT_KINDS if k != "clusters"])
    assert only_hot[5, 7] and not only_hot[20:23, 30:33].any()
    np.testing.assert_array_equal(out.data, inpaint(image, only_hot, "biharmonic"))
    assert "clusters" not in out.metadata["inpaint"]["detect"]["kinds"]
    box["kind_clusters"].value = True
    box["cluster_size"].value = 4  # the 9-pixel cluster is now too big
    run(qtbot, widget)
    assert out.data[20:23, 30:33].max() == 0
    box["cluster_size"].value = 9
    run(qtbot, widget)
    assert out.data[20:23, 30:33].min() > 0  # filled
    assert out.metadata["inpaint"]["detect"]["cluster_size"] == 9
    for k in KINDS:
        box[f"kind_{k}"].value = False
    run(qtbot, widget)
    assert any("at least one kind" in msg for _, msg in notes())


def test_show_detected_defects_adds_an_editable_labels_layer(viewer_widget, qtbot):
    from napari.layers import Labels

    viewer, widget = viewer_widget
    image = (ramp((40, 40)) * 40 + 100).astype(np.uint8)
    image[5, 7] = 255
    viewer.add_image(image, name="sensor", scale=(2.0, 0.5))
    widget.reset_choices()
    widget.mask.value = "detect"
    widget.detect.show_defects.native.click()
    labels = viewer.layers["sensor defects"]
    assert isinstance(labels, Labels) and tuple(labels.scale) == (2.0, 0.5)
    np.testing.assert_array_equal(labels.data != 0, inpaint_plugin.detect(image))
    labels.data[30, 30] = 1  # the user adds a pixel by hand ...
    widget.reset_choices()
    widget.mask.value = labels  # ... and fills the edited mask
    run(qtbot, widget)
    out = viewer.layers["sensor inpainted"]
    np.testing.assert_array_equal(out.data, inpaint(image, labels.data != 0, "biharmonic"))
    widget.mask.value = "detect"
    widget.detect.show_defects.native.click()  # a second click updates the same layer
    assert [lay.name for lay in viewer.layers].count("sensor defects") == 1
    assert not viewer.layers["sensor defects"].data[30, 30]
