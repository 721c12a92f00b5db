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


# --- helpers ---------------------------------------------------------------------------------------

@pytest.fixture
def viewer_widget(make_napari_viewer):
    """A viewer and the Inpaint dock widget, opened from the plugin manifest."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("inpaint-plugin", "Inpaint")
    return viewer, widget


@pytest.fixture
def notes():
    """Notifications dispatched during the test, as ``(severity, message)`` pairs."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)

    def new():
        return [(str(n.severity), n.message) for n in notification_manager.records[start:]]

    return new


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
    widget.mask.value = "nan"
    run(qtbot, widget)
    assert any("cannot hold NaNs" in m for m in _errors(notes))
    widget.mask.value = viewer.layers["empty"]
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
