"""LaMa generator (Suvorov et al., "Resolution-robust Large Mask Inpainting with Fourier Convolutions",
WACV 2022): the ``FFCResNetGenerator`` in its big-lama configuration, PyTorch.

Written from the description of the reference implementation ``advimman/lama`` @ 786f593
(``saicinpainting/training/modules/ffc.py``, unchanged since 2021-11-10; configuration from the
``generator:`` section of ``configs/training/big-lama.yaml``), as summarised in
``shared/conformance/lama/README.md``. The module tree is laid out so that the ``state_dict`` has the
reference's 989 keys, shapes and order (50,975,875 parameters, 152 BatchNorm2d), so the published
``best.ckpt`` (keys prefixed ``generator.``) loads strictly.

Layout (one ``nn.Sequential`` called ``model``; the indices give the key names):

- ``0``: ReflectionPad2d(3); ``1``: FFC + BN + ReLU 4 -> 64, 7x7, no padding of its own.
- ``2``, ``3``: FFC + BN + ReLU, 3x3 stride 2 (reflect padding), 64 -> 128 -> 256, local only.
- ``4``: the same 256 -> 512, whose output is split 128 local / 384 global channels (its ``ratio_gout``
  is the blocks' ``ratio_gin`` 0.75: this is where the global, Fourier branch is born).
- ``5`` .. ``22``: 18 residual blocks ``x + conv2(conv1(x))`` added per part (local, global), no
  activation after the add; each conv is an FFC with 3x3 reflect-padded ``convl2l``, ``convl2g``,
  ``convg2l`` and a :class:`SpectralTransform` ``convg2g``, followed by BN + ReLU per part.
- ``23``: ``cat([local, global], 1)`` (local first).
- ``24`` .. ``32``: three ConvTranspose2d (3x3, stride 2, padding 1, output_padding 1, with bias)
  512 -> 256 -> 128 -> 64, each with BatchNorm2d and ReLU.
- ``33`` .. ``35``: ReflectionPad2d(3), Conv2d 64 -> 3 7x7 with bias, sigmoid.

No FFC convolution has a bias; every BatchNorm has eps 1e-5 and runs with its running statistics in
eval mode (the reference freezes the model for prediction). Input: ``cat([rgb * (1 - mask), mask])``,
RGB in [0, 1], holes 0, mask 1 = hole; output RGB in (0, 1). Sides must be multiples of 8 and at
least 16; the network has no fixed size (the Fourier units cover the whole H/8 x W/8 map).

Inference: :meth:`FFCResNetGenerator.infer` computes the eval-mode forward with every BatchNorm folded
into the convolution before it (the state_dict stays the reference's), and with ``holes_only`` runs the
decoder only where its output reaches a hole (what ``inpaint()`` uses: the backend's ``predict_holes``).
The timings of both against the module forward are in ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FFC", "FFCBNAct", "FFCResNetGenerator", "FFCResnetBlock", "FourierUnit", "SpectralTransform"]


class FourierUnit(nn.Module):
    """1x1 conv + BN + ReLU applied to the spectrum: ``irfftn(relu(bn(conv(rfftn(x)))))``.

    The real FFT runs over (H, W) with ``norm='ortho'`` (halved along W); real and imaginary parts
    become channels **interleaved** per input channel (``2c`` = Re, ``2c + 1`` = Im), and the output
    spectrum is read back the same way. The spectrum after the ReLU is not Hermitian: ``irfftn`` keeps
    the part a C2R transform uses, as the reference does.

    Parameters
    ----------
    channels : int
        Input and output channels (the 1x1 conv maps ``2 * channels`` to ``2 * channels``).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        dtype = x.dtype
        if dtype in (torch.float16, torch.bfloat16):  # FFTs of half tensors need power-of-2 sides
            x = x.float()
        spec = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
        wf = spec.shape[-1]
        spec = torch.stack((spec.real, spec.imag), dim=2).reshape(b, 2 * c, h, wf)
        spec = spec.to(self.conv_layer.weight.dtype)
        spec = self.relu(self.bn(self.conv_layer(spec))).float().reshape(b, c, 2, h, wf)
        out = torch.fft.irfftn(torch.complex(spec[:, :, 0], spec[:, :, 1]), s=(h, w), dim=(-2, -1), norm="ortho")
        return out.to(dtype)


