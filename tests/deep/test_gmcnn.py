"""GMCNN: architecture against the reference's state_dict, behaviour, official checkpoint format, API.

When ``shared/conformance/gmcnn/`` holds vectors (``case0.npz`` + ``spec.json``: the reference's output
for ``fill.py`` weights), ``test_conformance_with_reference_vectors`` reproduces them; none exist yet.
The key/shape list of the reference ``GMCNN(4, 3, cnum=32)`` (PyTorch version) is recorded in
``data/gmcnn_state_dict.json`` (with its repository and commit).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _helpers import (  # noqa: E402
    assert_hole_depends_on_context_not_on_hole_content,
    assert_state_dict_matches_reference,
    check_conformance_vectors,
    context_and_hole_inputs,
    keys_and_shapes,
    load_reference,
    seeded,
)

import inpaint_plugin  # noqa: E402
from inpaint_plugin import deep  # noqa: E402
from inpaint_plugin.backends.gmcnn import SPEC, _symmetric_extend  # noqa: E402
from inpaint_plugin.deep.nets.gmcnn import GMCNN  # noqa: E402

REFERENCE = load_reference("gmcnn")
SIDE = GMCNN.min_size  # the smallest input the network takes (196)


def test_state_dict_matches_reference():
    assert_state_dict_matches_reference(GMCNN(), REFERENCE)


@pytest.fixture(scope="module")
def outputs():
    """Network outputs for (base, known pixels changed, hole content changed) at the minimum size."""
    batch, masks, hole = context_and_hole_inputs(
        SIDE, hole=(slice(70, 120), slice(60, 130)), band=(slice(None, 40), slice(None))  # top band, outside the hole
    )
    net = seeded(SPEC.build)
    with torch.inference_mode():
        out = net(torch.cat([(batch * 2 - 1) * (1 - masks), masks], 1))
    return out, hole


def test_forward_shape_finite_and_range(outputs):
    out, _ = outputs
    assert out.shape == (3, 3, SIDE, SIDE)
    assert torch.isfinite(out).all() and out.abs().max() <= 1


def test_hole_depends_on_context_not_on_hole_content(outputs):
    out, hole = outputs
    assert_hole_depends_on_context_not_on_hole_content(out, hole)


def test_conformance_with_reference_vectors(conformance_dir, fill_state_dict):
    """The reference's output for fill.py weights (``shared/conformance/gmcnn``), through ``SPEC.predict``."""
    check_conformance_vectors(
        conformance_dir, fill_state_dict, "gmcnn", SPEC, lambda o: (o + 1) / 2  # the reference works in [-1, 1]
    )


def test_rejects_too_small_or_odd_sizes():
    net = GMCNN(cnum=4)
    for h, w in ((SIDE - 4, SIDE), (SIDE + 2, SIDE)):
        with pytest.raises(ValueError, match="multiple of 4 and at least 196"):
            net(torch.zeros(1, 4, h, w))


def test_symmetric_extend_matches_numpy():
    t = torch.arange(2 * 3 * 5, dtype=torch.float32).view(1, 2, 3, 5)
    got = _symmetric_extend(t, 11, 17)  # longer than twice the input: repeated mirroring
    want = np.pad(t.numpy(), ((0, 0), (0, 0), (0, 8), (0, 12)), mode="symmetric")
    np.testing.assert_array_equal(got.numpy(), want)


def test_predict_small_window_is_mirrored_to_the_minimum_size():
    """Windows smaller than 196 are extended, run and cropped back; the result equals running the
    network on the extended window by hand (a narrow network keeps this cheap)."""
    net = seeded(lambda: GMCNN(cnum=8))
    gen = torch.Generator().manual_seed(5)
    image = torch.rand(1, 3, 40, 52, generator=gen)
    mask = torch.zeros(1, 1, 40, 52)
    mask[..., 10:20, 15:30] = 1
    with torch.inference_mode():
        got = SPEC.predict(net, image, mask)
        big_image, big_mask = _symmetric_extend(image, SIDE, SIDE), _symmetric_extend(mask, SIDE, SIDE)
        direct = net(torch.cat([(big_image * 2 - 1) * (1 - big_mask), big_mask], 1))
    assert got.shape == (1, 3, 40, 52)
    torch.testing.assert_close(got, ((direct[..., :40, :52] + 1) / 2), rtol=0, atol=1e-6)


def test_official_checkpoint_format_roundtrip(tmp_path):
    path = tmp_path / "30_net_GM.pth"
    deep.random_checkpoint("gmcnn", path, seed=3)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert keys_and_shapes(raw) == REFERENCE["state_dict"]  # a bare state_dict
    net = SPEC.build()
    SPEC.load(net, path)
    for k, v in net.state_dict().items():
        assert torch.equal(v, raw[k]), k
    SPEC.save_random(tmp_path / "other.pth", seed=4)
    other = torch.load(tmp_path / "other.pth", weights_only=True)
    assert not torch.equal(other["EB1.0.weight"], raw["EB1.0.weight"])


def test_load_lists_wrong_shapes_and_missing_keys(tmp_path):
    state = deep.random_state_dict(SPEC.build)
    state.pop("EB3.17.bias")
    state["decoding_layers.0.weight"] = torch.zeros(16, 225, 3, 3)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        SPEC.load(SPEC.build(), path)
    assert all(s in str(err.value) for s in ("EB3.17.bias", "decoding_layers.0.weight", "broken.pth"))


def test_inpaint_api_keeps_known_pixels(tmp_path):
    path = deep.random_checkpoint("gmcnn", tmp_path / "net_GM.pth")
    rng = np.random.default_rng(0)
    image = rng.random((38, 50, 3)).astype(np.float32)  # not a multiple of 4, smaller than 196
    mask = np.zeros((38, 50), bool)
    mask[12:24, 20:34] = True
    out = inpaint_plugin.inpaint(image, mask, method="gmcnn", weights=str(path), channel_axis=-1, device="cpu")
    assert out.shape == image.shape and out.dtype == image.dtype
    assert np.array_equal(out[~mask], image[~mask])
    assert np.isfinite(out).all() and not np.array_equal(out[mask], image[mask])
