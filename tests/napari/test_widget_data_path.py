"""The dock widget on a scientist's data path, with a real viewer (issues 13, 15, 17).

- a missing display skips the napari tests instead of aborting the run;
- the menus carry the project's name;
- the mask offered first fits the image; the info text says each fact once;
- stacks: filled jointly in nD or frame by frame; a 2-D mask applies to every frame;
- "auto" shows the method it chose;
- deep methods: whether weights are present, "Import weights…", no worker without weights;
- progress per unit of work reported by a backend, and Cancel between those units.
- lazy (dask) layers: the scan's chunks counted on the bar, Cancel during the scan, and nothing
  reported by a finished run when napari computes tiles of its result.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

import inpaint_plugin  # noqa: E402
from inpaint_plugin import Backend, hookimpl, inpaint  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WAIT_MS = 120_000


def errors(notes):
    return [m for s, m in notes() if s == "error"]


def run(qtbot, widget):
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)


def texture(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(100.0, 20.0, shape).astype(np.float32)


def scene(shape, seed):
    """A smooth 2-D scene of its own (random orientation and frequency), unlike any other seed's."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]] / max(shape)
    angle, freq, phase = rng.uniform(0, np.pi), rng.uniform(2, 5), rng.uniform(0, 2 * np.pi)
    wave = np.sin(2 * np.pi * freq * (np.cos(angle) * x + np.sin(angle) * y) + phase)
    return (100 + 60 * wave).astype(np.float32)


# --- display, menus --------------------------------------------------------------------------------

