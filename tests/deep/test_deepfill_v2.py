"""DeepFill v2: conformance with the reference port (shared/conformance/deepfill_v2) and the backend."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inpaint_plugin.deep.nets._contextual_attention import contextual_attention  # noqa: E402
from inpaint_plugin.deep.nets.deepfill_v2 import DeepFillV2  # noqa: E402

#: the attention of the reference port (nipponjo networks_tf.py @ 4899fd3)
V2_ATTENTION = dict(ksize=3, softmax_scale=10.0, fuse=False, fuse_k=3, resize="align_corners", patch_norm="max")


@pytest.fixture(scope="module")
def vectors(conformance_dir):
    d = conformance_dir / "deepfill_v2"
    if not d.is_dir():
        pytest.skip(f"no DeepFill v2 vectors at {d}")
    return d


@pytest.fixture(scope="module")
def spec(vectors):
    return json.loads((vectors / "spec.json").read_text())


def _max_err(out, ref) -> float:
    return float(np.abs(out.numpy() - ref).max())


def test_state_dict_matches_reference(spec):
    sd = DeepFillV2().state_dict()
    assert [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in sd.items()] == [
        (k, s, d) for k, s, d in spec["state_dict"]
    ]
    assert sum(v.numel() for v in sd.values()) == spec["param_count"]


def test_case0_outputs(vectors, spec, fill_state_dict):
    z = np.load(vectors / "case0.npz")
    model = DeepFillV2().eval()
    model.load_state_dict(fill_state_dict(model.state_dict(), seed=spec["fill"]["seed"], gain=spec["fill"]["gain"]))
    with torch.no_grad():
        s1, s2 = model(torch.from_numpy(z["x"]), torch.from_numpy(z["mask"]))
    tol = spec["tolerance"]["per_array"]
    assert _max_err(s1, z["x_stage1"]) <= tol["x_stage1"]
    assert _max_err(s2, z["x_stage2"]) <= tol["x_stage2"]


def test_contextual_attention_vectors(vectors, spec):
    z = np.load(vectors / "case0_contextual_attention.npz")
    x, mask = torch.from_numpy(z["ca_in"]), torch.from_numpy(z["mask"])
    s = torch.tensor(float(z["soft_scale"]))
    tol = spec["extra_files"]["case0_contextual_attention.npz"]["tolerance"]
    with torch.no_grad():
        hard = contextual_attention(x, x, mask, **V2_ATTENTION)
        soft = contextual_attention(x * s, x * s, mask, **V2_ATTENTION)
    assert _max_err(hard, z["ca_out"]) <= tol["ca_out"]
    assert _max_err(soft, z["ca_out_soft"]) <= tol["ca_out_soft"]


def test_contextual_attention_fuse_vector(vectors, spec):
    """The official score fusion (fuse=True), as used by the TF graph and by DeepFill v1."""
    z = np.load(vectors / "case0_contextual_attention.npz")
    f = np.load(vectors / "case0_contextual_attention_fuse.npz")
    x, mask = torch.from_numpy(z["ca_in"]), torch.from_numpy(z["mask"])
    s = torch.tensor(float(f["fuse_soft_scale"]))
    tol = spec["extra_files"]["case0_contextual_attention_fuse.npz"]["tolerance"]["ca_out_fuse_soft"]
    with torch.no_grad():
        fused = contextual_attention(x * s, x * s, mask, **dict(V2_ATTENTION, fuse=True))
        plain = contextual_attention(x * s, x * s, mask, **V2_ATTENTION)
    assert _max_err(fused, f["ca_out_fuse_soft"]) <= tol
    assert _max_err(plain, f["ca_out_fuse_soft"]) > 100 * tol  # fusion changes the function


def test_attention_ignores_patches_touching_the_hole():
    """Each output pixel is a mix of 4x4 background patches with no hole pixel in their 3x3 window."""
    torch.manual_seed(0)
    feat = torch.rand(1, 4, 16, 16)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 24:40, 24:40] = 1
    out, attn = contextual_attention(feat, feat, mask, **V2_ATTENTION, return_attention=True)
    assert out.shape == feat.shape and attn.shape == (1, 64, 8, 8)
    valid = attn.sum(dim=(0, 2, 3)) > 0
    # the hole covers rows/cols 3..4 of the 8x8 grid (align_corners rule), so patches with centre
    # rows/cols 2..5 touch it; all others are usable
    grid = torch.zeros(8, 8, dtype=torch.bool)
    grid[2:6, 2:6] = True
    torch.testing.assert_close(valid.view(8, 8), ~grid)


def test_non_square_batch_matches_single_items(fill_state_dict):
    """Any multiple-of-8 size works (TF "SAME" padding); batch items with one shared mask are independent."""
    torch.manual_seed(0)
    model = DeepFillV2(cnum=8).eval()
    model.load_state_dict(fill_state_dict(model.state_dict(), seed=1, gain=2.0))  # non-constant output
    image = torch.rand(2, 3, 40, 72) * 2 - 1
    mask = torch.zeros(2, 1, 40, 72)
    mask[:, :, 8:24, 16:48] = 1
    x = torch.cat([image * (1 - mask), torch.ones_like(mask), mask], dim=1)
    with torch.no_grad():
        s1, s2 = model(x, mask)
        single = [model(x[i : i + 1], mask[i : i + 1])[1] for i in range(2)]
    assert s1.shape == s2.shape == (2, 3, 40, 72)
    assert float(s2.abs().max()) < 1.0
    torch.testing.assert_close(s2, torch.cat(single), rtol=0, atol=1e-6)
    assert not torch.allclose(s2[0], s2[1])


def test_input_validation():
    model = DeepFillV2(cnum=8)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.zeros(1, 5, 20, 24), torch.zeros(1, 1, 20, 24))
    with pytest.raises(ValueError, match="x must be"):
        model(torch.zeros(1, 3, 16, 16), torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="cnum"):
        DeepFillV2(cnum=6)


# ------------------------------------------------------------------------------------------------ backend
def test_backend_reproduces_case0(vectors, spec, fill_state_dict, tmp_path):
    """The official checkpoint format ({'G': state_dict}) through the backend's run() = reference output."""
    from inpaint_plugin import deep
    from inpaint_plugin.backends.deepfill_v2 import SPEC

    z = np.load(vectors / "case0.npz")
    state = fill_state_dict(SPEC.build().state_dict(), seed=spec["fill"]["seed"], gain=spec["fill"]["gain"])
    path = tmp_path / "states_tf_case0.pth"
    torch.save({"G": state}, path)
    image = z["image_uint8"].astype(np.float32) / np.float32(255)  # test.py: ToTensor, then *2 - 1
    mask = z["mask_uint8"] > 127
    deep.clear_model_cache()
    out = deep.run(SPEC, image, mask, weights=path, device="cpu")
    expected = (z["x_stage2"][0].transpose(1, 2, 0) + 1) / 2
    assert np.abs(out[mask] - expected[mask]).max() <= spec["tolerance"]["per_array"]["x_stage2"]
    np.testing.assert_array_equal(out[~mask], image[~mask])


