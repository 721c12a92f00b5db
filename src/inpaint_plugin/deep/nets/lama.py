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
"""
from __future__ import annotations

import torch
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
        if x.ndim != 4:
            raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % 8 or w % 8 or h < 16 or w < 16:
            raise ValueError(f"x: height and width must be multiples of 8 and at least 16, got {h}x{w}")
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
