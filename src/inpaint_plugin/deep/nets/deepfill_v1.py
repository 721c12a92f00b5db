"""DeepFill v1: "Generative Image Inpainting with Contextual Attention" (Yu et al., CVPR 2018).

Module tree and numerics of the PyTorch port daa233/generative-inpainting-pytorch (commit c6cdaea),
whose ``Generator.state_dict()`` keys (``coarse_generator.<layer>.conv.weight`` ...) this network
reproduces, so that its released checkpoints load unchanged. A coarse encoder-decoder of plain
ELU convolutions predicts a first fill; a refinement network with a dilated-convolution branch
and a contextual-attention branch predicts the final image. Both outputs are clamped to [-1, 1].

Differences to the official TensorFlow graph (kept, since the weights were made with them):
symmetric ``k // 2 * dilation`` zero padding (also for stride 2), even-index downsampling inside
the attention, and the attention mask downsampled by 8 in one step. The attention patch
normalisation is an option (``patch_norm``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._contextual_attention import ContextualAttention, flow_to_color
from ._upconv import interleave_phases, phase_conv

__all__ = ["DeepFillV1"]

#: (name, in, out, kernel, stride, dilation, activation); channel counts in units of cnum/2,
#: "in" = the 5 input channels, "rgb" = 3 output channels; "up" = x2 nearest upsampling.
_COARSE = (
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
    "up",
    ("conv13", 8, 4, 3, 1, 1, "elu"),
    ("conv14", 4, 4, 3, 1, 1, "elu"),
    "up",
    ("conv15", 4, 2, 3, 1, 1, "elu"),
    ("conv16", 2, 1, 3, 1, 1, "elu"),
    ("conv17", 1, "rgb", 3, 1, 1, None),
)
_FINE_CONV = (
    ("conv1", "in", 2, 5, 1, 1, "elu"),
    ("conv2_downsample", 2, 2, 3, 2, 1, "elu"),
    ("conv3", 2, 4, 3, 1, 1, "elu"),
    ("conv4_downsample", 4, 4, 3, 2, 1, "elu"),
    ("conv5", 4, 8, 3, 1, 1, "elu"),
    ("conv6", 8, 8, 3, 1, 1, "elu"),
    ("conv7_atrous", 8, 8, 3, 1, 2, "elu"),
    ("conv8_atrous", 8, 8, 3, 1, 4, "elu"),
    ("conv9_atrous", 8, 8, 3, 1, 8, "elu"),
    ("conv10_atrous", 8, 8, 3, 1, 16, "elu"),
)
_FINE_ATTENTION_IN = (
    ("pmconv1", "in", 2, 5, 1, 1, "elu"),
    ("pmconv2_downsample", 2, 2, 3, 2, 1, "elu"),
    ("pmconv3", 2, 4, 3, 1, 1, "elu"),
    ("pmconv4_downsample", 4, 8, 3, 2, 1, "elu"),
    ("pmconv5", 8, 8, 3, 1, 1, "elu"),
    ("pmconv6", 8, 8, 3, 1, 1, "relu"),
)
_FINE_ATTENTION_OUT = (
    ("pmconv9", 8, 8, 3, 1, 1, "elu"),
    ("pmconv10", 8, 8, 3, 1, 1, "elu"),
)
_FINE_MERGE = (
    ("allconv11", 16, 8, 3, 1, 1, "elu"),
    ("allconv12", 8, 8, 3, 1, 1, "elu"),
    "up",
    ("allconv13", 8, 4, 3, 1, 1, "elu"),
    ("allconv14", 4, 4, 3, 1, 1, "elu"),
    "up",
    ("allconv15", 4, 2, 3, 1, 1, "elu"),
    ("allconv16", 2, 1, 3, 1, 1, "elu"),
    ("allconv17", 1, "rgb", 3, 1, 1, None),
)
_ACTIVATIONS = {"elu": F.elu, "relu": F.relu, None: None}


class _Conv(nn.Module):
    """``Conv2d`` with symmetric zero padding ``k // 2 * dilation``, then an activation."""

    def __init__(self, c_in: int, c_out: int, ksize: int, stride: int, dilation: int, activation):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, ksize, stride, padding=ksize // 2 * dilation, dilation=dilation)
        self.activation = _ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.activation is None else self.activation(x)


def _add_layers(module: nn.Module, table, unit: int, c_in: int = 0) -> list:
    """Add the layers of ``table`` (rows as in ``_COARSE``) to ``module``; return the run order.

    The layers become direct attributes of ``module`` so that the state_dict keys are
    ``<module>.<layer>.conv.weight`` as in the reference; ``None`` in the order is an upsampling.
    """
    order = []
    for row in table:
        if row == "up":
            order.append(None)
            continue
        name, i, o, k, s, d, act = row
        i = c_in if i == "in" else i * unit
        o = 3 if o == "rgb" else o * unit
        module.add_module(name, _Conv(i, o, k, s, d, act))
        order.append(name)
    return order


