"""Take the README screenshot: napari with the Inpaint widget after repairing the sample image.

Opens the plugin's "damaged cell" sample (dead pixels, a dead column, scratches), runs the dock
widget with method "auto" (its choice then shows in the info text), and saves the whole window
with the damaged and the repaired image side by side.

Usage::

    python scripts/screenshot.py [--out docs/screenshot.png]
    xvfb-run -a python scripts/screenshot.py      # on a machine without a display
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png", help="PNG file to write")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the inpainting")
    parser.add_argument("--method", default="auto", help="method chosen in the widget (default: auto)")
    args = parser.parse_args(argv)

    # a throw-away settings file: the user's napari settings stay untouched, and only errors pop up
    # as notifications (no toast over the canvas)
    with tempfile.TemporaryDirectory() as config_dir:
        os.environ["NAPARI_CONFIG"] = os.path.join(config_dir, "settings.yaml")
        return _shoot(args.out, args.timeout, args.method)


def _shoot(out: Path, timeout: float, method: str) -> Path:
    from napari.settings import get_settings
    from qtpy.QtWidgets import QApplication

    import napari

    get_settings().application.gui_notification_level = "error"
    viewer = napari.Viewer(title="inpaint-plugin", show=True)
    viewer.window.resize(1400, 820)
    viewer.open_sample("inpaint-plugin", "damaged_cell")
    dock, widget = viewer.window.add_plugin_dock_widget("inpaint-plugin", "Inpaint")
    from qtpy.QtCore import Qt

    viewer.window._qt_window.resizeDocks([dock], [400], Qt.Horizontal)  # the canvas keeps most of the window
    widget.method.value = method

    widget.start()
    deadline = time.monotonic() + timeout
    while widget.worker is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"inpainting did not finish within {timeout} s")
        QApplication.processEvents()
        time.sleep(0.02)

    # damaged image (with its mask on top) beside the result, zoomed on a damaged area
    viewer.layers["damaged cell mask"].opacity = 0.6
    viewer.grid.enabled = True
    viewer.grid.shape = (1, 2)
    viewer.grid.stride = 2  # the mask stays over the damaged image
    viewer.reset_view()
    viewer.camera.zoom *= 1.4
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)

    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(path=str(out), canvas_only=False, flash=False)
    viewer.close()
    print(f"saved {out}")
    return out


if __name__ == "__main__":
    main()
