"""DeepFill v1: conformance with the reference port (shared/conformance/deepfill_v1) and the backend."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inpaint_plugin.deep.nets._contextual_attention import contextual_attention  # noqa: E402
from inpaint_plugin.deep.nets.deepfill_v1 import DeepFillV1  # noqa: E402

#: the attention of the reference port (daa233 @ c6cdaea)
V1_ATTENTION = dict(ksize=3, softmax_scale=10.0, fuse=True, fuse_k=3, resize="even", patch_norm="sqrt_eps")


@pytest.fixture(scope="module")
def vectors(conformance_dir):
    d = conformance_dir / "deepfill_v1"
    if not d.is_dir():
        pytest.skip(f"no DeepFill v1 vectors at {d}")
    return d


@pytest.fixture(scope="module")
def spec(vectors):
    return json.loads((vectors / "spec.json").read_text())


@pytest.fixture(scope="module")
def filled_state(spec, fill_state_dict):
    return fill_state_dict(DeepFillV1().state_dict(), seed=spec["fill"]["seed"], gain=spec["fill"]["gain"])


def _forward(model, z):
    with torch.no_grad():
        return model(torch.from_numpy(z["x"]), torch.from_numpy(z["mask"]))


def _max_err(out, ref) -> float:
    return float(np.abs(out.numpy() - ref).max())


def test_state_dict_matches_reference(spec):
    sd = DeepFillV1().state_dict()
    assert [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in sd.items()] == [
        (k, s, d) for k, s, d in spec["state_dict"]
    ]
    assert sum(v.numel() for v in sd.values()) == spec["param_count"]


def test_case0_outputs_and_flow(vectors, spec, filled_state):
    z = np.load(vectors / "case0.npz")
    model = DeepFillV1(return_flow=True).eval()
    model.load_state_dict(filled_state, strict=True)
    s1, s2, flow = _forward(model, z)
    tol = spec["tolerance"]["per_array"]
    assert _max_err(s1, z["x_stage1"]) <= tol["x_stage1"]
    assert _max_err(s2, z["x_stage2"]) <= tol["x_stage2"]
    np.testing.assert_array_equal(flow.numpy(), z["offset_flow"])  # discrete visualisation: exact


def test_case0_tf_patch_norm_variant(vectors, spec, filled_state):
    """The older / official-TF normalisation max(||w||, 1e-4) as a constructor option."""
    z = np.load(vectors / "case0.npz")
    v = np.load(vectors / "case0_variant_tfnorm.npz")
    model = DeepFillV1(patch_norm="max").eval()
    model.load_state_dict(filled_state, strict=True)
    s1, s2 = _forward(model, z)
    tol = spec["extra_files"]["case0_variant_tfnorm.npz"]["tolerance"]
    assert _max_err(s1, z["x_stage1"]) <= spec["tolerance"]["max_abs"]
    assert _max_err(s2, v["x_stage2_tfnorm"]) <= tol["x_stage2_tfnorm"]
    # the variant is a different function: it must not also match the default output
    assert _max_err(s2, z["x_stage2"]) > 10 * tol["x_stage2_tfnorm"]


@pytest.mark.parametrize("patch_norm", ["sqrt_eps", "max"])
def test_contextual_attention_vectors(vectors, spec, patch_norm):
    z = np.load(vectors / "case0_contextual_attention.npz")
    x, mask = torch.from_numpy(z["ca_in"]), torch.from_numpy(z["mask"])
    s = torch.tensor(float(z["soft_scale"]))
    if patch_norm == "sqrt_eps":
        refs, tol = z, spec["extra_files"]["case0_contextual_attention.npz"]["tolerance"]
        names = ("ca_out", "ca_out_soft")
    else:
        refs = np.load(vectors / "case0_variant_tfnorm.npz")
        tol = spec["extra_files"]["case0_variant_tfnorm.npz"]["tolerance"]
        names = ("ca_out_tfnorm", "ca_out_soft_tfnorm")
    kw = dict(V1_ATTENTION, patch_norm=patch_norm)
    with torch.no_grad():
        hard = contextual_attention(x, x, mask, **kw)
        soft = contextual_attention(x * s, x * s, mask, **kw)
    assert _max_err(hard, refs[names[0]]) <= tol[names[0]]
    assert _max_err(soft, refs[names[1]]) <= tol[names[1]]


def test_input_validation():
    model = DeepFillV1(cnum=4)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.zeros(1, 3, 20, 24), torch.zeros(1, 1, 20, 24))
    with pytest.raises(ValueError, match="x must be"):
        model(torch.zeros(1, 5, 16, 16), torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="mask must be"):
        model(torch.zeros(1, 3, 16, 16), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="patch_norm"):
        DeepFillV1(patch_norm="l1")


def test_non_square_batch_matches_single_items():
    """Any multiple-of-8 size works; batch items with one shared mask are independent."""
    torch.manual_seed(0)
    model = DeepFillV1(cnum=8).eval()
    x = torch.rand(2, 3, 48, 80) * 2 - 1
    mask = torch.zeros(2, 1, 48, 80)
    mask[:, :, 16:32, 24:56] = 1
    x = x * (1 - mask)
    with torch.no_grad():
        s1, s2 = model(x, mask)
        single = [model(x[i : i + 1], mask[i : i + 1])[1] for i in range(2)]
    assert s1.shape == s2.shape == (2, 3, 48, 80)
    assert float(s2.abs().max()) <= 1.0
    torch.testing.assert_close(s2, torch.cat(single), rtol=0, atol=1e-6)
    assert not torch.allclose(s2[0], s2[1])


# ------------------------------------------------------------------------------------------------ backend
def test_backend_reproduces_case0_with_tf_patch_norm(vectors, spec, filled_state, tmp_path):
    """The backend builds the variant the released weights were made with (max(||w||, 1e-4))."""
    from inpaint_plugin import deep
    from inpaint_plugin.backends.deepfill_v1 import SPEC

    z = np.load(vectors / "case0.npz")
    v = np.load(vectors / "case0_variant_tfnorm.npz")
    path = tmp_path / "gen_00000000.pt"
    torch.save(filled_state, path)
    image = z["image_uint8"].astype(np.float32) / np.float32(255)
    mask = z["mask_uint8"] > 127
    deep.clear_model_cache()
    out = deep.run(SPEC, image, mask, weights=path, device="cpu")
    expected = (v["x_stage2_tfnorm"][0].transpose(1, 2, 0) + 1) / 2
    # image*2-1 here vs image/127.5-1 in the reference: a few ulps at the input
    assert np.abs(out[mask] - expected[mask]).max() <= spec["extra_files"]["case0_variant_tfnorm.npz"]["tolerance"][
        "x_stage2_tfnorm"
    ]
    np.testing.assert_array_equal(out[~mask], image[~mask])


def test_random_checkpoint_is_official_format_and_inpaint_runs(spec, tmp_path):
    import inpaint_plugin
    from inpaint_plugin import deep

    path = deep.random_checkpoint("deepfill_v1", tmp_path / "gen_random.pt", seed=3)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert [(k, list(v.shape)) for k, v in ckpt.items()] == [(k, s) for k, s, _ in spec["state_dict"]]

    backend = inpaint_plugin.methods()["deepfill_v1"]
    assert backend.needs_weights and backend.channels == "rgb"
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)  # not a multiple of 8: padded inside
    mask = np.zeros((45, 61), bool)
    mask[10:30, 20:50] = True
    out = inpaint_plugin.inpaint(image, mask, method="deepfill_v1", channel_axis=-1, weights=str(path), device="cpu")
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], image[~mask])


def test_converted_tf_checkpoint_layout_loads(tmp_path):
    """torch_model.p: generator keys prefixed with 'netG.' beside discriminator keys."""
    from inpaint_plugin.backends.deepfill_v1 import SPEC

    torch.manual_seed(0)
    state = SPEC.build().state_dict()
    state = {k: torch.randn_like(v) for k, v in state.items()}
    flat = {f"netG.{k}": v for k, v in state.items()}
    flat["localD.dis_conv_module.conv1.conv.weight"] = torch.zeros(64, 3, 5, 5)
    path = tmp_path / "torch_model.p"
    torch.save(flat, path)
    module = SPEC.build()
    SPEC.load(module, path)
    for k, v in module.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)


def test_backend_errors(tmp_path):
    import inpaint_plugin
    from inpaint_plugin.backends.deepfill_v1 import SPEC

    image = np.zeros((16, 16, 3), np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[4:8, 4:8] = True
    with pytest.raises(ValueError, match="gen_00430000.pt"):
        inpaint_plugin.inpaint(image, mask, method="deepfill_v1", channel_axis=-1)
    wrong = tmp_path / "wrong.pt"
    torch.save({"netG.coarse_generator.conv1.conv.weight": torch.zeros(32, 5, 5, 5)}, wrong)
    with pytest.raises(ValueError, match="missing keys"):
        SPEC.load(SPEC.build(), wrong)