def _run(module: nn.Module, order: list, x: torch.Tensor) -> torch.Tensor:
    """Apply the layers of ``module`` in ``order`` (from :func:`_add_layers`).

    An upsampling followed by a 3x3 stride-1 layer (every one here) runs as the four phase
    convolutions of :mod:`._upconv` (no upsampled map, 4 instead of 9 taps; same values up to
    float rounding), the activation applied before the phases are interleaved.
    """
    upsample = False
    for name in order:
        if name is None:
            if upsample:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            upsample = True
            continue
        layer = getattr(module, name)
        conv = layer.conv
        if upsample and conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.dilation == (1, 1):
            y = phase_conv(x, conv.weight, conv.bias)
            x = interleave_phases(y if layer.activation is None else layer.activation(y))
        else:
            if upsample:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = layer(x)
        upsample = False
    if upsample:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
    return x


class _CoarseGenerator(nn.Module):
    def __init__(self, unit: int):
        super().__init__()
        self._order = _add_layers(self, _COARSE, unit, 5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        xin = torch.cat([x, torch.ones_like(mask), mask], dim=1)
        return torch.clamp(_run(self, self._order, xin), -1.0, 1.0)


class _FineGenerator(nn.Module):
    def __init__(self, unit: int, attention: ContextualAttention):
        super().__init__()
        self._conv_branch = _add_layers(self, _FINE_CONV, unit, 5)
        self._attention_in = _add_layers(self, _FINE_ATTENTION_IN, unit, 5)
        self.contextual_attention = attention
        self._attention_out = _add_layers(self, _FINE_ATTENTION_OUT, unit)
        self._merge = _add_layers(self, _FINE_MERGE, unit)

    def forward(self, x: torch.Tensor, x_stage1: torch.Tensor, mask: torch.Tensor):
        x1_inpaint = x_stage1 * mask + x * (1.0 - mask)
        xnow = torch.cat([x1_inpaint, torch.ones_like(mask), mask], dim=1)
        hallucinated = _run(self, self._conv_branch, xnow)
        feat = _run(self, self._attention_in, xnow)
        feat, attention = self.contextual_attention(feat, feat, mask)
        feat = _run(self, self._attention_out, feat)
        out = _run(self, self._merge, torch.cat([hallucinated, feat], dim=1))
        return torch.clamp(out, -1.0, 1.0), attention


class DeepFillV1(nn.Module):
    """The DeepFill v1 generator (coarse + refinement network with contextual attention).

    Parameters
    ----------
    cnum : int
        Base channel width (32 in every released model).
    patch_norm : {"sqrt_eps", "max"}
        Normalisation of the attention's matching patches. ``"sqrt_eps"`` (default) divides by
        ``sqrt(sum(w**2 + 1e-4))``, the reference port since 2020-07-11; ``"max"`` divides by
        ``max(||w||, 1e-4)``, the official TensorFlow code and the port before that date, with
        which both released PyTorch weight files were made.
    return_flow : bool
        Also return the attention-flow visualisation (a colour image, computed with NumPy).

    Notes
    -----
    ``forward(x, mask)`` takes ``x`` ``[N, 3, H, W]``, the RGB image in [-1, 1] with holes set to
    0, and ``mask`` ``[N, 1, H, W]`` (1 = hole); H and W must be multiples of 8. It returns
    ``(x_stage1, x_stage2)`` (plus ``offset_flow`` ``[N, 3, H, W]`` in [0, 1] when
    ``return_flow``), whole images in [-1, 1]; composite ``x_stage2 * mask + x * (1 - mask)``.
    The attention uses the mask of batch item 0 for the whole batch.
    """

    def __init__(self, cnum: int = 32, *, patch_norm: str = "sqrt_eps", return_flow: bool = False):
        super().__init__()
        if cnum < 2 or cnum % 2:
            raise ValueError(f"cnum must be an even number >= 2, got {cnum!r}")
        attention = ContextualAttention(
            ksize=3, softmax_scale=10.0, fuse=True, fuse_k=3, resize="even", patch_norm=patch_norm,
            mask_downsample=4, return_attention=True,
        )
        self.return_flow = return_flow
        self.coarse_generator = _CoarseGenerator(cnum // 2)
        self.fine_generator = _FineGenerator(cnum // 2, attention)

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must be [N, 3, H, W], got {tuple(x.shape)}")
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[2:] != x.shape[2:]:
            raise ValueError(f"mask must be [N, 1, H, W] matching x, got {tuple(mask.shape)}")
        if x.shape[2] % 8 or x.shape[3] % 8:
            raise ValueError(f"height and width must be multiples of 8, got {x.shape[2]}x{x.shape[3]}")
        x_stage1 = self.coarse_generator(x, mask)
        x_stage2, attention = self.fine_generator(x, x_stage1, mask)
        if self.return_flow:
            return x_stage1, x_stage2, flow_to_color(attention, 8)
        return x_stage1, x_stage2
