"""x2 nearest upsampling followed by a 3x3 convolution (zero padding 1), without the upsampled map.

After x2 nearest upsampling, output row ``2i`` of a 3x3 convolution reads source rows
``(i-1, i, i)`` and row ``2i+1`` reads ``(i, i, i+1)``; the same holds for columns. So each of the
four output phases (row parity ``a``, column parity ``b``) is a 2x2 convolution of the *source* map
whose taps are sums of the 3x3 taps that land on the same source pixel: 4 instead of 9
multiply-adds per output value, and no upsampled copy. The zero padding of the upsampled map is the
zero padding (by 1) of the source map. The four phases run as one convolution with four times the
output channels; :func:`interleave_phases` puts them back on the fine grid. Equal to
``conv2d(interpolate(x, scale_factor=2, mode="nearest"), weight, bias, padding=1)`` up to float
rounding (used by DeepFill v1 and v2, whose decoders upsample this way).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["interleave_phases", "phase_conv"]

#: [phase, source tap, kernel tap]: phase 0 reads (i-1, i) with taps (w0, w1 + w2), phase 1 reads
#: (i, i+1) with taps (w0 + w1, w2)
_PHASE_TAPS = ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def phase_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The four phases of ``conv3x3(upsample_nearest_x2(x))``, each one pixel larger than ``x``.

    Parameters
    ----------
    x : torch.Tensor
        The source map, ``[N, C_in, h, w]``.
    weight : torch.Tensor
        ``[C_out, C_in, 3, 3]``.
    bias : torch.Tensor or None
        ``[C_out]``.

    Returns
    -------
    torch.Tensor
        ``[N, 4, C_out, h + 1, w + 1]``: phase ``2 a + b`` holds the outputs at rows ``2 i + a`` and
        columns ``2 j + b`` at ``[..., i + a, j + b]`` (see :func:`interleave_phases`).
    """
    n, _, h, w = x.shape
    c_out = weight.shape[0]
    taps = torch.tensor(_PHASE_TAPS, dtype=weight.dtype, device=weight.device)
    kernels = torch.einsum("apk,oikl,bql->aboipq", taps, weight, taps).reshape(4 * c_out, -1, 2, 2)
    y = F.conv2d(F.pad(x, (1, 1, 1, 1)), kernels, None if bias is None else bias.repeat(4))
    return y.view(n, 4, c_out, h + 1, w + 1)


def interleave_phases(y: torch.Tensor) -> torch.Tensor:
    """``[N, 4, C, h + 1, w + 1]`` phases (from :func:`phase_conv`) -> the ``[N, C, 2 h, 2 w]`` map."""
    n, _, c, h1, w1 = y.shape
    h, w = h1 - 1, w1 - 1
    out = y.new_empty((n, c, h, 2, w, 2))
    for a in (0, 1):
        for b in (0, 1):
            out[:, :, :, a, :, b] = y[:, 2 * a + b, :, a:a + h, b:b + w]
    return out.view(n, c, 2 * h, 2 * w)