def test_no_display_skips_instead_of_aborting(tmp_path):
    """pytest without DISPLAY and without Xvfb on PATH: Qt tests are skipped, the run ends normally."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PATH"] = str(Path(sys.executable).parent)  # no Xvfb there: pytest-xvfb cannot start one
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "tests" / "napari" / "test_napari_plugin.py"), "-q", "-rs",
         "-p", "no:cacheprovider", "-p", "no:xdist", "-k", "manifest or sample_data"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "1 passed, 1 skipped" in out, out[-3000:]
    assert "no display" in out
    assert "Fatal Python error" not in out and "Aborted" not in out


def test_menus_carry_the_project_name(make_napari_viewer):
    viewer = make_napari_viewer()

    def titles(menu):
        out = []
        for action in menu.actions():
            out.append(action.text().replace("&&", "&"))
            if action.menu() is not None:
                out += [f"{action.text()} > {t}" for t in titles(action.menu())]
        return out

    plugins = titles(viewer.window.plugins_menu)
    assert "Inpaint (inpaint-plugin)" in plugins
    samples = [t for t in titles(viewer.window.file_menu) if "Damaged cell" in t]
    assert samples and all("inpaint-plugin" in t for t in samples), samples


# --- mask default, info text -----------------------------------------------------------------------

def test_default_mask_fits_the_image(viewer_widget):
    viewer, widget = viewer_widget
    integer = viewer.add_image(np.full((30, 40), 100, np.uint16), name="camera")
    widget.reset_choices()
    assert "nan" not in widget.mask.choices
    assert widget.mask.value == "detect"  # no mask layer yet: the integer image's own defects

    floats = texture((30, 40), 0)
    floats[3, 4] = np.nan
    viewer.add_image(floats, name="nodata")
    other = viewer.add_labels(np.zeros((10, 10), np.uint8), name="other")
    widget.reset_choices()
    widget.image.value = viewer.layers["nodata"]
    assert widget.mask.value == "nan"  # "other" has another shape: not offered first
    assert other in widget.mask.choices  # ... but can be chosen

    own = viewer.add_labels(np.zeros((30, 40), np.uint8), name="camera mask")
    viewer.add_labels(np.zeros((30, 40), np.uint8), name="another mask")
    widget.reset_choices()
    widget.image.value = integer
    assert widget.mask.value is own  # a Labels layer of the image's shape, the one named after it first

    # a choice by the user is kept while it fits the image, replaced when it does not
    widget.mask.value = viewer.layers["another mask"]
    widget.reset_choices()
    assert widget.mask.value is viewer.layers["another mask"]
    widget.mask.value = other
    widget.image.value = viewer.layers["nodata"]
    widget.image.value = integer
    assert widget.mask.value is own


def test_info_text_says_each_fact_once(viewer_widget):
    viewer, widget = viewer_widget
    viewer.add_image(texture((3, 20, 20), 0), name="stack")
    widget.reset_choices()
    for name in widget.method.choices:
        widget.method.value = name
        text = widget.info.value
        lines = [line for line in text.split("\n") if line]
        assert lines and len(lines) == len(set(lines)), (name, text)
        assert text.lower().count("needs trained weights") <= 1, (name, text)
        assert text.count("slice by slice") + text.count("frame by frame") <= 1, (name, text)


def test_layer_changes_keep_the_method_and_its_parameters(viewer_widget):
    viewer, widget = viewer_widget
    viewer.add_image(texture((20, 20), 0), name="a")
    widget.method.value = "patchmatch"
    widget.params.patch_size.value = 9
    viewer.add_image(texture((20, 20), 1), name="b")  # napari calls reset_choices: labels are rebuilt
    widget.reset_choices()
    assert widget.method.value == "patchmatch" and widget.params.patch_size.value == 9


# --- stacks ----------------------------------------------------------------------------------------

def test_stack_jointly_or_frame_by_frame(viewer_widget, qtbot, notes):
    """Four unrelated frames with a dead column: frame by frame is the per_slice=True fill, jointly the 3-D one."""
    viewer, widget = viewer_widget
    stack = np.stack([scene((32, 32), seed) for seed in range(4)])
    truth = stack.copy()
    mask2d = np.zeros((32, 32), np.uint8)
    mask2d[:, 15] = 1  # a dead column in every frame
    stack[:, mask2d != 0] = 0.0
    viewer.add_image(stack, name="frames")
    flat = viewer.add_labels(mask2d, name="dead column")  # a 2-D mask over a stack
    widget.reset_choices()
    assert widget.mask.value is flat  # the frame-shaped mask fits the stack
    assert not widget.frames.native.isHidden()
    assert widget.frames.value == "jointly (nD)"

    run(qtbot, widget)
    assert errors(notes) == []
    out = viewer.layers["frames inpainted"]
    full_mask = np.broadcast_to(mask2d != 0, stack.shape)
    joint = inpaint(stack, full_mask, "biharmonic", per_slice=False)
    np.testing.assert_array_equal(out.data, joint)
    assert out.metadata["inpaint"]["per_slice"] is False

    widget.frames.value = "frame by frame"
    run(qtbot, widget)
    per_frame = inpaint(stack, full_mask, "biharmonic", per_slice=True)
    np.testing.assert_array_equal(out.data, per_frame)
    np.testing.assert_array_equal(out.data[1], inpaint(stack[1], mask2d, "biharmonic"))
    assert out.metadata["inpaint"]["per_slice"] is True
    assert not np.array_equal(per_frame, joint)

    def rmse(result):
        return float(np.sqrt(np.mean((result[full_mask] - truth[full_mask]) ** 2)))

    assert rmse(per_frame) < rmse(joint)  # unrelated frames: their neighbours in "z" only mislead

    # a 2-D method has no choice to offer; the current slice neither
    widget.method.value = "telea"
    assert widget.frames.native.isHidden()
    assert "frame by frame" in widget.info.value
    widget.method.value = "biharmonic"
    widget.scope.value = "current slice"
    assert widget.frames.native.isHidden()


def test_time_axis_defaults_to_frame_by_frame(viewer_widget):
    viewer, widget = viewer_widget
    viewer.add_image(texture((3, 16, 16), 1), name="zstack")
    widget.reset_choices()
    assert widget.frames.value == "jointly (nD)"
    viewer.dims.axis_labels = ("t", "y", "x")
    viewer.add_image(texture((3, 16, 16), 2), name="movie")
    widget.reset_choices()
    widget.image.value = viewer.layers["movie"]
    assert widget.frames.value == "frame by frame"  # a time axis: independent frames
    widget.frames.value = "jointly (nD)"
    widget.reset_choices()  # napari does this on every layer change: the user's choice stays
    assert widget.frames.value == "jointly (nD)"


# --- auto ------------------------------------------------------------------------------------------

def test_auto_shows_the_chosen_method(viewer_widget, qtbot, notes):
    viewer, widget = viewer_widget
    image = (np.add.outer(np.arange(48), np.arange(48)) % 40 * 5).astype(np.uint8)
    mask = np.zeros(image.shape, np.uint8)
    mask[20:26, 10:30] = 1
    viewer.add_image(image, name="ramp")
    viewer.add_labels(mask, name="ramp mask")
    widget.reset_choices()
    assert widget.method.value == "biharmonic"  # the default is not the slower auto
    widget.method.value = "auto"
    assert len(widget.params) == 0
    run(qtbot, widget)
    assert errors(notes) == []
    expected, chosen = inpaint(image, mask, "auto", return_method=True)
    out = viewer.layers["ramp inpainted"]
    record = out.metadata["inpaint"]
    assert record["method"] == chosen and record["requested"] == "auto"
    assert f"auto chose: {chosen}" in widget.info.value
    assert ("info", f"Inpaint: auto chose {chosen}") in notes()
    np.testing.assert_array_equal(out.data, expected)
    widget.method.value = "telea"
    assert "auto chose" not in widget.info.value


# --- progress per unit of work and cancel between units ------------------------------------------

class CropsPlugin:
    """A 2-D method that works in ``units`` steps and reports each through ``progress`` (as deep
    backends do per crop/tile/batch). ``gate`` holds it before each step after the first."""

    def __init__(self, units=5):
        self.units = units
        self.steps = 0
        self.reported = []
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    @hookimpl
    def inpaint_plugin_backends(self):
        return [Backend("test-crops", self.fill, "test method in units (mean fill)", spatial_ndim=2,
                        reports_progress=True)]

    def fill(self, image, mask, progress=None):
        out = image.copy()
        for k in range(1, self.units + 1):
            if k > 1:
                self.waiting.set()
                assert self.gate.wait(30)
            self.steps += 1
            self.reported.append((k, self.units))
            if progress is not None:
                progress(k, self.units)  # the widget's callback raises here once Cancel was pressed
        out[mask] = image[~mask].mean(axis=0)
        return out


@pytest.fixture
def crops():
    plugin = CropsPlugin()
    inpaint_plugin.register(plugin, name="tests.napari.crops")
    yield plugin
    plugin.gate.set()
    inpaint_plugin.unregister(name="tests.napari.crops")


def test_progress_per_unit_and_cancel_between_units(viewer_widget, qtbot, notes, crops):
    viewer, widget = viewer_widget
    image = texture((40, 40), 3)
    mask = np.zeros(image.shape, np.uint8)
    mask[10:14, 10:14] = 1
    viewer.add_image(image, name="one")
    viewer.add_labels(mask, name="one mask")
    widget.reset_choices()
    widget.method.value = "test-crops"

    crops.gate.clear()
    widget.run_button.native.click()
    assert crops.waiting.wait(30)  # one unit done, the method waits before the second
    qtbot.waitUntil(lambda: widget.progress.native.maximum() == crops.units, timeout=WAIT_MS)
    assert widget.progress.value == 1  # the bar shows the unit inside the single 2-D image
    assert widget.progress.native.format() == "fill %v / %m"
    widget.cancel_button.native.click()
    crops.gate.set()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert crops.steps == 2  # stopped at the next unit, not after the whole image
    assert [layer.name for layer in viewer.layers] == ["one", "one mask"]
    assert ("info", "Inpaint: cancelled; no layer was changed") in notes()
    assert errors(notes) == []

    crops.steps = 0
    run(qtbot, widget)
    assert crops.steps == crops.units
    assert widget.progress.value == widget.progress.native.maximum() > 0  # full at the end
    np.testing.assert_array_equal(viewer.layers["one inpainted"].data, inpaint(image, mask, "test-crops"))


# --- deep weights ----------------------------------------------------------------------------------

DEEP = "deepfill_v1"  # the quickest network on a CPU


def test_deep_weights_state_import_and_no_worker_without_weights(viewer_widget, qtbot, notes, tmp_path,
                                                                 monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from inpaint_plugin.deep import random_checkpoint

    monkeypatch.setenv("INPAINT_PLUGIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("INPAINT_PLUGIN_OFFLINE", "1")
    viewer, widget = viewer_widget
    image = (texture((40, 40), 4)).clip(0, 255).astype(np.uint8)
    mask = np.zeros(image.shape, np.uint8)
    mask[15:22, 12:20] = 1
    viewer.add_image(image, name="photo")
    viewer.add_labels(mask, name="photo mask")
    widget.reset_choices()
    assert widget.import_button.native.isHidden()  # classical method: no weights
    widget.method.value = DEEP
    assert not widget.import_button.native.isHidden()
    combo = widget.method.native
    assert combo.itemText(combo.findData(DEEP)) == f"{DEEP} (no weights)"  # seen in the list of methods
    assert combo.itemText(combo.findData("telea")) == "telea"
    assert "weights: none" in widget.info.value

    # no weights: a clear message, no worker, no layer
    started = []
    widget.run_button.native.click()
    started.append(widget.worker)
    assert started == [None]
    (message,) = errors(notes)
    assert f"method {DEEP!r} needs trained weights and none are imported" in message
    assert "Import weights" in message
    assert [layer.name for layer in viewer.layers] == ["photo", "photo mask"]

    # a weights field that names a missing file is refused the same way
    widget.params.weights.value = str(tmp_path / "missing.pth")
    assert "not found" in widget.info.value
    widget.run_button.native.click()
    assert widget.worker is None and "does not exist" in errors(notes)[-1]
    widget.params.weights.value = None

    # "Import weights…" > "Checkpoint file…": the dialog's answer is imported into the cache
    checkpoint = random_checkpoint(DEEP, tmp_path / "deepfill_v1.pth", seed=1)
    from qtpy.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: ""))  # cancelled
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(checkpoint), "")))
    menu = widget.import_button.native.menu()
    assert [a.text() for a in menu.actions()] == ["Checkpoint file…", "Checkpoint folder…"]
    menu.actions()[1].trigger()  # the folder dialog, cancelled: nothing happens
    assert widget.importing is None
    menu.actions()[0].trigger()
    qtbot.waitUntil(lambda: widget.importing is None, timeout=WAIT_MS)
    assert any(s == "info" and "weights imported" in m for s, m in notes()), notes()
    assert "weights: imported (deepfill_v1.pth" in widget.info.value
    assert combo.itemText(combo.findData(DEEP)) == f"{DEEP} (weights)"
    from inpaint_plugin.deep._weights import imported_info

    assert imported_info(DEEP) is not None

    run(qtbot, widget)  # weights=None now uses the imported weights
    assert [m for m in errors(notes) if "needs trained weights" not in m and "does not exist" not in m] == []
    out = viewer.layers["photo inpainted"]
    np.testing.assert_array_equal(out.data, inpaint(image, mask, DEEP, weights=str(checkpoint)))

    # a file that is not a checkpoint of this network: an error, the imported weights stay
    bad = tmp_path / "not_weights.pth"
    bad.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(bad), "")))
    menu.actions()[0].trigger()
    qtbot.waitUntil(lambda: widget.importing is None, timeout=WAIT_MS)
    assert any("importing weights for deepfill_v1 failed" in m for m in errors(notes))
    assert "weights: imported (deepfill_v1.pth" in widget.info.value


def test_licence_of_official_weights_in_info(viewer_widget):
    from inpaint_plugin.deep import find_spec

    viewer, widget = viewer_widget
    with_licence = {}
    for name, backend in inpaint_plugin.methods().items():
        if backend.needs_weights:
            licences = [e.licence for e in find_spec(name).registry if getattr(e, "licence", "")]
            if licences:
                with_licence[name] = licences
    if not with_licence:
        pytest.skip("no weights table lists a licence yet")
    for name, licences in with_licence.items():
        widget.method.value = name
        for licence in licences:
            assert licence in widget.info.value, (name, widget.info.value)


def test_lazy_layers_offer_what_fits_them(viewer_widget, qtbot, notes):
    """A dask stack: no "detected defects" and no joint/frame choice (filled chunk by chunk); "auto"
    needs the image in memory and says so without starting a worker."""
    import dask.array as da

    viewer, widget = viewer_widget
    stack = np.stack([scene((32, 32), seed) for seed in range(3)])
    viewer.add_image(da.from_array(stack, chunks=(1, 16, 16)), name="lazy")
    holes = np.zeros((32, 32), np.uint8)
    holes[10:13, 10:13] = 1
    viewer.add_labels(holes, name="lazy mask")
    widget.reset_choices()
    widget.image.value = viewer.layers["lazy"]
    assert "detect" not in widget.mask.choices and "nan" in widget.mask.choices
    assert widget.mask.value is viewer.layers["lazy mask"]
    assert widget.frames.native.isHidden()
    widget.method.value = "auto"
    widget.run_button.native.click()
    assert widget.worker is None
    assert any("'auto' needs the whole image in memory" in m for m in errors(notes))
    widget.method.value = "biharmonic"
    run(qtbot, widget)
    out = viewer.layers["lazy inpainted"]
    np.testing.assert_allclose(np.asarray(out.data), inpaint(stack, holes, "biharmonic"), rtol=0, atol=1e-4)


# --- lazy layers: the scan's progress and Cancel ---------------------------------------------------

class SlowReads:
    """A read-only array-like over ``array`` (for ``dask.array.from_array``) that records every read;
    once ``slow`` is set, reads take ``delay`` seconds each, one at a time (whatever the number of
    dask's threads), so a scan over many chunks lasts long enough to be watched and cancelled."""

    def __init__(self, array, delay=0.1):
        self.array = array
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.delay = delay
        self.reads = []
        self.slow = threading.Event()
        self.lock = threading.Lock()

    def __getitem__(self, key):
        if self.slow.is_set():
            with self.lock:
                time.sleep(self.delay)
        self.reads.append(key)
        return self.array[key]


def watch_bar(widget, viewer, name):
    """Records ``(format, value, maximum, result layer exists)`` at each new value of the progress bar."""
    bar = widget.progress.native
    seen = []

    def record(*_):
        seen.append((bar.format(), bar.value(), bar.maximum(), name in viewer.layers))

    bar.valueChanged.connect(record)
    return seen


def _scan_counts(seen, total):
    """The values of the scan the progress bar showed (from ``watch_bar``'s records): all shown before
    the result layer existed, out of ``total`` chunks, counting up to ``total``."""
    scan = [(value, top, layer) for form, value, top, layer in seen if form == "scan %v / %m" and value > 0]
    assert scan and all(top == total and not layer for value, top, layer in scan), seen  # before the layer
    values = [value for value, _, _ in scan]
    assert values == sorted(set(values)) and values[-1] == total  # counts up to every chunk of the scan
    return values


def test_lazy_scan_progress_cancel_and_tiles_after_the_run(viewer_widget, qtbot, notes):
    """A dask image of many chunks: the bar counts the scan's chunks (determinate) before the result
    layer appears; computing tiles of that result later reports nothing, even while another run
    shows its own scan; Cancel during a scan leaves no layer and the input untouched."""
    import dask.array as da

    viewer, widget = viewer_widget
    image = scene((64, 64), 11)
    holes = np.zeros(image.shape, np.uint8)
    holes[20:24, 21:26] = 1  # in chunk (2, 2) and (2, 3) of 8 x 8 chunks
    holes[50:53, 5:7] = 1
    viewer.add_image(da.from_array(image, chunks=8), name="big")  # 64 chunks
    viewer.add_labels(holes, name="big holes")
    widget.reset_choices()
    widget.image.value, widget.mask.value = viewer.layers["big"], viewer.layers["big holes"]
    seen = watch_bar(widget, viewer, "big inpainted")
    run(qtbot, widget)
    assert errors(notes) == []
    values = _scan_counts(seen, 64)
    assert any(0 < value < 64 for value in values)  # determinate: chunk by chunk, not busy then full
    out = viewer.layers["big inpainted"]
    assert isinstance(out.data, da.Array)

    # a second run, slowed down in its scan (36 chunks)
    other = scene((48, 48), 12)
    kept = other.copy()
    other_holes = np.zeros(other.shape, np.uint8)
    other_holes[30:33, 8:12] = 1
    reads = SlowReads(other)
    lazy = da.from_array(reads, chunks=8)
    viewer.add_image(lazy, name="other")
    viewer.add_labels(other_holes, name="other holes")
    widget.reset_choices()
    widget.image.value, widget.mask.value = viewer.layers["other"], viewer.layers["other holes"]
    reads.reads.clear()
    reads.slow.set()
    widget.run_button.native.click()
    bar = widget.progress.native
    qtbot.waitUntil(lambda: bar.maximum() == 36 and bar.value() >= 1, timeout=WAIT_MS)
    assert bar.format() == "scan %v / %m" and reads.reads  # determinate during the scan
    seen.clear()

    # tiles of the first result computed now fill its chunks with holes: its finished run's callback
    # does nothing (no exception, nothing sent to the bar, which shows the second run's scan)
    result = np.asarray(out.data)
    np.testing.assert_allclose(result, inpaint(image, holes, "biharmonic"), rtol=0, atol=1e-6)
    qtbot.wait(100)
    assert widget.worker is not None  # still scanning: the bar would show a stray report
    assert all(top == 36 for _, _, top, _ in seen), seen

    widget.cancel_button.native.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert len(reads.reads) < 36  # the scan stopped at its next chunk
    assert [layer.name for layer in viewer.layers] == ["big", "big holes", "big inpainted", "other", "other holes"]
    assert ("info", "Inpaint: cancelled; no layer was changed") in notes()
    assert errors(notes) == []
    assert viewer.layers["other"].data is lazy
    np.testing.assert_array_equal(other, kept)  # the input is untouched
    reads.slow.clear()
    np.testing.assert_array_equal(np.asarray(lazy), kept)


def test_multiscale_scan_counts_the_chunks_of_every_level(viewer_widget, qtbot, notes):
    """A pyramid: one determinate count over the scans of all levels (16 + 4 chunks), before the
    multiscale result appears."""
    import dask.array as da

    viewer, widget = viewer_widget
    full = scene((64, 64), 13)
    coarse = full.reshape(32, 2, 32, 2).mean(axis=(1, 3))
    holes = np.zeros(full.shape, np.uint8)
    holes[30:35, 40:45] = 1
    viewer.add_image([da.from_array(full, chunks=16), da.from_array(coarse, chunks=16)], multiscale=True,
                     name="pyramid")
    viewer.add_labels(holes, name="pyramid holes")
    widget.reset_choices()
    widget.image.value, widget.mask.value = viewer.layers["pyramid"], viewer.layers["pyramid holes"]
    seen = watch_bar(widget, viewer, "pyramid inpainted")
    run(qtbot, widget)
    assert errors(notes) == []
    values = _scan_counts(seen, 20)
    assert any(16 < value < 20 for value in values)  # the coarse level's chunks follow the full level's
    out = viewer.layers["pyramid inpainted"]
    assert out.multiscale
    np.testing.assert_allclose(np.asarray(out.data[0]), inpaint(full, holes, "biharmonic"), rtol=0, atol=1e-6)
