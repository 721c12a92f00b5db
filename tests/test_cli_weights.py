"""``inpaint-plugin weights ...`` end to end: the installed command in a subprocess, real checkpoint files
in the official formats (random weights), a private cache (``INPAINT_PLUGIN_CACHE``)."""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")

import inpaint_plugin as ip  # noqa: E402
from inpaint_plugin import deep  # noqa: E402
from inpaint_plugin.deep import _weights as W  # noqa: E402
from inpaint_plugin.deep import random_checkpoint  # noqa: E402

EXE = Path(sys.executable).with_name("inpaint-plugin")
if not EXE.exists():  # an environment whose scripts live elsewhere
    EXE = Path(shutil.which("inpaint-plugin") or EXE)
pytestmark = pytest.mark.skipif(not EXE.exists(), reason="the inpaint-plugin command is not installed")

DEEP = ["medfe", "deepfill_v1", "deepfill_v2", "pennet", "gmcnn", "spl"]


def _cli(cache, *args, env=None, timeout=300, stdin=subprocess.DEVNULL):
    full = {k: v for k, v in os.environ.items() if k != "INPAINT_PLUGIN_OFFLINE"}
    full.update({"INPAINT_PLUGIN_CACHE": str(cache), "OMP_NUM_THREADS": "1", **(env or {})})
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, env=full, timeout=timeout,
                          stdin=stdin)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("INPAINT_PLUGIN_CACHE", str(folder))
    monkeypatch.delenv("INPAINT_PLUGIN_OFFLINE", raising=False)
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    return {"deepfill_v2": random_checkpoint("deepfill_v2", d / "df2.pth", seed=3),
            "deepfill_v1": random_checkpoint("deepfill_v1", d / "df1.pt", seed=4),
            "gmcnn": random_checkpoint("gmcnn", d / "gm.pth", seed=5)}


