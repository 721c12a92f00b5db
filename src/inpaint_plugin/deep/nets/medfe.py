"""MEDFE: Mutual Encoder-Decoder with Feature Equalizations (Liu et al., ECCV 2020).

A re-implementation of the generator of the reference code (KumapowerLIU/Rethinking-Inpainting-MEDFE,
see ``shared/conformance/medfe/README.md``), with exactly its three state_dicts:

- :class:`Encoder` (file ``EN.pkl``): a 6-level convolutional encoder plus 4 dilated residual blocks;
- :class:`PCBlock` (file ``MEDEF.pkl``): ``pc_block`` (:class:`PCConv`: texture and structure branches
  filled by multi-scale partial convolutions, fused, feature-equalised by :class:`Base`, added back to
  the skips) and ``loss`` (:class:`InnerCos`, training only);
- :class:`Decoder` (file ``DE.pkl``): 6 transposed-convolution blocks, tanh output.

:class:`MEDFE` chains them. The network works on one 256 x 256 image: the feature equalisation has a
fixed 32 x 32 Gaussian bank and the texture/structure branches resize to fixed 32/64/128 sizes.

Width: every part takes ``ngf``, the base width of the reference's ``Encoder(6, 3, ngf=64)`` and
``Decoder(6, 3, ngf=64)`` (its ``opt.ngf``). The reference's ``PCconv`` and ``InnerCos`` hard-code the
channel counts of ``ngf = 64`` (64/128/256/512/768, README of ``shared/conformance/medfe``); here they are
written as the same multiples of ``ngf`` (1, 2, 4, 8, 12), so the default ``ngf=64`` gives exactly the
reference's modules, state_dict keys, shapes and order, and a smaller even ``ngf`` (the SE layer's
reduction 16 of ``8 * ngf`` channels needs ``ngf`` even) a narrow network of the same structure (used by
the tests of the API contract). The input side stays 256 at every width.

Behaviours of the reference kept on purpose (they define what the trained weights expect):

- the encoder skips are LeakyReLU'd (the reference's in-place LeakyReLU of the next block) and
  :class:`PCConv` applies LeakyReLU again;
- the modules ``down``, ``up`` and ``cov_3/5/7`` are shared between the two branches;
- the partial convolutions divide by ``conv(mask, mask_conv.weight)`` with the *loaded* mask weights;
- the feature mask of this reference version is always empty (``cal_feat_mask(mask, 3, 1)``), so
  every partial convolution starts from an all-ones mask and the hole mask has no influence;
- the Bilateral Propagation Activation reshapes its ``[H*W, C]`` results straight to ``[1, C, H, W]``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MEDFE",
    "Base",
    "Decoder",
    "Encoder",
    "InnerCos",
    "PCBlock",
    "PCConv",
    "PartialConv",
    "gaussian_bank",
    "hole_fill_values",
]

#: Value (0-255 scale) the reference gives to hole pixels of the input image, per channel.
HOLE_FILL = (123.0, 104.0, 117.0)
_SLOPE = 0.2
_GRID = 32  # side of the feature maps the feature equalisation works on


def hole_fill_values() -> tuple:
    """The per-channel value of hole pixels in the network input (``2 * v / 255 - 1``).

    Returns
    -------
    tuple of float
        One value per RGB channel, in ``[-1, 1]``, from :data:`HOLE_FILL`.
    """
    return tuple(2.0 * v / 255.0 - 1.0 for v in HOLE_FILL)


def _lrelu(x):
    return F.leaky_relu(x, _SLOPE)


def _check_ngf(ngf) -> int:
    """``ngf`` as an int, or a ValueError naming it: a positive even integer (the SE layer of the feature
    equalisation reduces its ``8 * ngf`` channels by 16)."""
    if isinstance(ngf, bool) or not isinstance(ngf, (int, np.integer)) or ngf < 2 or ngf % 2:
        raise ValueError(f"ngf must be a positive even integer (the MEDFE base width, 64 in the reference), "
                         f"got {ngf!r}")
    return int(ngf)


class _Seq(nn.Module):
    """A ``model`` Sequential (gives the reference's ``<name>.model.<i>`` state_dict keys)."""

    def __init__(self, *layers):
        super().__init__()
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


# ------------------------------------------------------------------------------------------------ encoder
class ResnetBlock(nn.Module):
    """``x + IN(conv3(reflpad1(ReLU(IN(conv3_dilated(reflpad_d(x)))))))``, no bias, plain IN."""

    def __init__(self, dim: int, dilation: int = 2):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            nn.Conv2d(dim, dim, 3, dilation=dilation, bias=False),
            nn.InstanceNorm2d(dim),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=False),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


