"""Contextual attention in bounded memory: the score matrix in chunks of foreground positions gives
the one-piece result (DeepFill v1 and v2 variants, fusion included), and per-item masks equal
single-item runs."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from inpaint_plugin.deep.nets._contextual_attention import contextual_attention  # noqa: E402
from inpaint_plugin.deep.nets.deepfill_v1 import DeepFillV1  # noqa: E402
from inpaint_plugin.deep.nets.deepfill_v2 import DeepFillV2  # noqa: E402

#: the attention of DeepFill v1 (daa233 port) and v2 (nipponjo port), fusion on and off
VARIANTS = {
    "v1": dict(ksize=3, softmax_scale=10.0, fuse=True, fuse_k=3, resize="even", patch_norm="sqrt_eps"),
    "v1_max": dict(ksize=3, softmax_scale=10.0, fuse=True, fuse_k=3, resize="even", patch_norm="max"),
    "v2": dict(ksize=3, softmax_scale=10.0, fuse=False, fuse_k=3, resize="align_corners", patch_norm="max"),
    "v2_fuse": dict(ksize=3, softmax_scale=10.0, fuse=True, fuse_k=3, resize="align_corners", patch_norm="max"),
}


def _case(h, w, n=1, c=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(n, c, h, w, generator=g)
    mask = torch.zeros(n, 1, 4 * h, 4 * w)
    mask[0, :, h // 2 : 2 * h, w : 3 * w] = 1
    if n > 1:
        mask[1, :, 4:12, 2 : 4 * w - 2] = 1
    return f, mask


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("shape", [(16, 16), (12, 20), (10, 6)])
@pytest.mark.parametrize("max_scores", [1, 7, 100])
def test_chunked_equals_one_piece(variant, shape, max_scores):
    f, mask = _case(*shape)
    kw = dict(VARIANTS[variant], return_attention=True)
    whole, whole_attn = contextual_attention(f, f, mask, **kw)
    n_pos = shape[0] * shape[1] // 4
    assert n_pos**2 <= 2**24  # the default takes the one-piece path here
    out, attn = contextual_attention(f, f, mask, max_scores=max_scores, **kw)
    assert out.shape == whole.shape and attn.shape == whole_attn.shape
    torch.testing.assert_close(out, whole, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(attn, whole_attn, rtol=1e-5, atol=1e-6)
    # the attention is not trivial (some positions take patches from elsewhere)
    assert float(whole_attn.amax()) > 0.1 and not torch.equal(out, f)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_per_item_mask_equals_single_items(variant):
    f, mask = _case(12, 16, n=2)
    for max_scores in (None, 13):
        batch = contextual_attention(f, f, mask, per_item_mask=True, max_scores=max_scores, **VARIANTS[variant])
        for i in range(2):
            single = contextual_attention(f[i : i + 1], f[i : i + 1], mask[i : i + 1], **VARIANTS[variant])
            torch.testing.assert_close(batch[i : i + 1], single, rtol=1e-5, atol=1e-5)
    # without it, item 0's mask serves the whole batch (the references' behaviour)
    shared = contextual_attention(f, f, mask, **VARIANTS[variant])
    single1 = contextual_attention(f[1:], f[1:], mask[1:], **VARIANTS[variant])
    assert not torch.allclose(shared[1:], single1)


@pytest.mark.parametrize("net", ["v1", "v2"])
def test_networks_chunked_equal_one_piece(net):
    """Whole DeepFill networks (small width) with a tiny chunk bound give the same output."""
    torch.manual_seed(0)
    model = (DeepFillV1(cnum=8, patch_norm="max") if net == "v1" else DeepFillV2(cnum=8, fuse=True)).eval()
    x = torch.rand(1, 3, 64, 48) * 2 - 1
    mask = torch.zeros(1, 1, 64, 48)
    mask[..., 20:40, 10:30] = 1
    x = x * (1 - mask)
    inp = x if net == "v1" else torch.cat([x, torch.ones_like(mask), mask], dim=1)
    with torch.inference_mode():
        whole = model(inp, mask)[1]
        model.apply(lambda m: setattr(m, "max_scores", 5) if hasattr(m, "max_scores") else None)
        chunked = model(inp, mask)[1]
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)


_MEMORY_SCRIPT = """
import sys, torch
from inpaint_plugin.deep.nets._contextual_attention import contextual_attention

def vmhwm():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024

h = w = 256
f = torch.randn(1, 2, h, w)
mask = torch.zeros(1, 1, 4 * h, 4 * w)
mask[..., 400:600, 300:700] = 1
before = vmhwm()
with torch.inference_mode():
    out = contextual_attention(f, f, mask, max_scores=2**21, resize="align_corners", patch_norm="max",
                               fuse=sys.argv[1] == "fuse")
assert out.shape == f.shape and bool(torch.isfinite(out).all())
print(vmhwm() - before)
"""


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs Linux VmHWM")
@pytest.mark.parametrize("fuse", ["fuse", "plain"])
def test_bounded_memory_at_1024_input(fuse):
    """Features of a 1024x1024 DeepFill input (256x256): the one-piece score matrix has 16384**2
    elements (1 GiB in float32, several times that with the softmax and fusion temporaries); in
    chunks the peak resident memory grows by far less (fresh process, VmHWM)."""
    import subprocess
    import sys

    env = dict(__import__("os").environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, fuse], capture_output=True, text=True, env=env,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    grown_mib = float(res.stdout.split()[-1])
    assert grown_mib < 300, grown_mib


def test_max_scores_validated():
    f, mask = _case(8, 8)
    with pytest.raises(ValueError, match="max_scores"):
        contextual_attention(f, f, mask, max_scores=0)
    with pytest.raises(ValueError, match="per_item_mask"):
        contextual_attention(f.expand(2, -1, -1, -1), f.expand(2, -1, -1, -1), mask, per_item_mask=True)