def test_random_checkpoint_is_official_format_and_inpaint_runs(spec, tmp_path):
    import inpaint_plugin
    from inpaint_plugin import deep

    path = deep.random_checkpoint("deepfill_v2", tmp_path / "random.pth", seed=3)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert list(ckpt) == ["G"]
    assert [(k, list(v.shape)) for k, v in ckpt["G"].items()] == [(k, s) for k, s, _ in spec["state_dict"]]

    backend = inpaint_plugin.methods()["deepfill_v2"]
    assert backend.needs_weights and backend.channels == "rgb"
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)  # not a multiple of 8: padded inside
    mask = np.zeros((45, 61), bool)
    mask[10:30, 20:50] = True
    out = inpaint_plugin.inpaint(image, mask, method="deepfill_v2", channel_axis=-1, weights=str(path), device="cpu")
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], image[~mask])


def test_backend_errors(tmp_path):
    import inpaint_plugin
    from inpaint_plugin.backends.deepfill_v2 import SPEC

    image = np.zeros((16, 16, 3), np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[4:8, 4:8] = True
    with pytest.raises(ValueError, match="states_tf_places2.pth"):
        inpaint_plugin.inpaint(image, mask, method="deepfill_v2", channel_axis=-1)
    wrong = tmp_path / "wrong.pth"
    torch.save({"G": {"conv1.conv.weight": torch.zeros(48, 5, 5, 5)}}, wrong)
    with pytest.raises(ValueError, match="missing keys"):
        SPEC.load(SPEC.build(), wrong)