def _picture(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :64]
    rgb = np.stack([(yy * 4) % 256, (xx * 3) % 256, ((yy + xx) * 2) % 256], -1).astype(np.uint8)
    rgb = np.clip(rgb.astype(int) + rng.integers(-3, 4, rgb.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((48, 64), bool)
    mask[15:30, 20:40] = True
    iio.imwrite(tmp_path / "img.png", rgb)
    iio.imwrite(tmp_path / "mask.png", (mask * 255).astype(np.uint8))
    return rgb, mask


def test_list_shows_every_deep_method_its_sources_and_licences(cache):
    proc = _cli(cache, "weights", "list")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for name in DEEP:
        assert f"\n{name}: none imported" in text
    assert "CC BY-NC 4.0" in text and "CC BY-NC-SA 4.0" in text and "MIT" in text
    assert "drive.google.com" in text and "inpaint-plugin weights import PATH --method medfe" in text
    proc = _cli(cache, "weights", "list", "--json")
    table = json.loads(proc.stdout)
    assert set(DEEP) <= set(table)
    assert all(row["imported"] is None for row in table.values())
    assert table["deepfill_v2"]["weights"][0]["licence"].startswith("CC BY-NC 4.0")
    assert table["medfe"]["weights"][0]["licence"].startswith("CC BY-NC-SA 4.0")
    assert table["medfe"]["weights"][0]["files"] == ["EN.pkl", "MEDEF.pkl", "DE.pkl"]
    proc = _cli(cache, "weights", "list", "nosuchnet")
    assert proc.returncode == 2 and "not a deep method" in proc.stderr
    assert not cache.exists()  # listing creates nothing


@pytest.mark.slow
def test_import_then_inpaint_without_weights_uses_the_cache(cache, checkpoints, tmp_path):
    rgb, mask = _picture(tmp_path)
    proc = _cli(cache, "weights", "import", checkpoints["deepfill_v2"], "--method", "deepfill_v2")
    assert proc.returncode == 0, proc.stderr
    stored = cache / "deepfill_v2" / "imported.safetensors"
    record = json.loads((cache / "deepfill_v2" / "imported.json").read_text())
    assert stored.is_file() and str(stored) in proc.stdout
    assert "licence of deepfill_v2's official weights: CC BY-NC 4.0" in proc.stdout
    assert record["sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert record["source"] == str(checkpoints["deepfill_v2"].resolve())
    assert not [p for p in (cache / "deepfill_v2").iterdir() if p.name.startswith(".")]  # no temporary left

    proc = _cli(cache, "weights", "path", "deepfill_v2")
    assert proc.returncode == 0 and proc.stdout.strip() == str(stored)
    listed = json.loads(_cli(cache, "weights", "list", "--json").stdout)
    assert listed["deepfill_v2"]["imported"]["sha256"] == record["sha256"]
    assert listed["gmcnn"]["imported"] is None

    # the CLI without -p weights: the imported weights, the same result as the official file
    proc = _cli(cache, tmp_path / "img.png", tmp_path / "mask.png", "-o", tmp_path / "out.png",
                "--method", "deepfill_v2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    expected = ip.inpaint(rgb, mask, method="deepfill_v2", channel_axis=-1, weights=checkpoints["deepfill_v2"])
    np.testing.assert_array_equal(iio.imread(tmp_path / "out.png"), expected)
    assert not np.array_equal(expected[mask], rgb[mask])
    # and Python's weights=None
    np.testing.assert_array_equal(ip.inpaint(rgb, mask, method="deepfill_v2", channel_axis=-1), expected)

    # a second import replaces the first
    proc = _cli(cache, "weights", "import", checkpoints["deepfill_v1"], "--method", "deepfill_v1")
    assert proc.returncode == 0, proc.stderr
    other = random_checkpoint("deepfill_v2", tmp_path / "other.pth", seed=9)
    assert _cli(cache, "weights", "import", other, "--method", "deepfill_v2", "--quiet").returncode == 0
    assert json.loads((cache / "deepfill_v2" / "imported.json").read_text())["sha256"] != record["sha256"]
    assert _cli(cache, "weights", "path", "deepfill_v1").returncode == 0


def test_import_refuses_a_checkpoint_of_another_network_and_keeps_the_cache(cache, checkpoints):
    proc = _cli(cache, "weights", "import", checkpoints["gmcnn"], "--method", "deepfill_v2")
    assert proc.returncode == 2
    assert "cannot import" in proc.stderr and "missing keys" in proc.stderr
    assert not (cache / "deepfill_v2" / "imported.safetensors").exists()
    proc = _cli(cache, "weights", "import", "/no/such/file.pth", "--method", "deepfill_v2")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = _cli(cache, "weights", "import", checkpoints["gmcnn"], "--method", "biharmonic")
    assert proc.returncode == 2 and "not a deep method" in proc.stderr


def test_a_pickle_with_code_is_refused_without_torch_advice(cache, tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo should-never-run",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"state_dict": Payload()}))
    proc = _cli(cache, "weights", "import", evil, "--method", "deepfill_v2")
    assert proc.returncode == 2
    assert "refused to load" in proc.stderr and "weights_only" not in proc.stderr + proc.stdout
    assert "trusted source" not in proc.stderr
    assert "should-never-run" not in proc.stdout
    assert not (cache / "deepfill_v2" / "imported.safetensors").exists()


@pytest.mark.slow
def test_missing_and_damaged_weights_speak_the_cli_language(cache, checkpoints, tmp_path):
    _picture(tmp_path)
    args = (tmp_path / "img.png", tmp_path / "mask.png", "-o", tmp_path / "o.png", "--quiet")
    proc = _cli(cache, *args, "--method", "gmcnn")
    assert proc.returncode != 0 and not (tmp_path / "o.png").exists()
    assert "-p weights=PATH" in proc.stderr and "inpaint-plugin weights import PATH --method gmcnn" in proc.stderr
    assert "inpaint(" not in proc.stderr
    with pytest.raises(ValueError) as info:  # Python's words in Python
        ip.inpaint(np.zeros((16, 16, 3), np.uint8), np.eye(16, dtype=bool), method="gmcnn", channel_axis=-1)
    assert "weights=None" in str(info.value) and "import_weights('gmcnn'" in str(info.value)
    assert "-p weights" not in str(info.value)

    assert _cli(cache, "weights", "import", checkpoints["gmcnn"], "--method", "gmcnn").returncode == 0
    stored = cache / "gmcnn" / "imported.safetensors"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF  # damage one weight
    stored.write_bytes(bytes(data))
    proc = _cli(cache, "weights", "path", "gmcnn")
    assert proc.returncode == 1 and "sha256" in proc.stderr
    proc = _cli(cache, *args, "--method", "gmcnn")
    assert proc.returncode != 0 and "sha256" in proc.stderr and "weights import PATH --method gmcnn" in proc.stderr
    assert not (tmp_path / "o.png").exists()
    # an explicit -p weights=PATH still works, and its errors name -p weights
    proc = _cli(cache, *args, "--method", "gmcnn", "-p", f"weights={checkpoints['gmcnn']}")
    assert proc.returncode == 0, proc.stderr
    proc = _cli(cache, *args, "--method", "gmcnn", "-p", "weights=/no/such.pth")
    assert proc.returncode == 2 and "-p weights=/no/such.pth: no such file" in proc.stderr
    proc = _cli(cache, *args, "--method", "deepfill_v2", "-p", f"weights={checkpoints['gmcnn']}")
    assert proc.returncode != 0 and f"-p weights={checkpoints['gmcnn']}" in proc.stderr
    assert "missing keys" in proc.stderr and "weights='" not in proc.stderr


def test_remove_asks_unless_yes(cache, checkpoints):
    assert _cli(cache, "weights", "remove", "deepfill_v1", "--yes").stdout.startswith("nothing cached")
    assert _cli(cache, "weights", "import", checkpoints["deepfill_v1"], "--method", "deepfill_v1").returncode == 0
    proc = _cli(cache, "weights", "remove", "deepfill_v1")  # stdin is not a terminal: no silent deletion
    assert proc.returncode == 2 and "--yes" in proc.stderr
    assert (cache / "deepfill_v1" / "imported.safetensors").is_file()
    proc = _cli(cache, "weights", "remove", "deepfill_v1", "--yes")
    assert proc.returncode == 0 and "removed 2 file(s)" in proc.stdout
    assert not (cache / "deepfill_v1").exists()
    proc = _cli(cache, "weights", "path", "deepfill_v1")
    assert proc.returncode == 1 and "weights import PATH --method deepfill_v1" in proc.stderr
    proc = _cli(cache, "weights", "remove", "../..", "--yes")
    assert proc.returncode == 2 and "not a deep method" in proc.stderr


def test_fetch_offline_and_undownloadable_say_what_to_do_without_waiting(cache):
    t0 = time.monotonic()
    proc = _cli(cache, "weights", "fetch", "deepfill_v2", env={"INPAINT_PLUGIN_OFFLINE": "1"})
    assert proc.returncode == 1
    assert "INPAINT_PLUGIN_OFFLINE" in proc.stderr and "weights import PATH --method deepfill_v2" in proc.stderr
    assert "states_tf_places2.pth" in proc.stderr
    for method in ("medfe", "gmcnn"):  # Google Drive folders, no direct link: by hand
        proc = _cli(cache, "weights", "fetch", method)
        assert proc.returncode == 1 and "cannot be downloaded automatically" in proc.stderr
        assert "drive.google.com" in proc.stderr and f"weights import PATH --method {method}" in proc.stderr
    proc = _cli(cache, "weights", "fetch", "pennet", "--entry", "nope")
    assert proc.returncode == 1 and "'places2'" in proc.stderr
    assert time.monotonic() - t0 < 120  # each of these answers at once (the budget is the interpreter starts)
    assert not (cache / "deepfill_v2" / "imported.safetensors").exists()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_fetch_downloads_checks_the_sha256_and_imports(cache, checkpoints, tmp_path):
    """A direct link (pooch) through a local HTTP server; a wrong sha256 or a closed port import nothing."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(checkpoints["deepfill_v1"], served / "gen.pt")
    digest = hashlib.sha256((served / "gen.pt").read_bytes()).hexdigest()
    handler = lambda *a, **k: _Quiet(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/gen.pt"
        bad = W.WeightsEntry(name="local", files=[W.WeightsFile("gen.pt", url=url, sha256="0" * 64)])
        with pytest.raises(ValueError, match="sha256"):
            deep.fetch_weights("deepfill_v1", bad, timeout=5)
        assert W.imported_info("deepfill_v1") is None
        good = W.WeightsEntry(name="local", files=[W.WeightsFile("gen.pt", url=url, sha256=digest)],
                              licence="test licence")
        info = deep.fetch_weights("deepfill_v1", good, timeout=5)
        assert info["entry"] == "local" and info["licence"] == "test licence" and info["source"] == url
        assert W.imported_info("deepfill_v1")["sha256"] == info["sha256"]
        assert not [p for p in cache.iterdir() if p.name.startswith(".fetch-")]  # the download folder is gone
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = W.WeightsEntry(name="x", files=[W.WeightsFile("g.pt", url=f"http://127.0.0.1:{port}/g.pt")])
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="cannot reach 127.0.0.1"):
        deep.fetch_weights("deepfill_v1", closed, timeout=2)
    assert time.monotonic() - t0 < 10