class SpectralTransform(nn.Module):
    """The global -> global branch: ``h = relu(bn(conv1x1(x)))``; ``conv1x1(h + FourierUnit(h))``.

    Halves the channels inside (``conv1``), stride 1, no local Fourier unit (big-lama's
    ``enable_lfu=False``), no bias.

    Parameters
    ----------
    in_channels, out_channels : int
        The global part's input and output channels.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = out_channels // 2
        self.downsample = nn.Identity()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True))
        self.fu = FourierUnit(mid)
        self.conv2 = nn.Conv2d(mid, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.downsample(x))
        return self.conv2(h + self.fu(h))


def _split(channels: int, ratio: float) -> tuple:
    """(local, global) channel counts: ``global = int(channels * ratio)``."""
    g = int(channels * ratio)
    return channels - g, g


class FFC(nn.Module):
    """Fast Fourier convolution: ``out_l = l2l(x_l) + g2l(x_g)``, ``out_g = l2g(x_l) + g2g(x_g)``.

    A branch whose input or output has no channels is an ``nn.Identity`` without keys and contributes 0.
    The spatial convolutions pad by reflection (``padding_mode='reflect'``) and have no bias.

    Parameters
    ----------
    in_channels, out_channels : int
        Input and output channels, local and global parts together.
    kernel_size : int
        The side of the spatial convolutions' kernels.
    ratio_gin, ratio_gout : float
        The fraction of the input / output channels in the global (Fourier) part, 0 to 1:
        ``global = int(channels * ratio)``, the rest local.
    stride : int, optional
        The spatial convolutions' stride (default 1).
    padding : int, optional
        Their reflection padding, in pixels (default 0).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
                 stride: int = 1, padding: int = 0):
        super().__init__()
        in_l, in_g = _split(in_channels, ratio_gin)
        out_l, out_g = _split(out_channels, ratio_gout)
        self.global_in, self.global_out = in_g, out_g

        def conv(cin, cout):
            if cin == 0 or cout == 0:
                return nn.Identity()
            return nn.Conv2d(cin, cout, kernel_size, stride, padding, bias=False, padding_mode="reflect")

        self.convl2l = conv(in_l, out_l)
        self.convl2g = conv(in_l, out_g)
        self.convg2l = conv(in_g, out_l)
        self.convg2g = SpectralTransform(in_g, out_g) if in_g and out_g else nn.Identity()

    def forward(self, x):
        x_l, x_g = x if isinstance(x, tuple) else (x, 0)
        out_l = out_g = 0
        if not isinstance(self.convl2l, nn.Identity):
            out_l = self.convl2l(x_l)
        if not isinstance(self.convg2l, nn.Identity):
            out_l = out_l + self.convg2l(x_g)
        if not isinstance(self.convl2g, nn.Identity):
            out_g = self.convl2g(x_l)
        if not isinstance(self.convg2g, nn.Identity):
            out_g = out_g + self.convg2g(x_g)
        return out_l, out_g


