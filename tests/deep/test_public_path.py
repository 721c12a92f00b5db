"""The public path is the reference function: ``inpaint(photo_uint8, mask, method=M, weights=W)`` with
weights in the official format gives the reference test script's composite within one grey level, for
every network with conformance vectors (``shared/conformance/<model>/case0.npz``).

Also: what the networks see for 16-bit and float data (one robust range per RGB group, colour kept,
``value_range=`` overrides it).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import inpaint_plugin as ip  # noqa: E402
from inpaint_plugin import deep  # noqa: E402

NETWORKS = ["deepfill_v1", "deepfill_v2", "gmcnn", "lama", "medfe", "pennet", "spl"]


def _filled_module(spec, method, vectors, fill_state_dict):
    """The network with the conformance weights (MEDFE: each sub-module filled with its own keys)."""
    module = spec.build().eval()
    fill = vectors["fill"]
    subs = [module.netEN, module.netMEDFE, module.netDE] if method == "medfe" else [module]
    for sub in subs:
        sub.load_state_dict(fill_state_dict(sub.state_dict(), seed=fill["seed"], gain=fill["gain"]), strict=True)
    return module


def _reference_composite_255(case) -> np.ndarray:
    """The reference's float composite (before its uint8 truncation) in grey levels, (H, W, 3)."""
    comp = case["composite"][0].transpose(1, 2, 0).astype(np.float64)
    image = case["image"][0]
    if image.min() < -1e-6:  # the network works in [-1, 1]
        comp = (comp + 1) / 2
    return comp * 255


@pytest.mark.slow
@pytest.mark.parametrize("method", NETWORKS)
def test_inpaint_uint8_reproduces_the_reference_composite(method, conformance_dir, fill_state_dict, tmp_path):
    folder = conformance_dir / method
    if not (folder / "case0.npz").is_file():
        pytest.skip(f"no conformance vectors for {method}")
    if method not in ip.methods():
        pytest.skip(f"method {method!r} is not registered")
    vectors = json.loads((folder / "spec.json").read_text())
    case = np.load(folder / "case0.npz")
    spec = deep.model_spec(method)
    module = _filled_module(spec, method, vectors, fill_state_dict)
    weights = tmp_path / ("weights" if method == "medfe" else "weights.pth")
    spec.save(module, weights)  # the official format, as the authors publish it
    del module

    image = case["image_uint8"]
    mask = case["mask_uint8"] > 0
    before = image.copy()
    deep.clear_model_cache()
    out = ip.inpaint(image, mask, method=method, channel_axis=-1, weights=str(weights), device="cpu")
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out[~mask], image[~mask])  # known pixels bit-exact
    np.testing.assert_array_equal(image, before)
    ref = _reference_composite_255(case)
    diff = np.abs(out.astype(np.float64) - ref)[mask]
    assert diff.max() <= 1.0, f"{method}: hole pixels off by up to {diff.max():.2f} grey levels"
    # and the network saw x / 255: the truncated reference uint8 composite is within one level too
    if method != "deepfill_v1":  # v1's output_uint8 is the raw stage-2 output, not a composite
        trunc = np.abs(out.astype(int) - case["output_uint8"].astype(int))[mask]
        assert trunc.max() <= 1


# ------------------------------------------------------------------------------------------------
# What a network sees for 16-bit and float data: a recording network (no weights file needed beyond
# a random one: the spec's predict is replaced by one that records its input).
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def recording_method(tmp_path):
    """A registered deep method whose network records its input and fills holes with grey 0.5."""
    seen = []

    def build():
        return torch.nn.Conv2d(1, 1, 1)

    def load(module, path):
        deep.load_checked(module, deep.load_state_dict_file(path), path=path)

    def predict(module, image, mask):
        seen.append(image.detach().cpu().numpy().copy())
        return image * (1 - mask) + 0.5 * mask

    spec = deep.ModelSpec(name="rec_net", build=build, load=load, predict=predict,
                          save_state=lambda sd, p: deep.write_checkpoint(sd, p), weights_help="test",
                          fixed_size=None, size_multiple=8, tile_size=64)

    class Plugin:
        @ip.hookimpl
        def inpaint_plugin_backends(self):
            return [deep.make_backend(spec, "records its input")]

    plugin = Plugin()
    ip.register(plugin, name="rec-net")
    weights = tmp_path / "w.pth"
    spec.save_random(weights)
    deep.clear_model_cache()
    yield seen, str(weights)
    ip.unregister(plugin)


