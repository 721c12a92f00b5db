"""GMCNN generator (Wang et al., "Image Inpainting via Generative Multi-column Convolutional Neural
Networks", NeurIPS 2018), PyTorch version.

Written from the description of the reference implementation ``shepnerd/inpainting_gmcnn``
(``pytorch/model/net.py``, class ``GMCNN``); the module tree is laid out so that the ``state_dict``
keys and shapes are those of the reference, and its official checkpoints (a bare state_dict saved as
``<epoch>_net_GM.pth``) load strictly.

Network: three encoder-decoder columns with 7x7, 5x5 and 3x3 kernels (``EB1``, ``EB2``, ``EB3``) run on
the same input, the masked image in ``[-1, 1]`` (holes set to 0) concatenated with the mask (1 = hole).
Each column has two stride-2 reductions, dilated convolutions (dilation 2, 4, 8, 16) at quarter
resolution, and returns to full resolution differently: ``EB1`` by one bilinear x4 upsampling,
``EB2`` by nearest x2 + two convs + bilinear x2, ``EB3`` by two rounds of nearest x2 + two convs.
Every convolution uses reflection padding of ``dilation * (kernel - 1) / 2`` and is followed by ELU;
the upsampling entries sit in the ``ModuleList`` as parameter-free modules so that the indices of the
convolutions (``EB2.13``, ``EB3.16`` ...) are those of the reference. The concatenated 224 channels go
through Conv3x3 + ELU and Conv3x3, and the result is clamped to ``[-1, 1]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._upconv import upsample2_conv

__all__ = ["GMCNN", "Upsample"]


class Upsample(nn.Module):
    """Parameter-free upsampling by an integer ``scale`` (bilinear uses ``align_corners=True``).

    Parameters
    ----------
    scale : int
        The upsampling factor of both spatial axes.
    mode : str, optional
        ``"bilinear"`` (default) or another mode of ``torch.nn.functional.interpolate``; ``"nearest"``
        is called without ``align_corners``.
    """

    def __init__(self, scale: int, mode: str = "bilinear"):
        super().__init__()
        self.scale = scale
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[2] * self.scale, x.shape[3] * self.scale)
        if self.mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(x, size=size, mode=self.mode, align_corners=True)


def _column(in_channels: int, cnum: int, k: int, tail) -> nn.ModuleList:
    """One column with kernel ``k``: the shared encoder/dilated trunk plus its ``tail``.

    ``tail`` is a list of ``("conv", cin, cout)`` / ``("up", scale, mode)`` entries.
    """
    c1, c2, c4 = cnum, cnum * 2, cnum * 4
    layers = [
        nn.Conv2d(in_channels, c1, k),
        nn.Conv2d(c1, c2, k, stride=2),
        nn.Conv2d(c2, c2, k),
        nn.Conv2d(c2, c4, k, stride=2),
        nn.Conv2d(c4, c4, k),
        nn.Conv2d(c4, c4, k),
    ]
    layers += [nn.Conv2d(c4, c4, k, dilation=d) for d in (2, 4, 8, 16)]
    layers += [nn.Conv2d(c4, c4, k), nn.Conv2d(c4, c4, k)]
    for kind, a, b in tail:
        layers.append(nn.Conv2d(a, b, k) if kind == "conv" else Upsample(a, b))
    return nn.ModuleList(layers)


class GMCNN(nn.Module):
    """The GMCNN generator (keys of the reference ``GMCNN(4, 3, cnum=32)``).

    ``forward(x)`` takes (B, 4, H, W): the masked image in ``[-1, 1]`` (holes 0) and the mask; ``H`` and
    ``W`` must be multiples of 4 and at least :attr:`min_size` (the reflection padding of the
    dilation-16 7x7 layer, 48 pixels, must be smaller than the quarter-resolution map). Returns
    (B, 3, H, W) in ``[-1, 1]``.

    Parameters
    ----------
    in_channels : int, optional
        Input channels (default 4: RGB and the mask).
    out_channels : int, optional
        Output channels (default 3: RGB).
    cnum : int, optional
        The base width: the columns' layers have ``cnum``, ``2 * cnum`` and ``4 * cnum`` channels
        (default 32, as the official weights).

    Attributes
    ----------
    size_multiple : int
        ``H`` and ``W`` must be multiples of this (4).
    min_size : int
        The smallest ``H`` and ``W`` the network accepts, in pixels.
    """

    size_multiple = 4
    min_size = 196

    def __init__(self, in_channels: int = 4, out_channels: int = 3, cnum: int = 32):
        super().__init__()
        c1, c2, c4 = cnum, cnum * 2, cnum * 4
        self.EB1 = _column(in_channels, cnum, 7, [("up", 4, "bilinear")])
        self.EB2 = _column(in_channels, cnum, 5, [
            ("up", 2, "nearest"), ("conv", c4, c2), ("conv", c2, c2), ("up", 2, "bilinear")])
        self.EB3 = _column(in_channels, cnum, 3, [
            ("up", 2, "nearest"), ("conv", c4, c2), ("conv", c2, c2),
            ("up", 2, "nearest"), ("conv", c2, c1), ("conv", c1, c1)])
        self.decoding_layers = nn.ModuleList([
            nn.Conv2d(c4 + c2 + c1, cnum // 2, 3),
            nn.Conv2d(cnum // 2, out_channels, 3),
        ])

    @staticmethod
    def _conv(layer: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        """``layer`` applied after reflection padding that keeps the (stride-1) size."""
        pad = layer.dilation[0] * (layer.kernel_size[0] - 1) // 2
        return layer(F.pad(x, (pad, pad, pad, pad), mode="reflect"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        if h % self.size_multiple or w % self.size_multiple or min(h, w) < self.min_size:
            raise ValueError(f"GMCNN input size must be a multiple of {self.size_multiple} and at least "
                             f"{self.min_size}, got {h}x{w}")
        if torch.is_grad_enabled():
            outs = []
            for column in (self.EB1, self.EB2, self.EB3):
                y = x
                for layer in column:
                    y = layer(y) if isinstance(layer, Upsample) else F.elu(self._conv(layer, y))
                outs.append(y)
            y = F.elu(self._conv(self.decoding_layers[0], torch.cat(outs, dim=1)))
            return self._conv(self.decoding_layers[1], y).clamp(-1.0, 1.0)
        return self._forward_inference(x)

    def _forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` without autograd, faster on the CPU (same values).

        oneDNN's convolutions are faster in channels-last memory format for most layers here (the
        224 -> 16 decoder layer at full size by about 2x), and every other op keeps the format: the
        input is converted once and the 3-channel output back. ELUs run in place; each x2 nearest
        upsampling and the convolution after it run as phase convolutions of the source map
        (:func:`._upconv.upsample2_conv`: 9 instead of 25 taps for 5x5, 4 instead of 9 for 3x3, the
        reflected border recomputed directly); the three columns' outputs are written straight into
        the reflection-padded input of the first decoder layer (one copy instead of a concatenation
        and a padding).
        """
        x = x.contiguous(memory_format=torch.channels_last)
        n, _, h, w = x.shape
        first = self.decoding_layers[0]
        pad = first.kernel_size[0] // 2
        merged = torch.empty((n, first.in_channels, h + 2 * pad, w + 2 * pad), dtype=x.dtype, device=x.device,
                             memory_format=torch.channels_last)
        c = 0
        for column in (self.EB1, self.EB2, self.EB3):
            y = x
            pending = None  # a x2 nearest upsampling not yet applied
            for layer in column:
                if pending is not None:
                    if isinstance(layer, nn.Conv2d) and layer.stride == (1, 1) and layer.dilation == (1, 1):
                        # upsampling + conv without the upsampled map (phase convolutions, see _upconv)
                        y = F.elu(upsample2_conv(y, layer.weight, layer.bias, "reflect"), inplace=True)
                        pending = None
                        continue
                    y, pending = pending(y), None
                if isinstance(layer, Upsample) and layer.mode == "nearest" and layer.scale == 2:
                    pending = layer
                elif isinstance(layer, Upsample):
                    y = layer(y)
                else:
                    y = F.elu(self._conv(layer, y), inplace=True)
            if pending is not None:
                y = pending(y)
            merged[:, c:c + y.shape[1], pad:pad + h, pad:pad + w] = y
            c += y.shape[1]
        for i in range(pad):  # reflection padding of the border, rows then columns (corners included)
            merged[:, :, pad - 1 - i] = merged[:, :, pad + 1 + i]
            merged[:, :, pad + h + i] = merged[:, :, pad + h - 2 - i]
            merged[:, :, :, pad - 1 - i] = merged[:, :, :, pad + 1 + i]
            merged[:, :, :, pad + w + i] = merged[:, :, :, pad + w - 2 - i]
        y = F.elu(first(merged), inplace=True)
        y = self._conv(self.decoding_layers[1], y)
        return y.clamp_(-1.0, 1.0).contiguous()
