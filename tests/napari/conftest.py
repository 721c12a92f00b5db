"""The napari tests need a display: without one they are skipped, never run into Qt's abort.

On Linux, Qt's default ``xcb`` platform aborts the whole process (``could not connect to display``)
when the first ``QApplication`` is made without an X server, which would end the test run with a
core dump instead of a report. pytest-xvfb starts a virtual X server (Xvfb) in ``pytest_configure``
and sets ``DISPLAY``; where it cannot (no Xvfb installed, ``--no-xvfb``, ``-p no:xvfb``) and there is
no other display, every test that needs a Qt application (the ``make_napari_viewer``, ``qtbot`` or
``qapp`` fixtures) is skipped here, with the reason. Tests without Qt (the manifest check) still run.

``QT_QPA_PLATFORM=offscreen`` (or another non-X platform) counts as a display: the user asked for it.

Shared fixtures of the widget tests: ``viewer_widget`` (a viewer and the Inpaint dock widget) and
``notes`` (the notifications of the test).
"""
from __future__ import annotations

import os
import sys

import pytest

QT_FIXTURES = {"make_napari_viewer", "make_napari_viewer_proxy", "qtbot", "qapp", "viewer_widget"}


def display_problem() -> str:
    """Why Qt windows cannot be made here, or ``""`` when they can."""
    if not sys.platform.startswith("linux"):
        return ""  # Windows and macOS always have a window system
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return ""  # offscreen, minimal, wayland, vnc, ...: chosen by the user
    if os.environ.get("DISPLAY") or (os.environ.get("WAYLAND_DISPLAY") and not platform):
        return ""
    return ("no display: DISPLAY is not set and pytest-xvfb could not start Xvfb (install it: "
            "apt-get install xvfb, or run with QT_QPA_PLATFORM=offscreen)")


def pytest_collection_modifyitems(config, items):
    reason = display_problem()
    if not reason:
        return
    here = os.path.dirname(__file__)
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if str(item.path).startswith(here) and QT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(skip)


@pytest.fixture
def viewer_widget(make_napari_viewer):
    """A viewer and the Inpaint dock widget, opened from the plugin manifest."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("inpaint-plugin", "Inpaint")
    return viewer, widget


@pytest.fixture
def notes():
    """``notes()``: the notifications dispatched during the test, as ``(severity, message)`` pairs."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)

    def new():
        return [(str(n.severity), n.message) for n in notification_manager.records[start:]]

    return new