def _rgb(dtype, scale):
    yy, xx = np.mgrid[:32, :32]
    img = np.stack([xx, yy, xx + yy], axis=-1).astype(np.float64) / 62 * scale
    return img.astype(dtype)


def test_uint8_reaches_the_network_as_x_over_255(recording_method):
    seen, w = recording_method
    img = _rgb(np.uint8, 100)  # a dark image: not stretched
    mask = np.zeros((32, 32), bool)
    mask[10:14, 10:14] = True
    ip.inpaint(img, mask, method="rec_net", channel_axis=-1, weights=w, device="cpu")
    x = seen[-1][0].transpose(1, 2, 0)
    np.testing.assert_allclose(x[~mask], img[~mask] / 255.0, atol=1e-6)


def test_uint16_uses_one_robust_range_for_the_rgb_group(recording_method):
    seen, w = recording_method
    img = _rgb(np.uint16, 40000) + 1000
    img[0, 0] = 65535  # one hot pixel must not squash the others' range
    mask = np.zeros((32, 32), bool)
    mask[10:14, 10:14] = True
    out = ip.inpaint(img, mask, method="rec_net", channel_axis=-1, weights=w, device="cpu")
    x = seen[-1][0].transpose(1, 2, 0).astype(np.float64)
    known, data = x[~mask].ravel(), img[~mask].astype(np.float64).ravel()
    inside = (known > 0) & (known < 1)  # the percentiles clip the extremes
    assert inside.mean() > 0.95
    # one affine map for all three channels (colour kept): x = (img - a) / (b - a)
    slope, icpt = np.polyfit(data[inside], known[inside], 1)
    np.testing.assert_allclose(slope * data[inside] + icpt, known[inside], atol=1e-5)
    assert x[0, 0].max() == pytest.approx(1.0)  # the hot pixel is clipped: it does not squash the range
    assert known[inside].max() > 0.95 and known.min() < 0.05  # the data span the network's range
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out[~mask], img[~mask])


def test_value_range_overrides_the_mapping(recording_method):
    seen, w = recording_method
    img = _rgb(np.float32, 2.0) - 1.0  # float data in [-1, 1]
    mask = np.zeros((32, 32), bool)
    mask[4:8, 20:24] = True
    ip.inpaint(img, mask, method="rec_net", channel_axis=-1, weights=w, device="cpu", value_range=(-1, 1))
    x = seen[-1][0].transpose(1, 2, 0)
    np.testing.assert_allclose(x[~mask], (img[~mask] + 1) / 2, atol=1e-6)
    out = ip.inpaint(img, mask, method="rec_net", channel_axis=-1, weights=w, device="cpu", value_range=(-1, 1),
                     clip=False)
    np.testing.assert_allclose(out[mask], 0.0, atol=1e-6)  # grey 0.5 maps back to the middle of the range


def test_value_range_is_refused_for_methods_that_do_not_map_values():
    img = np.random.default_rng(0).random((16, 16))
    mask = np.zeros((16, 16), bool)
    mask[4:6, 4:6] = True
    with pytest.raises(TypeError, match="value_range"):
        ip.inpaint(img, mask, method="biharmonic", value_range=(0, 1))
    with pytest.raises(ValueError, match="value_range"):
        ip.inpaint(img, mask, method="biharmonic", value_range=(1, 0))
