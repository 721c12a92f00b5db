"""The CPU fast paths of the deep networks give the values of the plain formulations they replace.

Each fast path (phase convolutions for upsample + conv, SPL's closed-form region normalisation and
buffered dense blocks, PEN-Net's attention over the valid patches only, GMCNN's and DeepFill's
inference paths) is compared with the direct computation written out here, or with the same module
run with autograd on (which takes the plain path), on random inputs that include the edge cases
(empty and full regions, all-hole and hole-free masks, odd sizes, batches, channels-last inputs).
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from inpaint_plugin.deep.nets._upconv import upsample2_conv  # noqa: E402


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_upsample2_conv_equals_upsample_then_conv(k, mode, channels_last):
    g = _gen(k)
    x = torch.randn(2, 5, 9, 12, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(4, 5, k, k, generator=g) / k
    b = torch.randn(4, generator=g)
    p = k // 2
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    want = F.conv2d(F.pad(up, (p, p, p, p), mode="constant" if mode == "zeros" else "reflect"), w, b)
    got = upsample2_conv(x, w, b, mode)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=2e-5)
    if channels_last:
        assert got.is_contiguous(memory_format=torch.channels_last)


def test_upsample2_conv_rejects_unknown_padding():
    with pytest.raises(ValueError, match="padding_mode"):
        upsample2_conv(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3), None, "circular")


def test_spl_region_norm_closed_form_equals_definition():
    from inpaint_plugin.deep.nets.spl import _region_norm_filled, region_norm

    g = _gen(1)
    x = torch.randn(3, 6, 20, 18, generator=g) * 3 + 2
    region = (torch.rand(3, 1, 20, 18, generator=g) > 0.7).float()
    region[1] = 0  # empty region
    region[2] = 1  # whole map
    torch.testing.assert_close(region_norm(x, region), _region_norm_filled(x, region), rtol=0, atol=2e-5)
    soft = torch.rand(3, 1, 20, 18, generator=g)  # not 0/1: the definition is used as it is
    torch.testing.assert_close(region_norm(x, soft), _region_norm_filled(x, soft), rtol=0, atol=0)


def test_spl_inference_path_equals_autograd_path():
    from inpaint_plugin.deep.nets.spl import SPL

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = SPL().eval()
    g = _gen(2)
    image = torch.rand(2, 3, 32, 32, generator=g)
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 8:20, 4:16] = 1
    mask[1, :, 20:, :] = 1
    with torch.enable_grad():
        want = [t.detach() for t in net(image, mask)]
    with torch.inference_mode():
        got = net(image, mask)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def _attention_transfer_direct(x1, x2, mask, ksize, rate=2, scale=10.0):
    """PEN-Net's attention transfer written as its definition: correlation with all normalised
    patches (a convolution), softmax over all patches of ``scale * score * valid``, times ``valid``,
    clamped at 1e-8, pasted with a transposed convolution / 4."""
    h, w = x2.shape[2:]
    mask = F.interpolate(mask, size=(h, w), mode="bilinear", align_corners=True)
    pad = 0 if ksize == 1 else 1
    out = []
    for b in range(x2.shape[0]):
        wi = F.unfold(x2[b:b + 1], ksize, padding=pad)[0].t().reshape(h * w, -1, ksize, ksize)
        raw = F.unfold(x1[b:b + 1], 2 * rate, stride=rate, padding=1)[0].t().reshape(h * w, -1, 2 * rate, 2 * rate)
        valid = (F.unfold(mask[b:b + 1], ksize, padding=pad)[0].mean(0) == 0).float().view(1, -1, 1, 1)
        norm = wi.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp(min=1e-4)
        score = F.conv2d(x2[b:b + 1], wi / norm, padding=pad) * valid
        attn = (F.softmax(score * scale, dim=1) * valid).clamp(min=1e-8)
        out.append(F.conv_transpose2d(attn, raw, stride=rate, padding=1) / 4.0)
    return torch.cat(out)


@pytest.mark.parametrize("ksize", [1, 3])
@pytest.mark.parametrize("holes", ["some", "none", "all"])
def test_pennet_attention_transfer_equals_definition(ksize, holes):
    from inpaint_plugin.deep.nets.pennet import AttentionTransfer

    g = _gen(3)
    x1 = torch.randn(2, 5, 16, 16, generator=g)
    x2 = torch.randn(2, 7, 8, 8, generator=g)
    mask = torch.zeros(2, 1, 64, 64)
    if holes == "some":
        mask[0, :, 10:30, 20:50] = 1
        mask[1, :, 40:, :] = 1
    elif holes == "all":
        mask[:] = 1
    layer = AttentionTransfer(5, 8, ksize=ksize, fuse=False)
    want = _attention_transfer_direct(x1, x2, mask, ksize)
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            got = layer(x1, x2, mask)
        torch.testing.assert_close(got.detach(), want, rtol=0, atol=1e-5)


def test_gmcnn_inference_path_equals_autograd_path():
    from inpaint_plugin.deep.nets.gmcnn import GMCNN

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = GMCNN(cnum=8).eval()
    x = torch.rand(2, 4, 196, 204, generator=_gen(4)) * 2 - 1
    with torch.enable_grad():
        want = net(x).detach()
    with torch.inference_mode():
        got = net(x)
    assert got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_deepfill_upsampling_convs_equal_upsample_then_conv(version):
    if version == "v1":
        from inpaint_plugin.deep.nets.deepfill_v1 import _Conv, _run

        layer = _Conv(6, 4, 3, 1, 1, "elu")
        holder = torch.nn.Module()
        holder.add_module("c", layer)

        def fast(x):
            return _run(holder, [None, "c"], x)

        def direct(x):
            return F.elu(layer.conv(F.interpolate(x, scale_factor=2, mode="nearest")))
    else:
        from inpaint_plugin.deep.nets.deepfill_v2 import _UpGatedConv

        layer = _UpGatedConv(6, 4)
        fast = layer

        def direct(x):
            y = layer.conv.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
            f, gate = torch.split(y, 4, dim=1)
            return F.elu(f) * torch.sigmoid(gate)
    x = torch.randn(2, 6, 7, 10, generator=_gen(5))
    want = direct(x).detach()
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            got = fast(x)
        torch.testing.assert_close(got.detach(), want, rtol=0, atol=1e-5)


def _contextual_attention_direct(f, mask, resize, patch_norm, scale=10.0):
    """The unfused contextual attention as defined: correlation with all normalised 3x3 background
    patches (a convolution), ``softmax(scale * score * valid) * valid`` over all patches, pasted by a
    transposed convolution / 4 (mask of item 0, as the references)."""
    from inpaint_plugin.deep.nets._contextual_attention import _downsample

    n, c, h, w = f.shape
    f_s = _downsample(f, 2, resize)
    m = _downsample(mask[:1], 8, resize)
    valid = (F.max_pool2d((m != 0).float(), 3, stride=1, padding=1) == 0).float().view(1, -1, 1, 1)
    out = []
    for i in range(n):
        wi = F.unfold(f_s[i:i + 1], 3, padding=1)[0].t().reshape(-1, c, 3, 3)
        if patch_norm == "max":
            norm = wi.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-4)
        else:
            norm = (wi.pow(2) + 1e-4).sum(dim=(1, 2, 3), keepdim=True).sqrt()
        raw = F.unfold(f[i:i + 1], 4, stride=2, padding=1)[0].t().reshape(-1, c, 4, 4)
        score = F.conv2d(f_s[i:i + 1], wi / norm, padding=1) * valid
        attn = F.softmax(score * scale, dim=1) * valid
        out.append(F.conv_transpose2d(attn, raw, stride=2, padding=1) / 4.0)
    return torch.cat(out)


@pytest.mark.parametrize("holes", ["some", "none", "all"])
@pytest.mark.parametrize("patch_norm", ["max", "sqrt_eps"])
def test_unfused_contextual_attention_equals_definition(holes, patch_norm):
    from inpaint_plugin.deep.nets._contextual_attention import contextual_attention

    f = torch.randn(2, 6, 16, 20, generator=_gen(6))
    mask = torch.zeros(2, 1, 64, 80)
    if holes == "some":
        mask[0, :, 10:30, 20:50] = 1
    elif holes == "all":
        mask[:] = 1
    want = _contextual_attention_direct(f, mask, "align_corners", patch_norm)
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            got = contextual_attention(f, f, mask, fuse=False, resize="align_corners", patch_norm=patch_norm)
        torch.testing.assert_close(got.detach(), want, rtol=0, atol=1e-5)
