"""MEDFE: conformance with the reference (shared/conformance/medfe), official checkpoint format, backend."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import inpaint_plugin  # noqa: E402
from inpaint_plugin import deep  # noqa: E402
from inpaint_plugin.backends import medfe as backend  # noqa: E402
from inpaint_plugin.deep.nets import medfe as net  # noqa: E402


@pytest.fixture(scope="module")
def medfe_dir(conformance_dir):
    return conformance_dir / "medfe"


@pytest.fixture(scope="module")
def spec_json(medfe_dir):
    return json.loads((medfe_dir / "spec.json").read_text())


@pytest.fixture(scope="module")
def filled_model(spec_json, fill_state_dict):
    """The network with the conformance weights (each sub-module filled with its own unprefixed keys)."""
    model = net.MEDFE().eval()
    fill = spec_json["fill"]
    for sub in (model.netEN, model.netMEDFE, model.netDE):
        sub.load_state_dict(fill_state_dict(sub.state_dict(), seed=fill["seed"], gain=fill["gain"]), strict=True)
    return model


@pytest.fixture(scope="module")
def scratch_model():
    """A network the loading tests load weights into (built once: ~130 M parameters)."""
    return backend.SPEC.build()


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A weights folder in the official format with random weights (written once: ~520 MB)."""
    folder = tmp_path_factory.mktemp("medfe") / "weights"
    path = deep.random_checkpoint("medfe", folder, seed=0)
    yield path
    deep.clear_model_cache()


def test_state_dict_keys_and_shapes_match_reference(spec_json, filled_model):
    model = filled_model
    keys = []
    for sub in (model.netEN, model.netMEDFE, model.netDE):
        keys += [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sub.state_dict().items()]
    assert keys == spec_json["state_dict"]
    files = spec_json["state_dict_files"]
    assert len(model.netEN.state_dict()) == files["EN.pkl"]["count"]
    assert sum(v.numel() for v in model.netMEDFE.state_dict().values()) == files["MEDEF.pkl"]["numel"]