class Encoder(nn.Module):
    """Encoder(6, 3, 64, res_num=4): returns the six skips ``(y1, ..., y5, middle(y6))``.

    ``y1..y5`` are returned LeakyReLU'd, as the reference's in-place activations leave them.

    Parameters
    ----------
    in_ch : int, optional
        Input channels (default 6).
    ngf : int, optional
        The base width: the six stride-2 convolutions have ``ngf`` to ``8 * ngf`` channels (default 64).
    res_num : int, optional
        The number of dilated residual blocks of ``middle`` (default 4).
    """

    def __init__(self, in_ch: int = 6, ngf: int = 64, res_num: int = 4):
        super().__init__()
        ngf = _check_ngf(ngf)
        self.middle = nn.Sequential(*[ResnetBlock(ngf * 8, 2) for _ in range(res_num)])
        self.Encoder_1 = _Seq(nn.Conv2d(in_ch, ngf, 4, 2, 1))
        chans = [ngf, ngf * 2, ngf * 4, ngf * 8, ngf * 8]
        for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:]), start=2):
            setattr(self, f"Encoder_{i}", _Seq(nn.LeakyReLU(_SLOPE), nn.Conv2d(cin, cout, 4, 2, 1),
                                               nn.InstanceNorm2d(cout, affine=True)))
        self.Encoder_6 = _Seq(nn.LeakyReLU(_SLOPE), nn.Conv2d(ngf * 8, ngf * 8, 4, 2, 1))

    def forward(self, x):
        ys = [self.Encoder_1(x)]
        for i in range(2, 7):
            ys.append(getattr(self, f"Encoder_{i}")(ys[-1]))
        return (*[_lrelu(y) for y in ys[:5]], self.middle(ys[5]))


# ------------------------------------------------------------------------------------------------ decoder
class Decoder(nn.Module):
    """Decoder(6, 3, 64): ``D1(o6), D2(cat(d1, o5)), ..., D6(cat(d5, o1))``, tanh output in [-1, 1].

    Parameters
    ----------
    out_ch : int, optional
        Output channels (default 3).
    ngf : int, optional
        The base width, as the encoder's (default 64).
    """

    def __init__(self, out_ch: int = 3, ngf: int = 64):
        super().__init__()
        ngf = _check_ngf(ngf)
        spec = [(ngf * 8, ngf * 8), (ngf * 16, ngf * 8), (ngf * 16, ngf * 4), (ngf * 8, ngf * 2), (ngf * 4, ngf)]
        for i, (cin, cout) in enumerate(spec, start=1):
            setattr(self, f"Decoder_{i}", _Seq(nn.ReLU(), nn.ConvTranspose2d(cin, cout, 4, 2, 1),
                                               nn.InstanceNorm2d(cout, affine=True)))
        self.Decoder_6 = _Seq(nn.ReLU(), nn.ConvTranspose2d(ngf * 2, out_ch, 4, 2, 1), nn.Tanh())

    def forward(self, o1, o2, o3, o4, o5, o6):
        d = self.Decoder_1(o6)
        for i, skip in zip(range(2, 7), (o5, o4, o3, o2, o1)):
            d = getattr(self, f"Decoder_{i}")(torch.cat([d, skip], 1))
        return d


# ------------------------------------------------------------------------------------------------ PCconv
def _conv_in(cin, cout, k, s, p, act=True):
    """Conv (no bias) + plain InstanceNorm (+ LeakyReLU)."""
    layers = [nn.Conv2d(cin, cout, k, s, p, bias=False), nn.InstanceNorm2d(cout)]
    return layers + ([nn.LeakyReLU(_SLOPE)] if act else [])


