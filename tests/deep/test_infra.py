"""Tests of the shared deep-learning machinery (`inpaint_plugin.deep`) with a tiny network."""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import os
import pickle
import threading
import types
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _helpers import ToyNet, toy_spec

import inpaint_plugin
from inpaint_plugin import deep

FILL = (0.25, 0.5, 0.75)


_Toy = ToyNet  # one 3x3 convolution


def _make_spec(fixed_size=None, tile_size=64, margin=8, registry=(), calls=None, builds=None):
    """A spec whose network paints every hole with the colour FILL (so the compositing is checkable)."""

    def predict(module, image, mask):
        assert image.dtype == torch.float32 and mask.shape[1] == 1
        if calls is not None:
            calls.append((tuple(image.shape), float(mask.mean())))
        module.conv(torch.cat([image, mask], 1))  # the weights are used, the output is the known colour
        colour = torch.tensor(FILL, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
        return image * (1 - mask) + colour * mask

    return toy_spec(predict, name="toy", fixed_size=fixed_size, tile_size=tile_size, margin=margin,
                    registry=registry, builds=builds)


@pytest.fixture
def toy_weights(tmp_path):
    path = tmp_path / "toy.pth"
    _make_spec().save_random(path, seed=1)
    return path


pytestmark = pytest.mark.usefixtures("fresh_model_cache")


# ------------------------------------------------------------------------------------------------ device
def test_get_device_cpu_and_auto_disable_tf32():
    torch.backends.cuda.matmul.allow_tf32 = True
    assert deep.get_device("cpu") == torch.device("cpu")
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    auto = deep.get_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)
    assert auto.type in ("cuda", "mps", "cpu")


def test_get_device_errors():
    with pytest.raises(ValueError, match="device"):
        deep.get_device("tpu")
    with pytest.raises(TypeError, match="device"):
        deep.get_device(0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            deep.get_device("cuda")


# ------------------------------------------------------------------------------------------------ loading
def _sd():
    return {"a.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.tensor([1.0, 2.0])}


@pytest.mark.parametrize("wrap", [
    lambda sd: sd,
    lambda sd: {"state_dict": sd},
    lambda sd: {"net": sd, "optimize": {"state": {}, "param_groups": [{"lr": 0.1}]}},
    lambda sd: {"netG": {"module." + k: v for k, v in sd.items()}, "netD": {"x": torch.zeros(1)}},
    lambda sd: {"generator": sd, "epoch": 3},
    lambda sd: {"G": sd, "D": {"d.weight": torch.zeros(1)}},
])
def test_load_state_dict_file_unwraps(tmp_path, wrap):
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(_sd()), path)
    loaded = deep.load_state_dict_file(path)
    assert set(loaded) == set(_sd())
    for k, v in _sd().items():
        assert torch.equal(loaded[k], v)


def test_load_state_dict_file_safetensors(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "ckpt.safetensors"
    save_file(_sd(), str(path))
    loaded = deep.load_state_dict_file(path)
    assert torch.equal(loaded["a.weight"], _sd()["a.weight"])
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"weights=.*ckpt\.safetensors"):
        deep.load_state_dict_file(path)


def test_load_state_dict_file_bad_files(tmp_path):
    with pytest.raises(ValueError, match=r"my_arg=.*nope\.pth.*no such"):
        deep.load_state_dict_file(tmp_path / "nope.pth", argument="my_arg")
    good = tmp_path / "good.pth"
    torch.save(_sd(), good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"weights=.*truncated\.pth"):
        deep.load_state_dict_file(truncated)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ValueError, match=r"garbage\.pth"):
        deep.load_state_dict_file(garbage)
    not_sd = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], not_sd)
    with pytest.raises(ValueError, match="state_dict"):
        deep.load_state_dict_file(not_sd)
    no_tensors = tmp_path / "dict.pth"
    torch.save({"epoch": 3, "lr": 0.1}, no_tensors)
    with pytest.raises(ValueError, match="not a state_dict"):
        deep.load_state_dict_file(no_tensors)


