"""Contextual attention (Yu et al., CVPR 2018), shared by DeepFill v1 and v2.

The layer fills the hole region of a feature map ``f`` with patches borrowed from the known
region of a background feature map ``b`` (both are the same tensor in DeepFill):

1. ``b`` is cut into 4x4 patches with stride 2 (zero padding 1): one patch per pixel of the
   half-resolution grid; these are pasted back at the end;
2. ``f`` and ``b`` are nearest-downsampled by 2; every 3x3 patch of the downsampled ``b``
   (zero padding 1) is L2-normalised and correlated with the downsampled ``f``, giving a score
   for every (background patch, foreground position) pair;
3. optionally ("fuse") the scores are smoothed along the diagonals of the score matrix, once in
   row-major and once in column-major order, which favours coherent groups of patches;
4. background patches that touch the hole (mask downsampled to the same grid, 3x3 window) are
   invalid: ``p = softmax(scale * scores * valid) * valid`` over the background patches;
5. the output is the attention-weighted sum of the 4x4 patches, pasted with a transposed
   convolution of stride 2 and divided by 4 (the number of overlapping patches per pixel).

Two details differ between the public ports and are options here:

- ``resize``: ``"even"`` takes rows/columns 0, 2, 4, ... (``F.interpolate`` nearest with a scale
  factor, daa233 port of v1); ``"align_corners"`` uses TensorFlow's nearest rule with
  ``align_corners=True``, ``src = floor(i * (n_in - 1) / (n_out - 1) + 0.5)`` (official TF graph
  and the nipponjo port of v2). The same rule downsamples the mask, once, by ``4 * 2``.
- ``patch_norm``: ``"sqrt_eps"`` divides each patch by ``sqrt(sum(w**2 + 1e-4))`` (daa233 since
  2020-07-11); ``"max"`` divides by ``max(||w||, 1e-4)`` (official TF, nipponjo, daa233 before).

Only the mask of batch item 0 is used (as in every reference); run batches with one shared mask.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ContextualAttention", "contextual_attention", "flow_to_color"]

_RESIZE = ("even", "align_corners")
_NORMS = ("sqrt_eps", "max")
#: the fixed dilation of the matching grid (background patches are 2*RATE wide, stride RATE)
RATE = 2


def _nearest_indices(n_in: int, n_out: int, mode: str) -> torch.Tensor:
    """Source indices of a nearest-neighbour downsampling from ``n_in`` to ``n_out`` samples."""
    i = torch.arange(n_out)
    if mode == "even" or n_out == 1:
        return i * (n_in // n_out)
    # floor(i * (n_in - 1) / (n_out - 1) + 0.5) in exact integer arithmetic
    return (2 * i * (n_in - 1) + (n_out - 1)) // (2 * (n_out - 1))


def _downsample(x: torch.Tensor, factor: int, mode: str) -> torch.Tensor:
    """Nearest-neighbour downsampling of the last two axes by an integer ``factor``."""
    h, w = x.shape[-2:]
    rows = _nearest_indices(h, h // factor, mode).to(x.device)
    cols = _nearest_indices(w, w // factor, mode).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _diagonal_sum(s: torch.Tensor, k: int) -> torch.Tensor:
    """Sum of ``s[l + d, p + d]`` for ``d`` in ``-(k//2) .. k - 1 - k//2``, zero outside.

    Equal to a 2-D correlation of the matrix ``s`` with a ``k x k`` identity kernel ("SAME"
    zero padding).
    """
    lo = k // 2
    hi = k - 1 - lo
    padded = F.pad(s, (lo, hi, lo, hi))
    n_l, n_p = s.shape
    out = padded[0:n_l, 0:n_p].clone()
    for d in range(1, k):
        out += padded[d : d + n_l, d : d + n_p]
    return out


def _fuse(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The official score fusion: diagonal sums in (row, col) order, then in (col, row) order.

    ``scores`` has shape ``[hb, wb, hf, wf]`` (background patch, foreground position).
    """
    hb, wb, hf, wf = scores.shape
    s = _diagonal_sum(scores.reshape(hb * wb, hf * wf), k)
    s = s.reshape(hb, wb, hf, wf).permute(1, 0, 3, 2).reshape(wb * hb, wf * hf)
    s = _diagonal_sum(s, k)
    return s.reshape(wb, hb, wf, hf).permute(1, 0, 3, 2)


def contextual_attention(
    f: torch.Tensor,
    b: torch.Tensor,
    mask: torch.Tensor,
    *,
    ksize: int = 3,
    softmax_scale: float = 10.0,
    fuse: bool = False,
    fuse_k: int = 3,
    resize: str = "align_corners",
    patch_norm: str = "max",
    mask_downsample: int = 4,
    return_attention: bool = False,
):
    """Fill ``f`` with attention-weighted patches of ``b`` (see the module docstring).

    Parameters
    ----------
    f, b : torch.Tensor
        Foreground and background features, ``[N, C, h, w]`` with the same shape and ``h``, ``w``
        even.
    mask : torch.Tensor
        Hole mask ``[N, 1, H, W]`` (non-zero = hole) at ``mask_downsample`` times the feature
        resolution. Only item 0 is used.
    ksize : int
        Size of the matching patches (on the half-resolution grid).
    softmax_scale : float
        Multiplies the cosine similarities before the softmax.
    fuse : bool
        Smooth the scores along the diagonals of the score matrix (official TF behaviour).
    fuse_k : int
        Length of the fusion diagonals.
    resize : {"align_corners", "even"}
        Nearest-neighbour rule of the downsamplings.
    patch_norm : {"max", "sqrt_eps"}
        Normalisation of the matching patches.
    mask_downsample : int
        ``H / h``; the mask is downsampled once by ``mask_downsample * 2``.
    return_attention : bool
        Also return the attention ``[N, L, h/2, w/2]`` (``L`` background patches, row-major).

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        The output ``[N, C, h, w]``, and the attention when ``return_attention``.
    """
    if f.shape != b.shape or f.ndim != 4:
        raise ValueError(f"f and b must have the same [N, C, h, w] shape, got {tuple(f.shape)} and {tuple(b.shape)}")
    if resize not in _RESIZE:
        raise ValueError(f"resize must be one of {_RESIZE}, got {resize!r}")
    if patch_norm not in _NORMS:
        raise ValueError(f"patch_norm must be one of {_NORMS}, got {patch_norm!r}")
    n, c, h, w = b.shape
    if h % RATE or w % RATE:
        raise ValueError(f"feature height and width must be multiples of {RATE}, got {h}x{w}")
    hs, ws = h // RATE, w // RATE
    if mask.ndim != 4 or tuple(mask.shape[-2:]) != (h * mask_downsample, w * mask_downsample):
        raise ValueError(
            f"mask must be [N, 1, {h * mask_downsample}, {w * mask_downsample}] for features of size {h}x{w}, "
            f"got {tuple(mask.shape)}"
        )

    # 1. 4x4 patches of b with stride 2 for pasting: [N, L, C, 4, 4]
    k_raw = 2 * RATE
    raw = F.unfold(b, kernel_size=k_raw, stride=RATE, padding=RATE // 2)
    raw = raw.view(n, c, k_raw, k_raw, hs * ws).permute(0, 4, 1, 2, 3)

    # 2. matching on the half-resolution grid
    f_s = _downsample(f, RATE, resize)
    b_s = _downsample(b, RATE, resize)
    pad = ksize // 2
    patches = F.unfold(b_s, kernel_size=ksize, padding=pad)
    patches = patches.view(n, c, ksize, ksize, hs * ws).permute(0, 4, 1, 2, 3)

    # 4. valid background patches: no hole pixel in their (zero-padded) ksize x ksize window
    m = _downsample(mask[:1], mask_downsample * RATE, resize)
    touched = F.max_pool2d((m != 0).to(f.dtype), ksize, stride=1, padding=pad)
    valid = (touched == 0).to(f.dtype).view(1, hs * ws, 1, 1)

    outputs, attentions = [], []
    for i in range(n):
        wi = patches[i]
        if patch_norm == "max":
            norm = wi.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-4)
        else:
            norm = (wi.pow(2) + 1e-4).sum(dim=(1, 2, 3), keepdim=True).sqrt()
        scores = F.conv2d(f_s[i : i + 1], wi / norm, padding=pad)  # [1, L, hs, ws]
        if fuse:
            scores = _fuse(scores.view(hs, ws, hs, ws), fuse_k).reshape(1, hs * ws, hs, ws)
        scores = scores * valid
        attn = F.softmax(scores * softmax_scale, dim=1) * valid
        # 5. paste the 4x4 patches; each output pixel is covered by 4 of them
        outputs.append(F.conv_transpose2d(attn, raw[i], stride=RATE, padding=RATE // 2) / 4.0)
        attentions.append(attn)
    out = torch.cat(outputs, dim=0)
    if return_attention:
        return out, torch.cat(attentions, dim=0)
    return out


def _color_wheel() -> np.ndarray:
    """The Middlebury optical-flow colour wheel, ``[55, 3]`` in 0..255."""
    segments = ((15, (255, 0, 0), (255, 255, 0)),  # red -> yellow
                (6, (255, 255, 0), (0, 255, 0)),  # yellow -> green
                (4, (0, 255, 0), (0, 255, 255)),  # green -> cyan
                (11, (0, 255, 255), (0, 0, 255)),  # cyan -> blue
                (13, (0, 0, 255), (255, 0, 255)),  # blue -> magenta
                (6, (255, 0, 255), (255, 0, 0)))  # magenta -> red
    rows = []
    for count, start, end in segments:
        ramp = np.floor(255 * np.arange(count) / count)
        seg = np.empty((count, 3))
        for ch in range(3):
            if start[ch] == end[ch]:
                seg[:, ch] = start[ch]
            elif end[ch] > start[ch]:
                seg[:, ch] = ramp
            else:
                seg[:, ch] = 255 - ramp
        rows.append(seg)
    return np.concatenate(rows)


def flow_to_color(attention: torch.Tensor, upsample: int) -> torch.Tensor:
    """Colour image of where each position takes its patch from (argmax of the attention).

    The displacement (rows, cols) of the best background patch is normalised by the largest
    displacement in the batch and coded with the Middlebury colour wheel (hue = direction,
    saturation = length), then nearest-upsampled by ``upsample``.

    Parameters
    ----------
    attention : torch.Tensor
        ``[N, L, h, w]`` from :func:`contextual_attention` with ``return_attention=True``.
    upsample : int
        Integer upsampling factor of the returned image.

    Returns
    -------
    torch.Tensor
        ``[N, 3, h * upsample, w * upsample]`` float32 in [0, 1] (multiples of 1/255).
    """
    n, _, h, w = attention.shape
    best = attention.argmax(dim=1).cpu().numpy()  # [N, h, w]
    dy = (best // w - np.arange(h)[:, None]).astype(np.float64)
    dx = (best % w - np.arange(w)[None, :]).astype(np.float64)
    radius = np.sqrt(dy**2 + dx**2)
    scale = radius.max() + np.finfo(np.float64).eps
    u, v = dy / scale, dx / scale
    rad = np.sqrt(u**2 + v**2)
    wheel = _color_wheel() / 255
    ncols = wheel.shape[0]
    # 1-based wheel position, kept in this form so that the rounding matches the references
    fk = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (ncols - 1) + 1
    k0 = np.floor(fk).astype(np.int64)
    frac = (fk - k0)[..., None]
    col = (1 - frac) * wheel[k0 - 1] + frac * wheel[k0 % ncols]
    inside = (rad <= 1)[..., None]
    col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    img = np.floor(255 * col).astype(np.uint8).astype(np.float32) / np.float32(255)
    out = torch.from_numpy(img).permute(0, 3, 1, 2).to(attention.device)
    return F.interpolate(out, scale_factor=upsample, mode="nearest")


class ContextualAttention(nn.Module):
    """:func:`contextual_attention` as a module (no weights); see there for the parameters.

    ``forward(f, b, mask)`` returns the output, or ``(output, attention)`` when built with
    ``return_attention=True``.
    """

    def __init__(
        self,
        *,
        ksize: int = 3,
        softmax_scale: float = 10.0,
        fuse: bool = False,
        fuse_k: int = 3,
        resize: str = "align_corners",
        patch_norm: str = "max",
        mask_downsample: int = 4,
        return_attention: bool = False,
    ):
        super().__init__()
        if resize not in _RESIZE:
            raise ValueError(f"resize must be one of {_RESIZE}, got {resize!r}")
        if patch_norm not in _NORMS:
            raise ValueError(f"patch_norm must be one of {_NORMS}, got {patch_norm!r}")
        self.ksize = ksize
        self.softmax_scale = softmax_scale
        self.fuse = fuse
        self.fuse_k = fuse_k
        self.resize = resize
        self.patch_norm = patch_norm
        self.mask_downsample = mask_downsample
        self.return_attention = return_attention

    def forward(self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor):
        return contextual_attention(
            f, b, mask, ksize=self.ksize, softmax_scale=self.softmax_scale, fuse=self.fuse,
            fuse_k=self.fuse_k, resize=self.resize, patch_norm=self.patch_norm,
            mask_downsample=self.mask_downsample, return_attention=self.return_attention,
        )

    def extra_repr(self) -> str:
        return (f"ksize={self.ksize}, softmax_scale={self.softmax_scale}, fuse={self.fuse}, "
                f"resize={self.resize!r}, patch_norm={self.patch_norm!r}")
