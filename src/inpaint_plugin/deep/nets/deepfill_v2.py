"""DeepFill v2: "Free-Form Image Inpainting with Gated Convolution" (Yu et al., ICCV 2019).

Module tree and numerics of ``model/networks_tf.py`` of nipponjo/deepfillv2-pytorch (commit
4899fd3), the port that loads the weights converted from the official TensorFlow checkpoints
(``states_tf_places2.pth``, ``states_tf_celebahq.pth``; generator state_dict under ``'G'``, keys
like ``conv1.conv.weight``). Every layer except the two RGB outputs is a gated convolution
(``act(features) * sigmoid(gate)``, features and gate are the two halves of the output channels)
with TensorFlow "SAME" zero padding. A coarse network predicts a first fill (``tanh``); the
refinement network runs a dilated-convolution branch and a contextual-attention branch on the
pasted result and merges them.

Differences to the official graph (kept, since they define the reference): the attention does
not fuse scores by default (``fuse=True`` gives the official behaviour) and its mask is
downsampled by 8 in one step.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._contextual_attention import ContextualAttention
from ._upconv import interleave_phases, phase_conv

__all__ = ["DeepFillV2"]

#: (name, in, out, kernel, stride, dilation, activation); channel counts are in units of cnum/4
#: (output counts are after gating), "in" = the input channels, "rgb" = a plain 3-channel conv;
#: "up" marks a layer preceded by x2 nearest upsampling (state_dict key ``<name>.conv.conv.*``).
_STAGE1 = (
    ("conv1", "in", 2, 5, 1, 1, "elu"),
    ("conv2_downsample", 2, 4, 3, 2, 1, "elu"),
    ("conv3", 4, 4, 3, 1, 1, "elu"),
    ("conv4_downsample", 4, 8, 3, 2, 1, "elu"),
    ("conv5", 8, 8, 3, 1, 1, "elu"),
    ("conv6", 8, 8, 3, 1, 1, "elu"),
    ("conv7_atrous", 8, 8, 3, 1, 2, "elu"),
    ("conv8_atrous", 8, 8, 3, 1, 4, "elu"),
    ("conv9_atrous", 8, 8, 3, 1, 8, "elu"),
    ("conv10_atrous", 8, 8, 3, 1, 16, "elu"),
    ("conv11", 8, 8, 3, 1, 1, "elu"),
    ("conv12", 8, 8, 3, 1, 1, "elu"),
    ("conv13_upsample", 8, 4, 3, 1, 1, "up"),
    ("conv14", 4, 4, 3, 1, 1, "elu"),
    ("conv15_upsample", 4, 2, 3, 1, 1, "up"),
    ("conv16", 2, 1, 3, 1, 1, "elu"),
    ("conv17", 1, "rgb", 3, 1, 1, None),
)
_HALLUCINATION = (
    ("xconv1", "in", 2, 5, 1, 1, "elu"),
    ("xconv2_downsample", 2, 2, 3, 2, 1, "elu"),
    ("xconv3", 2, 4, 3, 1, 1, "elu"),
    ("xconv4_downsample", 4, 4, 3, 2, 1, "elu"),
    ("xconv5", 4, 8, 3, 1, 1, "elu"),
    ("xconv6", 8, 8, 3, 1, 1, "elu"),
    ("xconv7_atrous", 8, 8, 3, 1, 2, "elu"),
    ("xconv8_atrous", 8, 8, 3, 1, 4, "elu"),
    ("xconv9_atrous", 8, 8, 3, 1, 8, "elu"),
    ("xconv10_atrous", 8, 8, 3, 1, 16, "elu"),
)
_ATTENTION_IN = (
    ("pmconv1", "in", 2, 5, 1, 1, "elu"),
    ("pmconv2_downsample", 2, 2, 3, 2, 1, "elu"),
    ("pmconv3", 2, 4, 3, 1, 1, "elu"),
    ("pmconv4_downsample", 4, 8, 3, 2, 1, "elu"),
    ("pmconv5", 8, 8, 3, 1, 1, "elu"),
    ("pmconv6", 8, 8, 3, 1, 1, "relu"),
)
_ATTENTION_OUT = (
    ("pmconv9", 8, 8, 3, 1, 1, "elu"),
    ("pmconv10", 8, 8, 3, 1, 1, "elu"),
)
_MERGE = (
    ("allconv11", 16, 8, 3, 1, 1, "elu"),
    ("allconv12", 8, 8, 3, 1, 1, "elu"),
    ("allconv13_upsample", 8, 4, 3, 1, 1, "up"),
    ("allconv14", 4, 4, 3, 1, 1, "elu"),
    ("allconv15_upsample", 4, 2, 3, 1, 1, "up"),
    ("allconv16", 2, 1, 3, 1, 1, "elu"),
    ("allconv17", 1, "rgb", 3, 1, 1, None),
)
_ACTIVATIONS = {"elu": F.elu, "relu": F.relu}


def _same_pad(x: torch.Tensor, ksize: int, stride: int, dilation: int) -> torch.Tensor:
    """Zero-pad the last two axes like TensorFlow's "SAME" (the extra row/column at the end)."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        out = -(-size // stride)
        total = max((out - 1) * stride + (ksize - 1) * dilation + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class _GatedConv(nn.Module):
    """Gated convolution with TF "SAME" padding; a plain convolution when ``activation`` is None."""

    def __init__(self, c_in: int, c_out: int, ksize: int, stride: int, dilation: int, activation):
        super().__init__()
        self.gated = activation is not None
        # with stride 1 "SAME" pads (ksize - 1) * dilation / 2 on every side: the convolution's own
        # zero padding does it without copying the input (stride 2 pads one more row/column at the end)
        self.own_pad = stride == 1 and ksize % 2 == 1
        pad = (ksize - 1) * dilation // 2 if self.own_pad else 0
        self.conv = nn.Conv2d(c_in, 2 * c_out if self.gated else c_out, ksize, stride, padding=pad, dilation=dilation)
        self.activation = _ACTIVATIONS.get(activation)
        self.c_out = c_out
        self.ksize, self.stride, self.dilation = ksize, stride, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        if self.own_pad and conv.dilation[0] >= 8 and not torch.is_grad_enabled():
            # oneDNN's CPU convolution with a large dilation (and padding) is much faster in
            # channels-last memory format; the result is converted back (same values)
            x = conv(x.contiguous(memory_format=torch.channels_last)).contiguous()
        else:
            x = conv(x if self.own_pad else _same_pad(x, self.ksize, self.stride, self.dilation))
        if not self.gated:
            return x
        return _gate(x, self.c_out, self.activation, dim=1)


def _gate(x: torch.Tensor, c_out: int, activation, dim: int) -> torch.Tensor:
    """``activation(features) * sigmoid(gate)``, the two halves of ``x`` along ``dim`` (in place on
    ``x`` when autograd is off)."""
    features, gate = torch.split(x, c_out, dim=dim)
    if torch.is_grad_enabled():
        return activation(features) * torch.sigmoid(gate)
    return activation(features, inplace=True).mul_(gate.sigmoid_())


class _UpGatedConv(nn.Module):
    """x2 nearest upsampling followed by a gated 3x3 convolution (zero "SAME" padding).

    Computed without building the upsampled map (:mod:`._upconv`: four 2x2 phase convolutions of
    the source map, 4 instead of 9 multiply-adds per output value); gating runs on the phases,
    before they are interleaved. Same values as upsample-then-convolve up to float rounding.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = _GatedConv(c_in, c_out, 3, 1, 1, "elu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv.conv
        y = phase_conv(x, conv.weight, conv.bias)
        return interleave_phases(_gate(y, self.conv.c_out, self.conv.activation, dim=2))


class DeepFillV2(nn.Module):
    """The DeepFill v2 generator (gated convolutions, two stages, contextual attention).

    Parameters
    ----------
    cnum : int
        Base width (48 in the released models); layer widths are multiples of ``cnum // 4``.
    fuse : bool
        Fuse the attention scores as in the official TensorFlow graph. The reference port (and
        the default here) does not.

    Notes
    -----
    ``forward(x, mask)`` takes ``x`` ``[N, 5, H, W]`` = ``cat([image * (1 - mask), ones, mask])``
    with the RGB image in [-1, 1] (holes at 0) and ``mask`` ``[N, 1, H, W]`` (1 = hole); H and W
    must be multiples of 8. It returns ``(x_stage1, x_stage2)``, whole images in (-1, 1);
    composite ``image * (1 - mask) + x_stage2 * mask``. The attention uses the mask of batch
    item 0 for the whole batch.
    """

    def __init__(self, cnum: int = 48, *, fuse: bool = False):
        super().__init__()
        if cnum < 4 or cnum % 4:
            raise ValueError(f"cnum must be a multiple of 4, got {cnum!r}")
        unit = cnum // 4
        self._stage1 = self._add_layers(_STAGE1, unit, 5)
        self._hallucination = self._add_layers(_HALLUCINATION, unit, 3)
        self._attention_in = self._add_layers(_ATTENTION_IN, unit, 3)
        self.contextual_attention = ContextualAttention(
            ksize=3, softmax_scale=10.0, fuse=fuse, fuse_k=3, resize="align_corners", patch_norm="max",
            mask_downsample=4,
        )
        self._attention_out = self._add_layers(_ATTENTION_OUT, unit)
        self._merge = self._add_layers(_MERGE, unit)

    def _add_layers(self, table, unit: int, c_in: int = 0) -> list:
        """Add the layers of ``table`` as attributes (reference key names); return their names."""
        names = []
        for name, i, o, k, s, d, act in table:
            i = c_in if i == "in" else i * unit
            o = 3 if o == "rgb" else o * unit
            layer = _UpGatedConv(i, o) if act == "up" else _GatedConv(i, o, k, s, d, act)
            self.add_module(name, layer)
            names.append(name)
        return names

    def _run(self, names: list, x: torch.Tensor) -> torch.Tensor:
        for name in names:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        if x.ndim != 4 or x.shape[1] != 5:
            raise ValueError(f"x must be [N, 5, H, W], got {tuple(x.shape)}")
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[2:] != x.shape[2:]:
            raise ValueError(f"mask must be [N, 1, H, W] matching x, got {tuple(mask.shape)}")
        if x.shape[2] % 8 or x.shape[3] % 8:
            raise ValueError(f"height and width must be multiples of 8, got {x.shape[2]}x{x.shape[3]}")
        x_stage1 = torch.tanh(self._run(self._stage1, x))
        xnow = x_stage1 * mask + x[:, :3] * (1.0 - mask)
        hallucinated = self._run(self._hallucination, xnow)
        feat = self._run(self._attention_in, xnow)
        feat = self.contextual_attention(feat, feat, mask)
        feat = self._run(self._attention_out, feat)
        x_stage2 = torch.tanh(self._run(self._merge, torch.cat([hallucinated, feat], dim=1)))
        return x_stage1, x_stage2