class ConvUp(nn.Module):
    """Bilinear resize to ``size``, Conv1x1 (no bias), plain IN, LeakyReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.InstanceNorm2d(cout)

    def forward(self, x, size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return _lrelu(self.bn(self.conv(x)))


class PartialConv(nn.Module):
    """Partial convolution as in the reference: ``conv(x*M) / conv(M, mask_conv.weight)``.

    Positions where the mask convolution is exactly 0 give 0 and become holes of the new mask.

    Parameters
    ----------
    cin, cout : int
        Input and output channels.
    k : int
        The kernel side (odd); padding ``k // 2``, stride 1, no bias.
    """

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__()
        self.input_conv = nn.Conv2d(cin, cout, k, 1, k // 2, bias=False)
        self.mask_conv = nn.Conv2d(cin, cout, k, 1, k // 2, bias=False)

    def mask_response(self, mask):
        """``conv(mask, mask_conv.weight)``; for an all-ones mask computed cheaply (in float64 where the
        device has it) as the convolution of one ones-channel with the weights summed over input channels."""
        w = self.mask_conv.weight
        if bool((mask == 1).all()):
            k = w.shape[-1]
            dtype = torch.float32 if w.device.type == "mps" else torch.float64
            ones = torch.ones((1, 1) + tuple(mask.shape[-2:]), dtype=dtype, device=w.device)
            s = F.conv2d(ones, w.to(dtype).sum(1, keepdim=True), padding=k // 2)
            return s.to(w.dtype)
        return self.mask_conv(mask)

    def forward(self, x, mask):
        s = self.mask_response(mask)
        holes = s == 0
        out = self.input_conv(x * mask) / s.masked_fill(holes, 1.0)
        return out.masked_fill(holes, 0.0), (~holes).to(x.dtype)


class PCBActiv(nn.Module):
    """PartialConv, affine InstanceNorm, LeakyReLU."""

    def __init__(self, ch: int, k: int):
        super().__init__()
        self.conv = PartialConv(ch, ch, k)
        self.bn = nn.InstanceNorm2d(ch, affine=True)

    def forward(self, x, mask):
        x, mask = self.conv(x, mask)
        return _lrelu(self.bn(x)), mask


class _PCStack(nn.Sequential):
    """PCBActiv layers passing the updated mask along (keys ``cov_k.<i>.*``)."""

    def forward(self, x, mask):
        for layer in self:
            x, mask = layer(x, mask)
        return x


class SELayer(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(fc2(relu(fc1(avgpool(x)))))``."""

    def __init__(self, ch: int, reduction: int = 16):
        super().__init__()
        self.fc = nn.Sequential(nn.Conv2d(ch, ch // reduction, 1), nn.ReLU(), nn.Conv2d(ch // reduction, ch, 1),
                                nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x.mean((2, 3), keepdim=True))


def gaussian_bank(side: int = _GRID, sigma: float = 1.5) -> np.ndarray:
    """``[side*side, side*side]`` float64: row ``p = i*side + k`` is the Gaussian centred on grid position
    ``(i, k)``, normalised to sum 1 over the grid.

    Parameters
    ----------
    side : int, optional
        The side of the square grid, in positions (default 32, the feature maps' side).
    sigma : float, optional
        The Gaussian's standard deviation, in grid positions (default 1.5).

    Returns
    -------
    numpy.ndarray
        ``(side * side, side * side)`` float64, each row summing to 1.
    """
    coords = np.arange(side, dtype=np.float64)
    d2 = (coords[:, None] - coords[None, :]) ** 2  # [centre, position] along one axis
    w = np.exp(-(d2[:, None, :, None] + d2[None, :, None, :]) / (2.0 * sigma * sigma)) / (2.0 * math.pi * sigma ** 2)
    w = w.reshape(side * side, side * side)
    return w / w.sum(1, keepdims=True)


class Base(nn.Module):
    """Feature equalisation: SE, then Bilateral Propagation Activation, then Conv1x1 + IN + LeakyReLU.

    The spatial (Gaussian) and range (3x3 neighbour softmax) terms are computed per position as
    ``[H*W, C]`` arrays and reshaped row-major to ``[1, C, H, W]`` without transposing, like the
    reference. Works on 32 x 32 maps; each batch item is processed on its own.

    Parameters
    ----------
    ch : int, optional
        Input and output channels (default 512).
    """

    def __init__(self, ch: int = 512):
        super().__init__()
        self.model = nn.Sequential(SELayer(ch, 16))
        self.down = nn.Sequential(*_conv_in(2 * ch, ch, 1, 1, 0))
        # the bank's far tails underflow into float32's subnormal range, where the CPU's matrix product
        # runs several times slower; those weights (< 1.2e-38) are far below the float resolution of
        # the weighted sums, so they are stored as 0
        bank = torch.from_numpy(gaussian_bank()).float()
        self.register_buffer("gauss", torch.threshold(bank, torch.finfo(bank.dtype).tiny, 0.0), persistent=False)

    def branches(self, x):
        """``(se, spatial, range)``: the SE output and both BPA terms after the raw view."""
        f = self.model(x)
        b, c, h, w = f.shape
        if (h, w) != (_GRID, _GRID):
            raise ValueError(f"MEDFE feature equalisation needs {_GRID}x{_GRID} maps, got {h}x{w}")
        flat = f.reshape(b, c, h * w)
        spatial = torch.matmul(self.gauss, flat.transpose(1, 2))  # [b, HW, C]
        s = torch.sigmoid(f)
        s_nb = F.unfold(s, 3, padding=1).view(b, c, 9, h * w)
        f_nb = F.unfold(f, 3, padding=1).view(b, c, 9, h * w)
        logits = (s.reshape(b, c, 1, h * w) * s_nb).mean(1)  # [b, 9, HW]; zero padding -> logit 0
        weights = torch.softmax(logits, dim=1)
        rng = (weights.unsqueeze(1) * f_nb).sum(2).transpose(1, 2)  # [b, HW, C]
        return f, spatial.reshape(b, c, h, w), rng.reshape(b, c, h, w)

    def forward(self, x):
        _, spatial, rng = self.branches(x)
        return self.down(torch.cat([spatial, rng], 1))


class PCConv(nn.Module):
    """The MEDFE core between encoder and decoder (reference ``PCconv``, the ``pc_block`` keys).

    Parameters
    ----------
    ngf : int, optional
        The encoder's base width (default 64, the reference's fixed widths): the skips it takes have
        ``ngf, 2 ngf, 4 ngf, 8 ngf, 8 ngf, 8 ngf`` channels; both branches work at ``4 * ngf`` channels
        and the feature equalisation at ``8 * ngf``. A positive even integer.

    Attributes
    ----------
    base : Base
        The feature equalisation of the fused structure and texture features.
    cov_3, cov_5, cov_7 : torch.nn.Module
        The three stacks of five partial convolutions (3x3, 5x5, 7x7) shared by both branches.
    """

    def __init__(self, ngf: int = 64):
        super().__init__()
        n = _check_ngf(ngf)
        c1, c2, c4, c8 = n, 2 * n, 4 * n, 8 * n  # 64, 128, 256, 512 in the reference
        self.down_128 = _Seq(*_conv_in(c1, c2, 4, 2, 1), *_conv_in(c2, c4, 4, 2, 1))
        self.down_64 = _Seq(*_conv_in(c2, c4, 4, 2, 1))
        self.down_32 = _Seq(*_conv_in(c4, c4, 1, 1, 0))
        self.down_16 = _Seq(*_conv_in(c8, c8, 4, 2, 1, act=False))
        self.down_8 = _Seq(*_conv_in(c8, c8, 4, 2, 1), *_conv_in(c8, c8, 4, 2, 1, act=False))
        self.down_4 = _Seq(*_conv_in(c8, c8, 4, 2, 1), *_conv_in(c8, c8, 4, 2, 1),
                           *_conv_in(c8, c8, 4, 2, 1, act=False))
        self.down = _Seq(*_conv_in(3 * c4, c4, 1, 1, 0))  # 768 -> 256
        self.fuse = _Seq(*_conv_in(c8, c8, 1, 1, 0))
        self.up = ConvUp(c8, c4)
        self.up_128 = ConvUp(c8, c1)
        self.up_64 = ConvUp(c8, c2)
        self.up_32 = ConvUp(c8, c4)
        self.base = Base(c8)
        self.cov_3 = _PCStack(*[PCBActiv(c4, 3) for _ in range(5)])
        self.cov_5 = _PCStack(*[PCBActiv(c4, 5) for _ in range(5)])
        self.cov_7 = _PCStack(*[PCBActiv(c4, 7) for _ in range(5)])

    def forward(self, skips):
        """``skips``: the six encoder outputs; returns the six decoder inputs and ``(ST_fi, DE_fi)``."""
        a = [_lrelu(y) for y in skips]
        size = tuple(skips[2].shape[-2:])
        texture = torch.cat([self.down_128(a[0]), self.down_64(a[1]), self.down_32(a[2])], 1)
        structure = torch.cat([self.up(a[k], size) for k in (3, 4, 5)], 1)
        b = texture.shape[0]
        # both branches share `down` and the partial-conv stacks: run them as one batch (IN is per item)
        both = self.down(torch.cat([texture, structure], 0))
        ones = torch.ones((1,) + tuple(both.shape[1:]), dtype=both.dtype, device=both.device)
        fused = self.down(torch.cat([self.cov_3(both, ones), self.cov_5(both, ones), self.cov_7(both, ones)], 1))
        de_fi, st_fi = fused[:b], fused[b:]
        x = self.base(self.fuse(torch.cat([st_fi, de_fi], 1)))
        out = (
            self.up_128(x, tuple(skips[0].shape[-2:])) + skips[0],
            self.up_64(x, tuple(skips[1].shape[-2:])) + skips[1],
            self.up_32(x, size) + skips[2],
            self.down_16(x) + skips[3],
            self.down_8(x) + skips[4],
            self.down_4(x) + skips[5],
        )
        return out, (st_fi, de_fi)


class InnerCos(nn.Module):
    """Training-only structure/texture supervision head (``loss.0.down_model``); unused at inference.

    Parameters
    ----------
    ngf : int, optional
        The base width (default 64): the head reads the ``4 * ngf`` channels of ``ST_fi``/``DE_fi``.

    Attributes
    ----------
    down_model : torch.nn.Sequential
        Conv1x1 (``4 * ngf`` = 256 -> 3) and tanh.
    """

    def __init__(self, ngf: int = 64):
        super().__init__()
        self.down_model = nn.Sequential(nn.Conv2d(4 * _check_ngf(ngf), 3, 1), nn.Tanh())


class PCBlock(nn.Module):
    """The reference ``PCblock`` (file ``MEDEF.pkl``): ``pc_block`` + the training head ``loss``.

    Parameters
    ----------
    ngf : int, optional
        The base width of :class:`PCConv` and :class:`InnerCos` (default 64).

    Attributes
    ----------
    pc_block : PCConv
        The core.
    loss : torch.nn.Sequential
        The training head (:class:`InnerCos`), kept for the checkpoint's keys.
    """

    def __init__(self, ngf: int = 64):
        super().__init__()
        self.pc_block = PCConv(ngf)
        self.loss = nn.Sequential(InnerCos(ngf))

    def forward(self, skips, mask=None):
        """The six decoder inputs. ``mask`` (the hole mask) is accepted for the reference's signature;
        at this version of the reference it has no influence (its feature mask is always empty)."""
        return self.pc_block(list(skips))[0]


class MEDFE(nn.Module):
    """The whole generator: ``netDE(*netMEDFE(netEN(x)))`` on ``[B, 6, 256, 256]`` inputs.

    Parameters
    ----------
    ngf : int, optional
        The base width of all three parts (default 64: the reference network and its checkpoints). A
        positive even integer; the input side is 256 at every width.

    Attributes
    ----------
    netEN : Encoder
        The encoder, whose state_dict is the official ``EN.pkl``.
    netMEDFE : PCBlock
        The feature equalisation core, ``MEDEF.pkl``.
    netDE : Decoder
        The decoder, ``DE.pkl``.
    size : int
        The input side the network works at (256).
    """

    size = 256

    def __init__(self, ngf: int = 64):
        super().__init__()
        ngf = _check_ngf(ngf)
        self.netEN = Encoder(ngf=ngf)
        self.netMEDFE = PCBlock(ngf)
        self.netDE = Decoder(ngf=ngf)

    def forward(self, enc_input):
        if tuple(enc_input.shape[1:]) != (6, self.size, self.size):
            raise ValueError(f"MEDFE needs input of shape [B, 6, {self.size}, {self.size}], got {list(enc_input.shape)}")
        return self.netDE(*self.netMEDFE(self.netEN(enc_input)))

    @staticmethod
    def make_input(image, hole):
        """The reference network input from ``image`` in [-1, 1] ``[B, 3, H, W]`` and ``hole`` ``[B, 1, H, W]``
        (1 = hole): hole pixels set to :func:`hole_fill_values`, then the valid mask repeated 3 times."""
        fill = torch.tensor(hole_fill_values(), dtype=torch.float32).to(image).view(1, 3, 1, 1)
        hole = hole.to(image.dtype)
        masked = torch.where(hole > 0, fill, image)
        return torch.cat([masked, (1 - hole).expand(-1, 3, -1, -1)], 1)
