"""The pluggy registry: built-ins, run-time plugins, third-party entry points."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

import inpaint_plugin as ip
from inpaint_plugin import Backend, hookimpl
from inpaint_plugin._registry import plugin_manager

REPO = Path(__file__).resolve().parents[1]


def test_builtins_register_through_the_hook():
    pm = plugin_manager()
    builtin = pm.get_plugin("inpaint_plugin.builtin")
    assert builtin is not None
    names = [b.name for b in builtin.inpaint_plugin_backends()]
    assert "biharmonic" in names
    assert set(names) <= set(ip.methods())


def _fill_const(image, mask):
    out = image.copy()
    out[mask] = 42.0
    return out


def test_runtime_plugin_registers_and_unregisters():
    class P:
        @hookimpl
        def inpaint_plugin_backends(self):
            return [Backend("const42", _fill_const, "fills 42")]

    p = P()
    ip.register(p, name="const42-plugin")
    try:
        assert "const42" in ip.methods()
        img = np.zeros((6, 6), np.float32)
        img[0, 1] = 100
        mask = np.eye(6, dtype=bool)
        out = ip.inpaint(img, mask, method="const42")
        assert (out[mask] == 42).all()
    finally:
        ip.unregister(p)
    assert "const42" not in ip.methods()


def test_bad_plugins_warn_and_do_not_break_builtins():
    class Broken:
        @hookimpl
        def inpaint_plugin_backends(self):
            raise RuntimeError("boom")

    class Wrong:
        @hookimpl
        def inpaint_plugin_backends(self):
            return ["not a backend", Backend("biharmonic", _fill_const, "impostor")]

    b, w = Broken(), Wrong()
    ip.register(b, name="broken")
    ip.register(w, name="wrong")
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            table = ip.methods()
        messages = " ".join(str(r.message) for r in rec)
        assert "boom" in messages and "not a Backend" in messages and "redefines method 'biharmonic'" in messages
        assert table["biharmonic"].func is not _fill_const  # the built-in wins
    finally:
        ip.unregister(b)
        ip.unregister(w)


def test_example_package_installs_and_is_found_through_entry_point(tmp_path):
    """Install examples/inpaint-plugin-nearest into a private folder and use it from a fresh interpreter."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(REPO / "examples" / "inpaint-plugin-nearest")],
        check=True,
    )
    code = (
        "import json, numpy as np, inpaint_plugin as ip\n"
        "img = np.arange(25, dtype=np.uint8).reshape(5, 5)\n"
        "mask = np.zeros((5, 5), bool); mask[2, 2] = True\n"
        "out = ip.inpaint(img, mask, method='nearest', sampling=1.0)\n"
        "print(json.dumps({'methods': list(ip.methods()), 'value': int(out[2, 2]),"
        " 'dtype': str(out.dtype), 'same': bool((out[~mask] == img[~mask]).all())}))\n"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert "nearest" in info["methods"] and "biharmonic" in info["methods"]
    assert info["value"] in (7, 11, 13, 17)  # one of the 4 nearest neighbours of (2, 2)
    assert info["dtype"] == "uint8" and info["same"]