def test_reproduces_case0(medfe_dir, spec_json, filled_model):
    z = np.load(medfe_dir / "case0.npz")
    tol = spec_json["tolerance"]["max_abs"]
    # the input is built as test.py does, from the uint8 image and the 255 = hole mask
    hole = torch.from_numpy(z["mask_global"]).float()
    enc = net.MEDFE.make_input(torch.from_numpy(z["image"]), hole)
    np.testing.assert_array_equal(enc.numpy(), z["enc_input"])
    image01 = torch.from_numpy(z["image_uint8"].transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
    mask01 = torch.from_numpy((z["mask_uint8"] == 255)[None, None].astype(np.float32))
    with torch.inference_mode():
        out01 = backend.SPEC.predict(filled_model, image01, mask01)
    fake_out = out01.numpy() * 2.0 - 1.0
    assert np.abs(fake_out - z["fake_out"]).max() <= tol
    composite = fake_out * z["mask"] + z["image"] * (1 - z["mask"])
    assert np.abs(composite - z["composite"]).max() <= tol
    uint8 = (((composite + 1) / 2)[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    assert np.abs(uint8.astype(int) - z["output_uint8"]).max() <= 1


@pytest.mark.parametrize("ngf", [4, 8])
def test_narrow_network_has_the_reference_keys_at_scaled_widths(spec_json, ngf):
    """``MEDFE(ngf)``: the reference's state_dict keys in the reference's order, every channel count
    (the multiples of 32 in the reference's shapes: 64 ... 1024, and the SE layer's 32) scaled by
    ``ngf / 64``, kernels and the 6 input / 3 output channels kept; it runs at 256 x 256."""
    model = net.MEDFE(ngf=ngf).eval()
    got = []
    for sub in (model.netEN, model.netMEDFE, model.netDE):
        got += [[k, list(v.shape)] for k, v in sub.state_dict().items()]
    scale = [[k, [d * ngf // 64 if d % 32 == 0 else d for d in shape]] for k, shape, _ in spec_json["state_dict"]]
    assert got == scale
    hole = torch.zeros(1, 1, 256, 256)
    hole[..., 100:140, 60:200] = 1
    with torch.no_grad():
        out = model(net.MEDFE.make_input(torch.rand(1, 3, 256, 256) * 2 - 1, hole))
    assert out.shape == (1, 3, 256, 256) and bool(torch.isfinite(out).all()) and out.abs().max() <= 1


@pytest.mark.parametrize("ngf", [0, 3, -4, 8.0, True, "64"])
def test_width_must_be_a_positive_even_integer(ngf):
    with pytest.raises(ValueError, match=rf"ngf must be a positive even integer.*got {ngf!r}"):
        net.MEDFE(ngf=ngf)


def test_feature_equalisation_layer(medfe_dir, filled_model):
    z = np.load(medfe_dir / "case0_base.npz")
    base = filled_model.netMEDFE.pc_block.base
    x = torch.from_numpy(z["base_in"])
    with torch.inference_mode():
        se, spatial, rng = base.branches(x)
        out = base(x)
        out2 = base(torch.cat([torch.flip(x, (1,)), x], 0))  # each batch item on its own
    tol = 2.7e-5
    assert np.abs(se[:, :8].numpy() - z["se_out_first8"]).max() <= tol
    assert np.abs(spatial[:, :8].numpy() - z["bpa_gauss_first8"]).max() <= tol
    assert np.abs(rng[:, :8].numpy() - z["bpa_neigh_first8"]).max() <= tol
    assert np.abs(out.numpy() - z["base_out"]).max() <= tol
    np.testing.assert_allclose(out2[1:].numpy(), out.numpy(), atol=1e-5)


def test_partial_conv_mask_handling():
    torch.manual_seed(0)
    pc = net.PartialConv(4, 3, 3)
    with torch.no_grad():
        pc.mask_conv.weight[1] = 0  # output channel 1 never sees a valid input
    x = torch.randn(1, 4, 9, 9)
    ones = torch.ones(1, 4, 9, 9)
    with torch.no_grad():
        fast = pc.mask_response(ones)
        np.testing.assert_allclose(fast.numpy(), pc.mask_conv(ones).numpy(), rtol=1e-5, atol=1e-6)
        out, new_mask = pc(x, ones)
        assert torch.all(out[:, 1] == 0) and torch.all(new_mask[:, 1] == 0) and torch.all(new_mask[:, [0, 2]] == 1)
        expected = pc.input_conv(x) / pc.mask_conv(ones)
        np.testing.assert_allclose(out[:, [0, 2]].numpy(), expected[:, [0, 2]].numpy(), rtol=1e-4, atol=1e-5)
        holes = ones.clone()
        holes[..., 3:6, 3:6] = 0
        out_h, mask_h = pc(x, holes)
        s = pc.mask_conv(holes)
        assert torch.all(s[:, [0, 2], 4, 4] == 0)  # the window around the hole centre sees only holes
        assert torch.all(out_h[s == 0] == 0) and torch.all(mask_h[s == 0] == 0) and torch.all(mask_h[s != 0] == 1)
        valid = s != 0
        np.testing.assert_allclose(out_h[valid].numpy(), (pc.input_conv(x * holes) / s)[valid].numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_official_format_roundtrip(random_weights, spec_json, scratch_model):
    names = {"EN.pkl", "MEDEF.pkl", "DE.pkl"}
    assert {p.name for p in random_weights.iterdir()} == names
    expected = [k for k, _, _ in spec_json["state_dict"]]
    got = []
    for name in ("EN.pkl", "MEDEF.pkl", "DE.pkl"):  # plain state_dicts, loadable with weights_only=True
        sd = torch.load(random_weights / name, map_location="cpu", weights_only=True)
        got += list(sd)
    assert got == expected
    model = scratch_model
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    backend.SPEC.load(model, random_weights / "EN.pkl")  # a file of the folder names the folder
    for name in ("EN.pkl", "MEDEF.pkl", "DE.pkl"):
        attr = {"EN.pkl": "netEN", "MEDEF.pkl": "netMEDFE", "DE.pkl": "netDE"}[name]
        ref = torch.load(random_weights / name, weights_only=True)
        own = getattr(model, attr).state_dict()
        assert all(torch.equal(own[k], v) for k, v in ref.items())  # mask_conv weights included
    again = deep.random_state_dict(backend.SPEC.build, seed=0)  # save_random is deterministic
    assert torch.equal(again["netDE.Decoder_3.model.1.weight"], model.netDE.Decoder_3.model[1].weight)


def test_loader_accepts_missing_loss_keys_and_rejects_bad_folders(random_weights, tmp_path, scratch_model):
    folder = tmp_path / "w"
    folder.mkdir()
    for name in ("EN.pkl", "DE.pkl"):
        (folder / name).symlink_to(random_weights / name)
    medef = torch.load(random_weights / "MEDEF.pkl", weights_only=True)
    torch.save({k: v for k, v in medef.items() if not k.startswith("loss.")}, folder / "MEDEF.pkl")
    model = scratch_model
    backend.SPEC.load(model, folder)
    assert torch.equal(model.netMEDFE.pc_block.fuse.model[0].weight, medef["pc_block.fuse.model.0.weight"])

    del medef["pc_block.base.down.0.weight"]
    medef["pc_block.extra"] = torch.zeros(1)
    torch.save(medef, folder / "MEDEF.pkl")
    with pytest.raises(ValueError, match=r"MEDEF\.pkl.*missing keys: pc_block\.base\.down\.0\.weight.*unexpected keys: pc_block\.extra"):
        backend.SPEC.load(model, folder)
    data = (random_weights / "MEDEF.pkl").read_bytes()
    (folder / "MEDEF.pkl").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=r"weights=.*MEDEF\.pkl.*truncated or corrupt"):
        backend.SPEC.load(model, folder)
    (folder / "MEDEF.pkl").unlink()
    with pytest.raises(ValueError, match=r"missing MEDEF\.pkl.*Google Drive"):
        backend.SPEC.load(model, folder)
    with pytest.raises(ValueError, match="must be a folder"):
        backend.SPEC.load(model, folder / "nothing.pth")


def test_missing_weights_message(monkeypatch):
    image = np.zeros((32, 32, 3), np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[10:12, 10:12] = True
    for offline in ("0", "1"):
        monkeypatch.setenv("INPAINT_PLUGIN_OFFLINE", offline)
        with pytest.raises(ValueError, match=r"'medfe' needs trained weights.*drive\.google\.com.*weights="):
            inpaint_plugin.inpaint(image, mask, method="medfe", channel_axis=-1)


def test_backend_any_size_several_holes(random_weights):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 220, 3), dtype=np.uint8)
    mask = np.zeros((300, 220), bool)
    mask[20:40, 30:50] = True     # two small holes sharing one 256 crop
    mask[10:14, 150:200] = True
    mask[80:290, 5:215] = True    # a large thick hole: its own crop (the whole image), resized to 256
    windows, thin = deep._windows.crop_windows(mask, 256, backend.SPEC.margin)
    assert len(windows) == 2 and not thin.any()
    out = inpaint_plugin.inpaint(image, mask, method="medfe", channel_axis=-1, weights=str(random_weights),
                                 device="cpu")
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])
    assert not np.array_equal(out[mask], image[mask])


def test_backend_grey_resize(random_weights):
    image = np.tile(np.linspace(0.0, 1.0, 100, dtype=np.float32), (80, 1))  # grey, not 256 x 256
    mask = np.zeros(image.shape, bool)
    mask[30:50, 40:60] = True
    out = inpaint_plugin.inpaint(image, mask, method="medfe", weights=str(random_weights), device="cpu",
                                 resolution="resize")
    assert out.dtype == np.float32 and out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])
    assert np.isfinite(out).all() and out[mask].min() >= 0.0 and out[mask].max() <= 1.0
