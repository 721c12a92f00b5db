"""x2 nearest upsampling followed by a 3x3 convolution (zero padding 1), without the upsampled map.

After x2 nearest upsampling, output row ``2i`` of a 3x3 convolution reads source rows
``(i-1, i, i)`` and row ``2i+1`` reads ``(i, i, i+1)``; the same holds for columns. So each of the
four output phases (row parity ``a``, column parity ``b``) is a 2x2 convolution of the *source* map
whose taps are sums of the 3x3 taps that land on the same source pixel: 4 instead of 9
multiply-adds per output value, and no upsampled copy. The zero padding of the upsampled map is the
zero padding (by 1) of the source map. The four phases run as one convolution with four times the
output channels; :func:`interleave_phases` puts them back on the fine grid. Equal to
``conv2d(interpolate(x, scale_factor=2, mode="nearest"), weight, bias, padding=1)`` up to float
rounding (used by DeepFill v1 and v2, whose decoders upsample this way). The same holds for any odd
kernel size ``k``: ``k // 2 + 1`` source taps per phase (3 instead of 5 for 5x5). GMCNN's
reflection padding is handled by :func:`upsample2_conv`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["interleave_phases", "phase_conv", "upsample2_conv"]

def _phase_taps(k: int):
    """``(taps [2, m, k], lo)``: for output parity ``a``, kernel tap ``t`` (``-p .. p``, ``p = k // 2``)
    lands on source offset ``floor((a + t) / 2)``; ``taps[a, o - lo[a], t + p] = 1`` with ``m = p + 1``
    source offsets per phase starting at ``lo[a]``."""
    p = k // 2
    lo = [(a - p) // 2 for a in (0, 1)]
    taps = torch.zeros((2, p + 1, k), dtype=torch.float64)
    for a in (0, 1):
        for t in range(-p, p + 1):
            taps[a, (a + t) // 2 - lo[a], t + p] = 1.0
    return taps, lo


def phase_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The four phases of ``conv_kxk(upsample_nearest_x2(x))`` (odd ``k``, zero padding ``k // 2``).

    Parameters
    ----------
    x : torch.Tensor
        The source map, ``[N, C_in, h, w]``.
    weight : torch.Tensor
        ``[C_out, C_in, k, k]``, ``k`` odd.
    bias : torch.Tensor or None
        ``[C_out]``.

    Returns
    -------
    torch.Tensor
        ``[N, 4, C_out, h', w']`` (``h' >= h``): phase ``2 a + b`` holds the outputs at rows ``2 i + a``
        and columns ``2 j + b``, at ``[..., i + s[a], j + s[b]]`` with ``s`` the phase offsets that
        :func:`interleave_phases` uses (0 and 1 for k = 3, 0 and 0 for k = 5).
    """
    n, _, h, w = x.shape
    c_out, k = weight.shape[0], weight.shape[-1]
    taps, lo = _phase_taps(k)
    taps = taps.to(dtype=weight.dtype, device=weight.device)
    m = taps.shape[1]
    kernels = torch.einsum("apk,oikl,bql->aboipq", taps, weight, taps).reshape(4 * c_out, -1, m, m)
    before, after = -lo[0], lo[1] + m - 1
    y = F.conv2d(F.pad(x, (before, after, before, after)), kernels, None if bias is None else bias.repeat(4))
    return y.view(n, 4, c_out, *y.shape[-2:])


def interleave_phases(y: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Put the phases of :func:`phase_conv` back on the fine grid.

    Parameters
    ----------
    y : torch.Tensor
        ``[N, 4, C, h', w']``, the phases from :func:`phase_conv` (possibly after an elementwise
        activation).
    k : int, optional
        The kernel size given to :func:`phase_conv` (default 3); it sets the phase offsets.

    Returns
    -------
    torch.Tensor
        ``[N, C, 2 h, 2 w]``, in channels-last memory format when ``y`` came from a channels-last input.
    """
    _, lo = _phase_taps(k)
    start = (0, lo[1] - lo[0])
    extra = lo[1] - lo[0]
    n, _, c, h1, w1 = y.shape
    h, w = h1 - extra, w1 - extra
    channels_last = y.stride(2) == 1 and c > 1
    if channels_last:
        buf = y.new_empty((n, h, 2, w, 2, c))
    else:
        buf = y.new_empty((n, c, h, 2, w, 2))
    for a in (0, 1):
        for b in (0, 1):
            part = y[:, 2 * a + b, :, start[a]:start[a] + h, start[b]:start[b] + w]
            if channels_last:
                buf[:, :, a, :, b, :] = part.permute(0, 2, 3, 1)
            else:
                buf[:, :, :, a, :, b] = part
    if channels_last:
        return buf.view(n, 2 * h, 2 * w, c).permute(0, 3, 1, 2)
    return buf.view(n, c, 2 * h, 2 * w)


def upsample2_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   padding_mode: str = "zeros") -> torch.Tensor:
    """``conv2d(pad(upsample_nearest_x2(x), k // 2, padding_mode), weight, bias)`` through
    :func:`phase_conv`, for odd ``k``.

    With ``padding_mode="reflect"`` the reflected border of the upsampled map is not the upsampling
    of any padded source map, so the ``k // 2`` outer rows and columns of the result are recomputed
    directly from the upsampled, reflection-padded border strips of ``x`` (small); everything inside
    reads real pixels only and comes from the phases.

    Parameters
    ----------
    x : torch.Tensor
        The source map, ``[N, C_in, h, w]`` with ``h, w > k // 2``.
    weight : torch.Tensor
        ``[C_out, C_in, k, k]``, ``k`` odd.
    bias : torch.Tensor or None
        ``[C_out]``.
    padding_mode : {"zeros", "reflect"}, optional
        The padding of the upsampled map (default ``"zeros"``).

    Returns
    -------
    torch.Tensor
        ``[N, C_out, 2 h, 2 w]`` (channels-last when ``x`` is).

    Raises
    ------
    ValueError
        If ``padding_mode`` is not one of the two.
    """
    if padding_mode not in ("zeros", "reflect"):
        raise ValueError(f"padding_mode must be 'zeros' or 'reflect', got {padding_mode!r}")
    k = weight.shape[-1]
    out = interleave_phases(phase_conv(x, weight, bias), k)
    p = k // 2
    if padding_mode == "zeros" or p == 0:
        return out

    def strip(src):
        u = F.interpolate(src, scale_factor=2, mode="nearest")
        return F.pad(u, (p, p, p, p), mode="reflect")

    def direct(padded):
        return F.conv2d(padded, weight, bias)

    out[..., :p, :] = direct(strip(x[..., :p + 1, :])[..., :3 * p, :])
    out[..., -p:, :] = direct(strip(x[..., -(p + 1):, :])[..., -3 * p:, :])
    out[..., :, :p] = direct(strip(x[..., :, :p + 1])[..., :, :3 * p])
    out[..., :, -p:] = direct(strip(x[..., :, -(p + 1):])[..., :, -3 * p:])
    return out
