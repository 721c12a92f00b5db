"""SPL: architecture against the reference's state_dict, behaviour, official checkpoint format, API.

When ``shared/conformance/spl/`` holds vectors (``case0.npz`` + ``spec.json``: the reference's output
for ``fill.py`` weights), ``test_conformance_with_reference_vectors`` reproduces them; none exist yet.
The key/shape list of the reference generator ``G_Net(3, residual_blocks=8)`` is recorded in
``data/spl_state_dict.json`` (with its repository and commit).
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
    load_reference,
    seeded,
)

import inpaint_plugin  # noqa: E402
from inpaint_plugin import deep  # noqa: E402
from inpaint_plugin.backends.spl import SPEC, generator_state_dict  # noqa: E402
from inpaint_plugin.deep.nets.spl import SPL, region_norm  # noqa: E402

REFERENCE = load_reference("spl")


def test_state_dict_matches_reference():
    assert_state_dict_matches_reference(SPL(), REFERENCE)


@pytest.fixture(scope="module")
def outputs():
    """Network outputs for (base, known pixels changed, hole content changed) at 32 x 32."""
    batch, masks, hole = context_and_hole_inputs(
        32, hole=(slice(8, 20), slice(10, 24)), band=(slice(24, None), slice(None))  # bottom band, outside the hole
    )
    net = seeded(SPEC.build)
    with torch.inference_mode():
        out, prior = net(batch, masks)
    return out, prior, hole


def test_forward_shapes_finite_and_range(outputs):
    out, prior, _ = outputs
    assert out.shape == (3, 3, 32, 32)
    assert prior.shape == (3, 152, 8, 8)  # the teacher-feature prediction at a quarter of the size
    assert torch.isfinite(out).all() and torch.isfinite(prior).all()
    assert 0 <= out.min() and out.max() <= 1


def test_hole_depends_on_context_not_on_hole_content(outputs):
    out, _, hole = outputs
    assert_hole_depends_on_context_not_on_hole_content(out, hole)


def test_region_norm_standardises_each_region_separately():
    gen = torch.Generator().manual_seed(3)
    region = torch.zeros(2, 1, 16, 16)
    region[0, :, 3:9, 2:12] = 1
    region[1, :, 10:, :] = 1
    x = torch.randn(2, 4, 16, 16, generator=gen) * (1 + 3 * region) + 5 * region - 2
    y = region_norm(x, region)
    for b in range(2):
        for inside in (region[b, 0] == 1, region[b, 0] == 0):
            part = y[b][:, inside]
            torch.testing.assert_close(part.mean(dim=1), torch.zeros(4), rtol=0, atol=1e-5)
            torch.testing.assert_close(part.std(dim=1, unbiased=False), torch.ones(4), rtol=0, atol=1e-3)
    # a region covering everything is plain instance normalisation
    full = torch.ones(2, 1, 16, 16)
    torch.testing.assert_close(region_norm(x, full), torch.nn.functional.instance_norm(x), rtol=0, atol=1e-5)


def test_conformance_with_reference_vectors(conformance_dir, fill_state_dict):
    """The reference's output for fill.py weights (``shared/conformance/spl``), through ``SPEC.predict``."""
    check_conformance_vectors(conformance_dir, fill_state_dict, "spl", SPEC)


def test_rejects_size_not_multiple_of_4():
    with pytest.raises(ValueError, match="multiple of 4"):
        SPL()(torch.zeros(1, 3, 30, 32), torch.zeros(1, 1, 30, 32))


def test_official_checkpoint_format_roundtrip(tmp_path):
    path = tmp_path / "x_launcherRN_bs_4_epoch_best.pt"
    deep.random_checkpoint("spl", path, seed=3)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    gen_keys = [[k[len("generator.module."):], list(v.shape)] for k, v in raw.items() if k.startswith("generator.")]
    assert all(k.startswith("generator.module.") for k in raw if k.startswith("generator"))
    assert gen_keys == REFERENCE["state_dict"]
    # the real files also hold the discriminator (spectral-normalised) and other training state
    raw["discriminator.module.conv1.0.weight_orig"] = torch.zeros(64, 3, 4, 4)
    torch.save(raw, path)
    net = SPEC.build()
    SPEC.load(net, path)
    for k, v in net.state_dict().items():
        assert torch.equal(v, raw[f"generator.module.{k}"]), k


def test_generator_state_dict_accepts_bare_and_single_gpu_layouts():
    t = torch.zeros(1)
    official = {"generator.a.b": t, "discriminator.c": t, "adversarial_loss.real_label": t}
    assert generator_state_dict(official) == {"a.b": t}
    assert generator_state_dict({"generator.module.a": t, "discriminator.module.c": t}) == {"a": t}
    assert generator_state_dict({"encoder_conv1.weight": t}) == {"encoder_conv1.weight": t}


def test_load_lists_missing_generator_keys(tmp_path):
    state = {f"generator.module.{k}": v for k, v in deep.random_state_dict(SPEC.build).items()}
    state.pop("generator.module.middle.7.conv_block.4.mlp_beta.bias")
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        SPEC.load(SPEC.build(), path)
    assert "middle.7.conv_block.4.mlp_beta.bias" in str(err.value) and "broken.pt" in str(err.value)


@pytest.mark.slow
def test_inpaint_api_keeps_known_pixels(tmp_path):
    path = deep.random_checkpoint("spl", tmp_path / "spl.pt")
    rng = np.random.default_rng(0)
    image = rng.random((40, 52, 3)).astype(np.float32)
    mask = np.zeros((40, 52), bool)
    mask[12:24, 20:34] = True
    out = inpaint_plugin.inpaint(image, mask, method="spl", weights=str(path), channel_axis=-1, device="cpu")
    assert out.shape == image.shape and out.dtype == image.dtype
    assert np.array_equal(out[~mask], image[~mask])
    assert np.isfinite(out).all() and not np.array_equal(out[mask], image[mask])