class FFCBNAct(nn.Module):
    """:class:`FFC`, then BatchNorm2d and ReLU on each part (``bn_l``, ``bn_g``; Identity when empty).

    Parameters
    ----------
    in_channels, out_channels : int
        Input and output channels, local and global parts together.
    kernel_size : int
        The side of the spatial convolutions' kernels.
    ratio_gin, ratio_gout : float
        The fraction of the input / output channels in the global (Fourier) part, 0 to 1:
        ``global = int(channels * ratio)``, the rest local.
    stride : int, optional
        The spatial convolutions' stride (default 1).
    padding : int, optional
        Their reflection padding, in pixels (default 0).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
                 stride: int = 1, padding: int = 0):
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride, padding)
        out_l, out_g = _split(out_channels, ratio_gout)
        self.bn_l = nn.BatchNorm2d(out_l) if out_l else nn.Identity()
        self.bn_g = nn.BatchNorm2d(out_g) if out_g else nn.Identity()
        self.act_l = nn.ReLU(inplace=True) if out_l else nn.Identity()
        self.act_g = nn.ReLU(inplace=True) if out_g else nn.Identity()

    def forward(self, x):
        x_l, x_g = self.ffc(x)
        if isinstance(x_l, torch.Tensor):
            x_l = self.act_l(self.bn_l(x_l))
        if isinstance(x_g, torch.Tensor):
            x_g = self.act_g(self.bn_g(x_g))
        return x_l, x_g


class FFCResnetBlock(nn.Module):
    """Two 3x3 :class:`FFCBNAct` (reflect padding 1), added to the input per part; no final activation.

    Parameters
    ----------
    channels : int
        Input and output channels, both parts together.
    ratio : float
        The fraction of the channels in the global part, in and out.
    """

    def __init__(self, channels: int, ratio: float):
        super().__init__()
        self.conv1 = FFCBNAct(channels, channels, 3, ratio, ratio, padding=1)
        self.conv2 = FFCBNAct(channels, channels, 3, ratio, ratio, padding=1)

    def forward(self, x):
        x_l, x_g = x
        y_l, y_g = self.conv2(self.conv1((x_l, x_g)))
        return x_l + y_l, x_g + y_g


class _ConcatTuple(nn.Module):
    """``cat([local, global], 1)``, local first (the global part may be absent)."""

    def forward(self, x):
        x_l, x_g = x if isinstance(x, tuple) else (x, 0)
        if not isinstance(x_g, torch.Tensor):
            return x_l
        if not isinstance(x_l, torch.Tensor):
            return x_g
        return torch.cat([x_l, x_g], dim=1)


class FFCResNetGenerator(nn.Module):
    """big-lama's generator (see the module docstring); the defaults are the big-lama configuration.

    Parameters
    ----------
    input_nc, output_nc : int
        Channels in (RGB + mask) and out (RGB).
    ngf : int
        Channels after the first convolution.
    n_downsampling : int
        Stride-2 convolutions (and transposed convolutions back).
    n_blocks : int
        FFC residual blocks at 1/2**n_downsampling resolution.
    ratio : float
        Share of global (Fourier) channels in the residual blocks (and out of the last downsampling).
    max_features : int
        Cap on the channel count.
    """

    def __init__(self, input_nc: int = 4, output_nc: int = 3, ngf: int = 64, n_downsampling: int = 3,
                 n_blocks: int = 18, ratio: float = 0.75, max_features: int = 1024):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), FFCBNAct(input_nc, ngf, 7, 0, 0)]
        for i in range(n_downsampling):
            cin = min(max_features, ngf * 2 ** i)
            cout = min(max_features, ngf * 2 ** (i + 1))
            gout = ratio if i == n_downsampling - 1 else 0  # the global branch starts at the last one
            layers.append(FFCBNAct(cin, cout, 3, 0, gout, stride=2, padding=1))
        feats = min(max_features, ngf * 2 ** n_downsampling)
        layers += [FFCResnetBlock(feats, ratio) for _ in range(n_blocks)]
        layers.append(_ConcatTuple())
        #: where the decoder starts (the layers after the concatenation of the local and global branches)
        self._decoder_start = len(layers)
        up_act = nn.ReLU(inplace=True)  # one instance reused, as in the reference (no parameters)
        for i in range(n_downsampling):
            cin = min(max_features, ngf * 2 ** (n_downsampling - i))
            cout = min(max_features, ngf * 2 ** (n_downsampling - i) // 2)
            layers += [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                       nn.BatchNorm2d(cout), up_act]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 4, H, W): masked RGB in [0, 1] and mask; H, W multiples of 8, >= 16."""
        _check_input(x)
        layers = list(self.model)
        for layer in layers[:self._decoder_start]:
            x = layer(x)
        # the decoder runs channels-last (same values): on the CPU a transposed convolution on a
        # contiguous (NCHW) map writes its output through a slow layout conversion, 5x the convolution
        # itself at 128 -> 64 channels, 512**2 (1.97 vs 0.39 CPU s); growing with the image faster than
        # the pixel count (caches), it made a 1024**2 forward cost 18x a 256**2 one
        x = x.contiguous(memory_format=torch.channels_last)
        for layer in layers[self._decoder_start:]:
            x = layer(x)
        return x.contiguous()

    @torch.no_grad()
    def infer(self, x: torch.Tensor, holes_only: bool = False,
              step: Optional[Callable[[int, int], object]] = None) -> torch.Tensor:
        """The eval-mode :meth:`forward` (the same function, within float rounding), faster.

        Every BatchNorm is folded into the convolution before it; the local and global parts of an
        FFC are each padded once for the convolutions that read them; sums and ReLUs are in place. It
        needs no gradients (runs under ``no_grad``) and calls no forward hooks; the folded weights are
        made once and remade when a parameter or buffer changes (``load_state_dict``, ``.to()``, an
        optimiser step).

        Parameters
        ----------
        x : torch.Tensor
            (B, 4, H, W): masked RGB in [0, 1] and the mask (1 = hole); H, W multiples of 8, >= 16.
        holes_only : bool, optional
            Compute the output only where it is used when holes are filled: the decoder (three
            transposed convolutions and the last 7x7 convolution, all local) runs on the parts of its
            input map that reach a pixel whose mask (``x[:, 3]``) is non-zero, in any item of the
            batch. There the result is the full one; elsewhere it is the input RGB ``x[:, :3]``. The
            encoder and the residual blocks run everywhere (their Fourier units see the whole map).
        step : callable, optional
            ``step(done, total)``, called after the encoder, after each residual block and after the
            decoder (``total`` = blocks + 2; the last call has ``done == total``); an exception it
            raises stops the forward there and propagates (a cancel).

        Returns
        -------
        torch.Tensor
            (B, 3, H, W) in (0, 1).
        """
        if self.training:
            raise RuntimeError("infer() computes the eval-mode network: call .eval() first (or use forward)")
        h, w = _check_input(x)
        stem, encoder, blocks, decoder, head = self._folded()
        total = len(blocks) + 2

        def done(n):
            if step is not None:
                step(n, total)

        parts = _ffc_infer(stem, (F.pad(x, (3, 3, 3, 3), mode="reflect"), None))
        for p in encoder:
            parts = _ffc_infer(p, parts)
        done(1)
        for i, (first, second) in enumerate(blocks):
            y_l, y_g = _ffc_infer(second, _ffc_infer(first, parts))
            parts = (y_l.add_(parts[0]), y_g.add_(parts[1]))
            done(2 + i)
        z = torch.cat([t for t in parts if t is not None], dim=1)
        z = z.contiguous(memory_format=torch.channels_last)  # as in forward: transposed convolutions
        if not holes_only:
            out = _decode(z, decoder, head).contiguous()
            done(total)
            return out
        cell = 2 ** len(decoder)
        if z.shape[-2:] != (h // cell, w // cell):
            raise ValueError("infer(holes_only=True) needs a decoder of stride-2 transposed convolutions")
        out = x[:, :3].clone()
        cells = F.max_pool2d((x[:, 3:4] > 0).to(z.dtype), cell).amax(dim=(0, 1)) > 0
        for r0, r1, c0, c1 in _hole_regions(cells):
            # the rows / columns of the decoder's input that output cells r0:r1, c0:c1 depend on
            zr0, zr1 = _decoder_support(r0, r1, len(decoder), z.shape[-2])
            zc0, zc1 = _decoder_support(c0, c1, len(decoder), z.shape[-1])
            y = _decode(z[:, :, zr0:zr1, zc0:zc1], decoder, head)
            out[:, :, r0 * cell:r1 * cell, c0 * cell:c1 * cell] = \
                y[:, :, (r0 - zr0) * cell:(r1 - zr0) * cell, (c0 - zc0) * cell:(c1 - zc0) * cell]
        done(total)
        return out

    def _folded(self) -> tuple:
        """``(stem, encoder, blocks, decoder, head)`` of :meth:`infer`, cached while no parameter or buffer
        changed (their storage and version counters are the key; tensors made in inference mode have no
        version counter, so for them the folding is redone on each call)."""
        tensors = [*self.parameters(), *self.buffers()]
        if any(t.is_inference() for t in tensors):
            key = None
        else:
            key = tuple((t.data_ptr(), t._version) for t in tensors)
        cached = getattr(self, "_folded_cache", None)
        if key is not None and cached is not None and cached[0] == key:
            return cached[1]
        layers = list(self.model)
        blocks_at = [i for i, m in enumerate(layers) if isinstance(m, FFCResnetBlock)]
        with torch.no_grad():
            stem = _fold_ffc(layers[1])
            encoder = [_fold_ffc(m) for m in layers[2:blocks_at[0]]]
            blocks = [(_fold_ffc(layers[i].conv1), _fold_ffc(layers[i].conv2)) for i in blocks_at]
            decoder = []
            for i, m in enumerate(layers):
                if isinstance(m, nn.ConvTranspose2d):
                    # a transposed convolution's weight is (in, out, kh, kw): scale dim 1
                    scale, shift = _bn_scale_shift(layers[i + 1], m.weight)
                    bias = m.bias if m.bias is not None else torch.zeros_like(shift)
                    decoder.append((m.weight * scale.view(1, -1, 1, 1), bias * scale + shift))
            conv = layers[-2]
            head = (conv.weight.detach(), None if conv.bias is None else conv.bias.detach())
        folded = (stem, encoder, blocks, decoder, head)
        self._folded_cache = None if key is None else (key, folded)
        return folded


# ------------------------------------------------------------------------------ folded inference path
class _FoldedFFC(NamedTuple):
    """One :class:`FFCBNAct` with its BatchNorms folded into the convolutions before them: ``l2l``,
    ``l2g``, ``g2l`` (weights scaled by the output part's BN, or None where the branch is absent),
    ``bias_l``, ``bias_g`` (the BN shifts, None for a part without channels), and ``spectral``: the
    spectral transform's ``conv1`` and Fourier-unit convolutions with their BNs folded (weight, bias
    each) and its ``conv2`` scaled by ``bn_g``, or None where there is no global -> global branch."""

    stride: int
    padding: int
    l2l: Optional[torch.Tensor]
    l2g: Optional[torch.Tensor]
    g2l: Optional[torch.Tensor]
    bias_l: Optional[torch.Tensor]
    bias_g: Optional[torch.Tensor]
    spectral: Optional[tuple]


def _bn_scale_shift(bn: nn.Module, like: torch.Tensor) -> tuple:
    """``(scale, shift)`` with ``bn(y) == y * scale + shift`` per channel in eval mode (computed in at
    least float32, returned in ``like``'s dtype)."""
    if not isinstance(bn, nn.BatchNorm2d) or bn.running_var is None or bn.running_mean is None:
        raise ValueError("infer() needs BatchNorm2d layers with running statistics (track_running_stats=True)")
    dtype = torch.promote_types(like.dtype, torch.float32)
    var, mean = bn.running_var.to(dtype), bn.running_mean.to(dtype)
    weight = bn.weight.to(dtype) if bn.weight is not None else torch.ones_like(var)
    bias = bn.bias.to(dtype) if bn.bias is not None else torch.zeros_like(var)
    scale = weight / torch.sqrt(var + bn.eps)
    return scale.to(like.dtype), (bias - mean * scale).to(like.dtype)


def _scaled(weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """A convolution's weight (out, in, kh, kw) with output channel ``o`` multiplied by ``scale[o]``."""
    return weight * scale.view(-1, 1, 1, 1)


def _fold_ffc(block: FFCBNAct) -> _FoldedFFC:
    """``block``'s weights for :func:`_ffc_infer` (see :class:`_FoldedFFC`)."""
    ffc = block.ffc
    scale = {}
    for part, bn in (("l", block.bn_l), ("g", block.bn_g)):
        if isinstance(bn, nn.BatchNorm2d):
            scale[part] = _bn_scale_shift(bn, next(ffc.parameters()))

    def folded(conv, part):
        return _scaled(conv.weight, scale[part][0]) if isinstance(conv, nn.Conv2d) else None

    spectral = None
    if isinstance(ffc.convg2g, SpectralTransform):
        st = ffc.convg2g
        conv1, bn1 = st.conv1[0], st.conv1[1]
        s1, b1 = _bn_scale_shift(bn1, conv1.weight)
        sf, bf = _bn_scale_shift(st.fu.bn, conv1.weight)
        spectral = (_scaled(conv1.weight, s1), b1, _scaled(st.fu.conv_layer.weight, sf), bf,
                    _scaled(st.conv2.weight, scale["g"][0]))
    first = next(c for c in (ffc.convl2l, ffc.convl2g, ffc.convg2l) if isinstance(c, nn.Conv2d))
    return _FoldedFFC(stride=first.stride[0], padding=int(first.padding[0]) if isinstance(first.padding, tuple) else 0,
                      l2l=folded(ffc.convl2l, "l"), l2g=folded(ffc.convl2g, "g"), g2l=folded(ffc.convg2l, "l"),
                      bias_l=scale["l"][1] if "l" in scale else None, bias_g=scale["g"][1] if "g" in scale else None,
                      spectral=spectral)


def _fourier_infer(weight: torch.Tensor, bias: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """:class:`FourierUnit` with its BN folded into ``weight``/``bias`` (same interleaving, same FFTs)."""
    b, c, hh, ww = h.shape
    dtype = h.dtype
    spec = torch.fft.rfftn(h.float() if dtype in (torch.float16, torch.bfloat16) else h, dim=(-2, -1), norm="ortho")
    wf = spec.shape[-1]
    spec = torch.stack((spec.real, spec.imag), dim=2).reshape(b, 2 * c, hh, wf).to(weight.dtype)
    spec = F.conv2d(spec, weight, bias).relu_().float().reshape(b, c, 2, hh, wf)
    out = torch.fft.irfftn(torch.complex(spec[:, :, 0], spec[:, :, 1]), s=(hh, ww), dim=(-2, -1), norm="ortho")
    return out.to(dtype)


def _ffc_infer(p: _FoldedFFC, x: tuple) -> tuple:
    """One folded FFC + BN + ReLU on ``(local, global)`` (a part may be None); returns the same form.
    Each part is padded once for the convolutions that read it; the sums and ReLUs are in place."""
    x_l, x_g = x
    pad = (p.padding,) * 4
    xp_l = F.pad(x_l, pad, mode="reflect") if p.padding and x_l is not None else x_l
    xp_g = F.pad(x_g, pad, mode="reflect") if p.padding and x_g is not None and p.g2l is not None else x_g
    y_l = y_g = None
    if p.l2l is not None:
        y_l = F.conv2d(xp_l, p.l2l, p.bias_l, p.stride)
    if p.g2l is not None:
        g2l = F.conv2d(xp_g, p.g2l, None if y_l is not None else p.bias_l, p.stride)
        y_l = g2l if y_l is None else y_l.add_(g2l)
    if p.l2g is not None:
        y_g = F.conv2d(xp_l, p.l2g, p.bias_g, p.stride)
    if p.spectral is not None:
        w1, b1, wf, bf, w2 = p.spectral
        h = F.conv2d(x_g, w1, b1).relu_()
        h += _fourier_infer(wf, bf, h)
        g2g = F.conv2d(h, w2, None if y_g is not None else p.bias_g)
        y_g = g2g if y_g is None else y_g.add_(g2g)
    return (None if y_l is None else y_l.relu_()), (None if y_g is None else y_g.relu_())


def _decode(z: torch.Tensor, decoder: list, head: tuple) -> torch.Tensor:
    """The folded decoder on (a part of) its input map: transposed convolutions + ReLU, reflection pad,
    the last convolution, sigmoid."""
    for weight, bias in decoder:
        z = F.conv_transpose2d(z, weight, bias, stride=2, padding=1, output_padding=1).relu_()
    return torch.sigmoid(F.conv2d(F.pad(z, (3, 3, 3, 3), mode="reflect"), *head))


def _decoder_support(lo: int, hi: int, levels: int, size: int) -> tuple:
    """The rows ``[a, b)`` of the decoder's input map (``size`` rows) that its output rows
    ``[lo, hi)`` (in cells of ``2**levels`` pixels) depend on, clipped to the map.

    Walked back layer by layer: the last 7x7 convolution needs 3 more pixels on each side; a 3x3
    transposed convolution of stride 2, padding 1, output padding 1 makes output row ``o`` from input
    rows ``o // 2`` and, for odd ``o``, ``o // 2 + 1``, so output rows ``[p, q)`` need input rows
    within ``[p // 2, (q - 1) // 2 + 2)``. Computing the decoder on the clipped rows gives exact values at
    ``[lo, hi)``: rows cut off at the map's borders are the true borders (zero for the transposed
    convolutions, reflection for the last one), and the rows next to a cut that is not a border
    only spoil outputs outside ``[lo, hi)``.
    """
    p, q = lo * 2 ** levels - 3, hi * 2 ** levels + 3
    for _ in range(levels):
        p, q = p // 2, (q - 1) // 2 + 2
    return max(p, 0), min(q, size)


def _hole_regions(cells: torch.Tensor, band: int = 4, gap: int = 3) -> list:
    """Rectangles ``(r0, r1, c0, c1)`` (in cells) that cover every True cell of ``cells`` (H, W):
    bands of ``band`` rows, in each the runs of columns holding a True cell, runs closer than ``gap``
    columns merged (each rectangle costs a margin of about three cells of context)."""
    import numpy as np

    grid = cells.cpu().numpy()
    out = []
    for r0 in range(0, grid.shape[0], band):
        r1 = min(r0 + band, grid.shape[0])
        cols = np.flatnonzero(grid[r0:r1].any(axis=0))
        if cols.size == 0:
            continue
        breaks = np.flatnonzero(np.diff(cols) > gap)
        starts = np.concatenate(([cols[0]], cols[breaks + 1]))
        ends = np.concatenate((cols[breaks], [cols[-1]])) + 1
        out += [(r0, r1, int(a), int(b)) for a, b in zip(starts, ends)]
    return out


def _check_input(x: torch.Tensor) -> tuple:
    """``(H, W)`` of the generator's input ``x``, or a ValueError: (B, C, H, W), sides multiples of 8, >= 16."""
    if x.ndim != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % 8 or w % 8 or h < 16 or w < 16:
        raise ValueError(f"x: height and width must be multiples of 8 and at least 16, got {h}x{w}")
    return h, w
