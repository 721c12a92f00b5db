"""PEN-Net: architecture against the reference's state_dict, behaviour, official checkpoint format, API.

When ``shared/conformance/pennet/`` holds vectors (``case0.npz`` + ``spec.json``: the reference's output
for ``fill.py`` weights), ``test_conformance_with_reference_vectors`` reproduces them; none exist yet.
The key/shape list of the reference ``InpaintGenerator`` is recorded in ``data/pennet_state_dict.json``
(with its repository and commit).
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
from inpaint_plugin.backends.pennet import SPEC  # noqa: E402
from inpaint_plugin.deep.nets.pennet import AttentionTransfer, PENNet  # noqa: E402

REFERENCE = load_reference("pennet")


def test_state_dict_matches_reference():
    assert_state_dict_matches_reference(PENNet(), REFERENCE)


@pytest.fixture(scope="module")
def outputs():
    """Network outputs for (base, known pixels changed, hole content changed) at 64 x 64."""
    batch, masks, hole = context_and_hole_inputs(
        64, hole=(slice(20, 44), slice(16, 40)), band=(slice(None), slice(48, None))  # right band, outside the hole
    )
    net = seeded(SPEC.build)
    with torch.inference_mode():
        x = batch * 2 - 1
        pyramid, out = net(torch.cat([x * (1 - masks) + masks, masks], 1), masks)
        pred = SPEC.predict(net, batch, masks)
    return pyramid, out, pred, hole


def test_forward_shapes_finite_and_range(outputs):
    pyramid, out, pred, _ = outputs
    assert out.shape == (3, 3, 64, 64) and pred.shape == (3, 3, 64, 64)
    assert [p.shape[-1] for p in pyramid] == [32, 16, 8, 4, 2]  # finest first, as the reference
    assert all(torch.isfinite(t).all() for t in (out, pred, *pyramid))
    assert out.abs().max() <= 1 and 0 <= pred.min() and pred.max() <= 1
    assert torch.allclose(pred, (out + 1) / 2)


def test_hole_depends_on_context_not_on_hole_content(outputs):
    _, out, _, hole = outputs
    assert_hole_depends_on_context_not_on_hole_content(out, hole)


def test_attention_copies_only_known_patches():
    """Low-level features deep inside the hole never reach the output (their patches are not matched)."""
    atn = seeded(lambda: AttentionTransfer(8, 8))
    gen = torch.Generator().manual_seed(2)
    x1, x2 = torch.randn(1, 8, 16, 16, generator=gen), torch.randn(1, 8, 8, 8, generator=gen)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1  # valid 3x3 patches are those centred on the outer ring
    inner, border = x1.clone(), x1.clone()
    inner[..., 4:12, 4:12] += 5 * torch.randn(1, 8, 8, 8, generator=gen)
    border[..., :2, :] += 5 * torch.randn(1, 8, 2, 16, generator=gen)
    with torch.inference_mode():
        y, y_inner, y_border = (atn(a, x2, mask) for a in (x1, inner, border))
    assert y.shape == (1, 8, 16, 16)
    torch.testing.assert_close(y_inner, y, rtol=0, atol=1e-5)
    assert (y_border - y)[..., 6:10, 6:10].abs().max() > 1e-2  # the hole centre is rebuilt from the border


def test_conformance_with_reference_vectors(conformance_dir, fill_state_dict):
    """The reference's output for fill.py weights (``shared/conformance/pennet``), through ``SPEC.predict``."""
    check_conformance_vectors(
        conformance_dir, fill_state_dict, "pennet", SPEC, lambda o: (o + 1) / 2  # the reference works in [-1, 1]
    )


def test_rejects_size_not_multiple_of_64():
    with pytest.raises(ValueError, match="multiple of 64"):
        PENNet()(torch.zeros(1, 4, 96, 64), torch.zeros(1, 1, 96, 64))


def test_official_checkpoint_format_roundtrip(tmp_path):
    path = tmp_path / "gen_00001.pth"
    deep.random_checkpoint("pennet", path, seed=3)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert list(raw) == ["netG"]
    assert keys_and_shapes(raw["netG"]) == REFERENCE["state_dict"]
    net = SPEC.build()
    SPEC.load(net, path)
    for k, v in net.state_dict().items():
        assert torch.equal(v, raw["netG"][k]), k
    SPEC.save_random(tmp_path / "again.pth", seed=3)
    SPEC.save_random(tmp_path / "other.pth", seed=4)
    again = torch.load(tmp_path / "again.pth", weights_only=True)["netG"]
    other = torch.load(tmp_path / "other.pth", weights_only=True)["netG"]
    assert all(torch.equal(again[k], raw["netG"][k]) for k in again)
    assert not torch.equal(other["dw_conv01.0.weight"], again["dw_conv01.0.weight"])


def test_load_lists_missing_and_unexpected_keys(tmp_path):
    state = deep.random_state_dict(SPEC.build)
    state.pop("at_conv03.conv02.0.weight")
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save({"netG": state}, path)
    with pytest.raises(ValueError) as err:
        SPEC.load(SPEC.build(), path)
    assert all(s in str(err.value) for s in ("at_conv03.conv02.0.weight", "extra.weight", "broken.pth"))


def test_inpaint_api_keeps_known_pixels(tmp_path):
    path = deep.random_checkpoint("pennet", tmp_path / "gen.pth")
    rng = np.random.default_rng(0)
    image = rng.random((40, 52, 3)).astype(np.float32)
    mask = np.zeros((40, 52), bool)
    mask[12:24, 20:34] = True
    out = inpaint_plugin.inpaint(image, mask, method="pennet", weights=str(path), channel_axis=-1, device="cpu")
    assert out.shape == image.shape and out.dtype == image.dtype
    assert np.array_equal(out[~mask], image[~mask])
    assert np.isfinite(out).all() and not np.array_equal(out[mask], image[mask])
