"""ModelSpec.save: a (fine-tuned) module written in the official format loads back exactly.

Each network's saver and loader run on its tiny-width variant (``tests/_tiny_deep.py``: the same spec,
a narrow network with the same state_dict key names)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import inpaint_plugin as ip  # noqa: E402
from _tiny_deep import tiny  # noqa: E402
from inpaint_plugin import deep  # noqa: E402
from inpaint_plugin.deep import model_spec  # noqa: E402

DEEP = ["deepfill_v1", "deepfill_v2", "gmcnn", "lama", "medfe", "pennet", "spl"]
pytestmark = pytest.mark.usefixtures("tiny_deep_methods")


@pytest.mark.parametrize("method", [tiny(m) for m in DEEP])
def test_saved_module_loads_back_bit_for_bit(method, tmp_path):
    spec = model_spec(method)
    module = spec.build()
    with torch.no_grad():  # "fine-tuned" weights: different from any seeded random checkpoint
        for i, t in enumerate(module.state_dict().values()):
            if t.is_floating_point():
                t.copy_(torch.linspace(-1, 1, t.numel()).reshape(t.shape) * (1 + i % 7) / 7)
    path = tmp_path / ("ckpt" if method.startswith("medfe") else "ckpt.pth")
    spec.save(module, path)
    assert not list(tmp_path.rglob(".*.tmp"))  # atomic writes leave no temporary file
    fresh = spec.build()
    spec.load(fresh, path)
    saved, loaded = module.state_dict(), fresh.state_dict()
    assert saved.keys() == loaded.keys()
    for k in saved:
        assert torch.equal(saved[k], loaded[k]), k


@pytest.mark.parametrize("method", [tiny("deepfill_v2"), tiny("pennet")])
def test_saved_checkpoint_is_what_inpaint_uses(method, tmp_path):
    spec = deep._backend.find_spec(method)
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    spec.save_random(a, seed=1)
    module = spec.build()
    spec.load(module, a)
    spec.save(module, b)  # a load/save round trip changes nothing the backend sees
    image = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 24:44] = True
    out_a = ip.inpaint(image, mask, method=method, channel_axis=-1, weights=str(a), device="cpu")
    out_b = ip.inpaint(image, mask, method=method, channel_axis=-1, weights=str(b), device="cpu")
    np.testing.assert_array_equal(out_a, out_b)


def test_model_spec_names_the_deep_methods():
    assert model_spec("gmcnn") is deep._backend.find_spec("gmcnn")
    with pytest.raises(ValueError, match="not a registered deep method.*deepfill_v2"):
        model_spec("biharmonic")