class _Evil:
    """Unpickling this would create the file ``marker`` (stands for running arbitrary code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, legacy):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"a.weight": torch.zeros(2), "b": _Evil(marker)}
    if legacy:  # a plain (non-zip) pickle file
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=2)
    else:
        torch.save(payload, path)
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"weights=.*evil\.pth.*refused"):
        deep.load_state_dict_file(path)
    assert not marker.exists()


def test_load_checked_lists_problems():
    module = torch.nn.Linear(3, 2)
    sd = {"weight": torch.zeros(2, 4), "extra.weight": torch.zeros(1)}
    with pytest.raises(ValueError) as info:
        deep.load_checked(module, sd, path="x.pth")
    msg = str(info.value)
    assert "missing keys: bias" in msg and "unexpected keys: extra.weight" in msg
    assert "weight: checkpoint (2, 4) vs network (2, 3)" in msg and "x.pth" in msg
    deep.load_checked(module, {"weight": torch.ones(2, 3), "bias": torch.ones(2), "loss.w": torch.ones(1)},
                        drop_prefixes=("loss.",))
    assert torch.equal(module.weight, torch.ones(2, 3))


def test_random_state_dict_is_deterministic_and_keeps_global_rng():
    state = torch.random.get_rng_state()
    a = deep.random_state_dict(_Toy, seed=3)
    b = deep.random_state_dict(_Toy, seed=3)
    c = deep.random_state_dict(_Toy, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a["conv.weight"], b["conv.weight"]) and not torch.equal(a["conv.weight"], c["conv.weight"])


# ------------------------------------------------------------------------------------------------ weights
def test_resolve_weights_path_and_missing(tmp_path, toy_weights):
    spec = _make_spec()
    assert deep.resolve_weights(spec, toy_weights) == toy_weights
    assert deep.resolve_weights(spec, str(toy_weights)) == toy_weights
    with pytest.raises(ValueError, match=r"no such file.*save_random.*weights="):
        deep.resolve_weights(spec, tmp_path / "absent.pth")
    with pytest.raises(ValueError, match=r"needs trained weights.*save_random.*weights='path/to"):
        deep.resolve_weights(spec, None)
    drive = deep.WeightsEntry("drive", [deep.WeightsFile("w.pth", url="https://drive.google.com/x")],
                                instructions="Download w.pth from Google Drive.")
    with pytest.raises(ValueError, match=r"Download w\.pth from Google Drive\..*weights="):
        deep.resolve_weights(_make_spec(registry=[drive]), None)
    with pytest.raises(TypeError, match="weights"):
        deep.resolve_weights(spec, 3)


@pytest.fixture
def http_dir(tmp_path):
    """A local HTTP server (thread) serving a folder: downloads without internet."""
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_registry_download_offline_and_hash(tmp_path, monkeypatch, http_dir, toy_weights):
    root, url = http_dir
    (root / "toy.pth").write_bytes(toy_weights.read_bytes())
    sha = hashlib.sha256(toy_weights.read_bytes()).hexdigest()
    entry = deep.WeightsEntry("default", [deep.WeightsFile("toy.pth", url=f"{url}/toy.pth", sha256=sha)])
    spec = _make_spec(registry=[entry])
    monkeypatch.setenv("INPAINT_PLUGIN_CACHE", str(tmp_path / "cache"))

    monkeypatch.setenv("INPAINT_PLUGIN_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"INPAINT_PLUGIN_OFFLINE.*not in the cache.*weights="):
        deep.resolve_weights(spec, None)

    monkeypatch.delenv("INPAINT_PLUGIN_OFFLINE")
    got = deep.resolve_weights(spec, None)
    assert got == tmp_path / "cache" / "toy" / "default" / "toy.pth"
    assert got.read_bytes() == toy_weights.read_bytes()

    (root / "toy.pth").unlink()  # the server is gone from now on: offline use of the cached file
    monkeypatch.setenv("INPAINT_PLUGIN_OFFLINE", "true")
    assert deep.resolve_weights(spec, None) == got
    image = np.random.default_rng(0).random((40, 40, 3)).astype(np.float32)
    mask = np.zeros((40, 40), bool)
    mask[10:20, 5:9] = True
    out = deep.run(spec, image, mask)
    np.testing.assert_allclose(out[mask], np.broadcast_to(FILL, (mask.sum(), 3)), atol=1e-6)

    bad = deep.WeightsEntry("bad", [deep.WeightsFile("toy.pth", url=f"{url}/toy.pth", sha256="0" * 64)])
    monkeypatch.delenv("INPAINT_PLUGIN_OFFLINE")
    (root / "toy.pth").write_bytes(b"not the file")
    with pytest.raises(ValueError, match=r"could not download.*'bad'"):
        deep.resolve_weights(_make_spec(registry=[bad]), None)


def test_folder_entry_resolves_to_folder(tmp_path, monkeypatch, http_dir):
    root, url = http_dir
    files = []
    for name in ("A.pkl", "B.pkl"):
        (root / name).write_bytes(name.encode() * 10)
        files.append(deep.WeightsFile(name, url=f"{url}/{name}",
                                        sha256=hashlib.sha256(name.encode() * 10).hexdigest()))
    monkeypatch.setenv("INPAINT_PLUGIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("INPAINT_PLUGIN_OFFLINE", raising=False)
    got = deep.resolve_weights(_make_spec(registry=[deep.WeightsEntry("ds", files, folder=True)]), None)
    assert got.is_dir() and sorted(p.name for p in got.iterdir()) == ["A.pkl", "B.pkl"]
    with pytest.raises(ValueError, match="folder=True"):
        deep.WeightsEntry("x", files)


# ------------------------------------------------------------------------------------------------ run
def _holes(h, w):
    mask = np.zeros((h, w), bool)
    mask[3:9, 4:12] = True           # small, near the border
    mask[h // 2, w // 2] = True      # a dead pixel
    mask[h - 30:h - 4, 20:70] = True  # a larger hole
    mask[::37, w - 3] = True         # a column of dead pixels at the right border
    if h >= 120:
        mask[40:100, 100:170] = True  # a thick hole larger than the network input
    return mask


@pytest.mark.parametrize("fixed_size", [64, None])
@pytest.mark.parametrize("shape", [(150, 211), (40, 30), (64, 64)])
def test_run_all_resolutions_fill_every_hole_and_keep_known(toy_weights, fixed_size, shape):
    calls = []
    spec = _make_spec(fixed_size=fixed_size, calls=calls)
    rng = np.random.default_rng(1)
    image = rng.random(shape + (3,)).astype(np.float32)
    mask = _holes(*shape)
    for resolution in spec.resolutions:
        calls.clear()
        out = deep.run(spec, image, mask, weights=toy_weights, device="cpu", resolution=resolution)
        assert out.shape == image.shape and out.dtype == np.float32
        assert np.array_equal(out[~mask], image[~mask]), resolution
        np.testing.assert_allclose(out[mask], np.broadcast_to(FILL, (mask.sum(), 3)), atol=1e-5,
                                   err_msg=resolution)
        assert calls, resolution
        if fixed_size and max(shape) <= fixed_size and resolution != "tile":
            assert len(calls) == 1  # a small image is one network run
        for (b, c, h, w), hole_fraction in calls:
            assert (b, c) == (1, 3) and hole_fraction > 0  # only windows holding holes are run
            if fixed_size:
                assert (h, w) == (fixed_size, fixed_size)
            else:
                assert h % 8 == 0 and w % 8 == 0
                if resolution != "full":
                    assert max(h, w) <= 64 + 7


def test_run_crops_group_small_holes(toy_weights):
    calls = []
    spec = _make_spec(fixed_size=64, margin=8, calls=calls)
    image = np.random.default_rng(2).random((256, 256, 3)).astype(np.float32)
    mask = np.zeros((256, 256), bool)
    rr, cc = np.meshgrid(np.arange(5, 256, 10), np.arange(5, 256, 10), indexing="ij")
    mask[rr, cc] = True  # 676 dead pixels
    out = deep.run(spec, image, mask, weights=toy_weights, resolution="crop")
    assert np.array_equal(out[~mask], image[~mask])
    np.testing.assert_allclose(out[mask], np.broadcast_to(FILL, (mask.sum(), 3)), atol=1e-6)
    assert len(calls) <= 36  # windows of 64 (48 usable) around groups, not one run per hole


def test_crop_windows_cover_holes_with_context():
    rng = np.random.default_rng(3)
    mask = rng.random((300, 200)) > 0.995
    mask[100:220, 50:110] = True  # a thick hole too large for one window: own, larger window
    mask[250:254, 5:195] = True  # a thin stripe: tiles at full resolution, no window
    windows, thin = deep._windows.crop_windows(mask, side=64, margin=8)
    assert thin[250:254, 5:195].all() and thin.sum() == 4 * 190
    written = thin.astype(int)
    for r0, r1, c0, c1, write in windows:
        assert write.shape == (r1 - r0, c1 - c0) and write.any()
        written[r0:r1, c0:c1] += write
        rows, cols = np.nonzero(write)
        rows, cols = rows + r0, cols + c0
        # the written holes keep >= margin context inside the window (clipped at the image border)
        assert r0 <= max(rows.min() - 8, 0) and r1 >= min(rows.max() + 9, 300)
        assert c0 <= max(cols.min() - 8, 0) and c1 >= min(cols.max() + 9, 200)
    assert np.array_equal(written, mask.astype(int))  # each hole pixel written exactly once


def test_run_validates_and_caches_models(tmp_path, toy_weights):
    builds = []
    spec = _make_spec(fixed_size=64, builds=builds)
    image = np.zeros((70, 70, 3), np.float32)
    mask = np.zeros((70, 70), bool)
    mask[30:40, 30:40] = True
    deep.run(spec, image, mask, weights=toy_weights)
    deep.run(spec, image, mask, weights=toy_weights, resolution="tile")
    assert len(builds) == 1
    folder = tmp_path / "folder"
    folder.mkdir()
    torch.save(torch.load(toy_weights, weights_only=True), folder / "w.pth")
    folder_spec = dataclasses.replace(spec, load=lambda module, path: spec.load(module, path / "w.pth"))
    deep.run(folder_spec, image, mask, weights=folder)
    deep.run(folder_spec, image, mask, weights=folder)
    assert len(builds) == 2
    os.utime(folder / "w.pth", ns=(1, 1))  # a file of the folder rewritten: the model is reloaded
    deep.run(folder_spec, image, mask, weights=folder)
    assert len(builds) == 3
    with pytest.raises(ValueError, match="resolution"):
        deep.run(spec, image, mask, weights=toy_weights, resolution="full")
    with pytest.raises(ValueError, match=r"mask must have shape"):
        deep.run(spec, image, mask[:5], weights=toy_weights)
    with pytest.raises(ValueError, match=r"image must have shape"):
        deep.run(spec, image[..., 0], mask, weights=toy_weights)
    other = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(3, 4, 3, 3)}, other)
    with pytest.raises(ValueError, match=r"missing keys: conv\.bias"):
        deep.run(spec, image, mask, weights=other)


# ------------------------------------------------------------------------------------------------ backend
def test_make_backend_through_public_api(tmp_path, monkeypatch):
    spec = _make_spec(fixed_size=64)
    backend = deep.make_backend(spec, "toy network")
    assert backend.needs_weights and backend.channels == "rgb" and backend.normalize
    assert backend.spatial_ndim == 2 and backend.dtype == "float32"
    params = backend.param_map
    assert params["weights"].kind == "path" and params["weights"].default is None
    assert tuple(params["device"].choices) == ("auto", "cpu", "cuda", "mps")
    assert tuple(params["resolution"].choices) == spec.resolutions
    plugin = types.SimpleNamespace(inpaint_plugin_backends=inpaint_plugin.hookimpl(lambda: [backend]))
    inpaint_plugin.register(plugin, name="toy-plugin")
    try:
        path = deep.random_checkpoint("toy", tmp_path / "w.pth", seed=5)
        assert path.is_file()
        image = np.linspace(0, 200, 50 * 60, dtype=np.float64).reshape(50, 60)  # grey, mapped to RGB by the API
        mask = np.zeros(image.shape, bool)
        mask[20:30, 10:25] = True
        out = inpaint_plugin.inpaint(image, mask, method="toy", weights=str(path), device="cpu")
        assert np.array_equal(out[~mask], image[~mask])
        assert np.isfinite(out).all() and out[mask].min() >= 0 and out[mask].max() <= 200
        with pytest.raises(ValueError, match=r"needs trained weights.*weights="):
            inpaint_plugin.inpaint(image, mask, method="toy")
        with pytest.raises(ValueError, match="not a registered deep method"):
            deep.random_checkpoint("biharmonic", tmp_path / "x.pth")
    finally:
        inpaint_plugin.unregister(name="toy-plugin")
