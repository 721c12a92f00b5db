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

Only the mask of batch item 0 is used (as in every reference) unless ``per_item_mask=True``.

Memory: the score matrix has (hw/4)**2 elements for ``h x w`` features (1 GiB at a 1024**2 image in
DeepFill, 16 GiB at 2048**2); above ``max_scores`` elements it is computed in chunks of foreground
positions (the softmax is per position, the fusion reads a few neighbours), so memory stays bounded.
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
#: default bound on the score-matrix elements held at once (``max_scores``): 64 MiB in float32
MAX_SCORES = 2**24


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


def _flush_subnormal(attn: torch.Tensor) -> torch.Tensor:
    """``attn`` with its subnormal values (below the smallest normal float) set to 0.

    With fused scores (sums of several scaled similarities) most softmax weights underflow into the
    subnormal range, and the CPU's matrix product runs many times slower on subnormal operands
    (about 10x for DeepFill v1 at 256**2). Each weight multiplies a feature value, and a row of weights
    sums to 1 or 0, so these terms are far below the float resolution of the pasted values: setting
    them to 0 leaves the output as it is.
    """
    return torch.threshold(attn, torch.finfo(attn.dtype).tiny, 0.0)


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
    per_item_mask: bool = False,
    max_scores: int | None = None,
):
    """Fill ``f`` with attention-weighted patches of ``b`` (see the module docstring).

    Parameters
    ----------
    f, b : torch.Tensor
        Foreground and background features, ``[N, C, h, w]`` with the same shape and ``h``, ``w``
        even.
    mask : torch.Tensor
        Hole mask ``[N, 1, H, W]`` (non-zero = hole) at ``mask_downsample`` times the feature
        resolution. Only item 0 is used unless ``per_item_mask``.
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
        This is the whole score matrix: its memory grows with the square of the pixel count.
    per_item_mask : bool
        Use each batch item's own mask (the references use item 0's for the whole batch), so
        that windows with different holes can run as one batch.
    max_scores : int or None
        Most elements of the score matrix (background patches x foreground positions) held at
        once; ``None`` = 2**24 (64 MiB in float32). When the whole matrix is larger, the
        foreground positions are processed in chunks (with the neighbours the fusion reads), so
        memory stays bounded at any size; the result equals the one-piece computation within
        float rounding.

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
    if max_scores is not None and (isinstance(max_scores, bool) or int(max_scores) < 1):
        raise ValueError(f"max_scores must be a positive integer or None, got {max_scores!r}")
    max_scores = MAX_SCORES if max_scores is None else int(max_scores)
    n, c, h, w = b.shape
    if h % RATE or w % RATE:
        raise ValueError(f"feature height and width must be multiples of {RATE}, got {h}x{w}")
    hs, ws = h // RATE, w // RATE
    if mask.ndim != 4 or tuple(mask.shape[-2:]) != (h * mask_downsample, w * mask_downsample):
        raise ValueError(
            f"mask must be [N, 1, {h * mask_downsample}, {w * mask_downsample}] for features of size {h}x{w}, "
            f"got {tuple(mask.shape)}"
        )
    if per_item_mask and mask.shape[0] != n:
        raise ValueError(f"per_item_mask needs one mask per batch item: got {mask.shape[0]} masks for {n} items")

    # 1. 4x4 patches of b with stride 2 for pasting, as columns: [N, C * 4 * 4, L]
    k_raw = 2 * RATE
    raw = F.unfold(b, kernel_size=k_raw, stride=RATE, padding=RATE // 2)

    # 2. matching on the half-resolution grid
    f_s = _downsample(f, RATE, resize)
    b_s = _downsample(b, RATE, resize)
    pad = ksize // 2
    patches = F.unfold(b_s, kernel_size=ksize, padding=pad)
    patches = patches.view(n, c, ksize, ksize, hs * ws).permute(0, 4, 1, 2, 3)

    # 4. valid background patches: no hole pixel in their (zero-padded) ksize x ksize window
    m = _downsample(mask if per_item_mask else mask[:1], mask_downsample * RATE, resize)
    touched = F.max_pool2d((m != 0).to(f.dtype), ksize, stride=1, padding=pad)
    valid_all = (touched == 0).to(f.dtype).view(-1, hs * ws, 1, 1)

    outputs, attentions = [], []
    whole = (hs * ws) ** 2 <= max_scores
    for i in range(n):
        valid = valid_all[i if per_item_mask else 0][None]
        wi = patches[i]
        if patch_norm == "max":
            norm = wi.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-4)
        else:
            norm = (wi.pow(2) + 1e-4).sum(dim=(1, 2, 3), keepdim=True).sqrt()
        if not whole:
            out, attn = _chunked(f_s[i], wi / norm, raw[i], valid.view(-1, 1), (h, w), ksize, softmax_scale,
                                 fuse, fuse_k, max_scores, return_attention)
            outputs.append(out)
            attentions.append(attn)
            continue
        if not fuse:
            out, attn = _valid_only(f_s[i : i + 1], wi, norm, raw[i], valid.flatten() != 0, (h, w), ksize,
                                    softmax_scale, return_attention)
            outputs.append(out)
            attentions.append(attn)
            continue
        scores = F.conv2d(f_s[i : i + 1], wi / norm, padding=pad)  # [1, L, hs, ws]
        if fuse:
            scores = _fuse(scores.view(hs, ws, hs, ws), fuse_k).reshape(1, hs * ws, hs, ws)
        scores = scores * valid
        attn = _flush_subnormal(F.softmax(scores * softmax_scale, dim=1) * valid)
        # 5. paste the 4x4 patches; each output pixel is covered by 4 of them. This is the transposed
        # convolution of the attention with the patches as weights, written as one matrix product and a
        # fold (col2im), which reads the unfolded patches as they are (no copy into a weight tensor)
        cols = raw[i] @ attn.view(hs * ws, hs * ws)
        outputs.append(F.fold(cols[None], output_size=(h, w), kernel_size=k_raw, stride=RATE,
                              padding=RATE // 2) / 4.0)
        attentions.append(attn)
    out = torch.cat(outputs, dim=0)
    if return_attention:
        return out, torch.cat(attentions, dim=0)
    return out


def _valid_only(f_s, w, norm, raw, valid, size, ksize, softmax_scale, return_attention):
    """One batch item of the unfused one-piece path, with the valid background patches only.

    The same sums as ``softmax(scale * conv(f_s, w / norm) * valid) * valid`` pasted by the
    transposed convolution: the invalid patches' scores are 0 before the softmax, so they only add
    ``n_invalid * exp(0)`` to each position's normaliser and nothing to the paste. The scores are one
    matrix product with the positions as rows (a contiguous softmax), the scale folded into the
    patches.

    ``f_s`` ``[1, C, hs, ws]``, ``w`` ``[L, C, k, k]`` matching patches, ``norm`` ``[L, 1, 1, 1]``,
    ``raw`` ``[C * 4 * 4, L]`` pasting patches, ``valid`` ``[L]`` bool. Returns
    ``(out [1, C, h, w], attention [1, L, hs, ws] or None)``.
    """
    _, c, hs, ws = f_s.shape
    n_pos = hs * ws
    h, w_out = size
    keep = torch.nonzero(valid).flatten()
    n_invalid = valid.numel() - keep.numel()
    queries = F.unfold(f_s, ksize, padding=ksize // 2)[0]  # [C k k, positions]
    wv = w[keep].reshape(keep.numel(), w[0].numel()) * (softmax_scale / norm[keep].view(-1, 1))
    scores = queries.t() @ wv.t()  # [positions, valid patches], scaled
    top = scores.amax(dim=1, keepdim=True) if keep.numel() else scores.new_zeros((n_pos, 1))
    if n_invalid:
        top = top.clamp(min=0)
    grad = torch.is_grad_enabled()
    attn = torch.exp(scores - top) if grad else scores.sub_(top).exp_()
    total = attn.sum(dim=1, keepdim=True)
    if n_invalid:
        total = total + n_invalid * torch.exp(-top)
    attn = _flush_subnormal(attn / total if grad else attn.div_(total))
    cols = raw[:, keep] @ attn.t()
    out = F.fold(cols[None], output_size=(h, w_out), kernel_size=2 * RATE, stride=RATE, padding=RATE // 2) / 4.0
    full = None
    if return_attention:
        full = attn.new_zeros((valid.numel(), n_pos))
        full[keep] = attn.t()
        full = full.view(1, -1, hs, ws)
    return out, full


def _chunked(f_s, w, raw, valid, size, ksize, softmax_scale, fuse, fuse_k, max_scores, return_attention):
    """One batch item of :func:`contextual_attention` with the score matrix in chunks of foreground
    positions.

    ``f_s`` ``[C, hs, ws]`` downsampled foreground, ``w`` ``[L, C, k, k]`` normalised matching
    patches, ``raw`` ``[C * 4 * 4, L]`` pasting patches (columns), ``valid`` ``[L, 1]``. Scores of a set of
    foreground positions are one matrix product with their ``k x k`` neighbourhoods (the
    correlation of the one-piece path). With ``fuse``, the chunks are runs of positions in
    column-major order, and each chunk first computes the scores of the positions the two
    diagonal sums read (its neighbours in column-major, then in row-major order, as flat
    indices: the fusion works on flat indices, so it wraps across rows/columns like the
    one-piece path). The attention of a chunk pastes its 4x4 patches into the output with
    ``index_add_`` (the transposed convolution, written out).

    Returns ``(out [1, C, h, w], attention [1, L, hs, ws] or None)``.
    """
    c, hs, ws = f_s.shape
    h, w_out = size
    n_pos = hs * ws
    n_bg = w.shape[0]
    dev = f_s.device
    pad = ksize // 2
    w_flat = w.reshape(n_bg, -1)
    raw_t = raw  # [C*16, L]
    f_pad = F.pad(f_s, (pad, pad, pad, pad))
    k_idx = torch.arange(ksize, device=dev)

    def scores_at(pos: torch.Tensor) -> torch.Tensor:
        """Scores ``[L, len(pos)]`` of the row-major foreground positions ``pos``."""
        rows = (pos // ws)[:, None] + k_idx
        cols = (pos % ws)[:, None] + k_idx
        q = f_pad[:, rows[:, :, None], cols[:, None, :]]  # [C, n, k, k]
        return w_flat @ q.permute(0, 2, 3, 1).reshape(-1, pos.numel())

    def diagonal_sum(src: torch.Tensor, lut: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``out[l, j] = sum_e src[l + e, lut[targets[j] + e]]`` (zero outside), e = -k//2 .. ."""
        lo = fuse_k // 2
        out = torch.zeros((src.shape[0], targets.numel()), dtype=src.dtype, device=dev)
        for e in range(-lo, fuse_k - lo):
            t = targets + e
            ok = torch.nonzero((t >= 0) & (t < n_pos)).flatten()
            cols = src[:, lut[t[ok]]]
            if e > 0:
                out[: n_bg - e, ok] += cols[e:]
            elif e < 0:
                out[-e:, ok] += cols[: n_bg + e]
            else:
                out[:, ok] += cols
        return out

    if fuse:
        lo, hi = fuse_k // 2, fuse_k - 1 - fuse_k // 2
        per_chunk = max(1, max_scores // (n_bg * (1 + 2 * fuse_k)))
        ar = torch.arange(n_bg, device=dev)
        to_col = (ar % ws) * hs + ar // ws  # row-major index -> column-major index
        to_row = (ar % hs) * ws + ar // hs  # column-major index -> row-major index
        lut = torch.full((n_pos,), -1, dtype=torch.long, device=dev)
    else:
        per_chunk = max(1, max_scores // n_bg)
    out = torch.zeros((c, h * w_out), dtype=f_s.dtype, device=dev)
    attention = torch.zeros((n_bg, n_pos), dtype=f_s.dtype, device=dev) if return_attention else None
    for start in range(0, n_pos, per_chunk):
        stop = min(n_pos, start + per_chunk)
        if fuse:
            # column-major run [start, stop): the first sum (row-major flat order) is needed at its
            # column-major neighbours, and reads their row-major neighbours
            need_c = torch.arange(max(0, start - lo), min(n_pos, stop + hi), device=dev)
            need_r = to_row[need_c]
            read = (need_r[:, None] + torch.arange(-lo, hi + 1, device=dev)).flatten()
            read = torch.unique(read[(read >= 0) & (read < n_pos)])
            lut[read] = torch.arange(read.numel(), device=dev)
            first = diagonal_sum(scores_at(read), lut, need_r)  # [L (row-major), len(need_c)]
            first = first[to_row]  # background patches in column-major order
            lut[need_c] = torch.arange(need_c.numel(), device=dev)
            scores = diagonal_sum(first, lut, torch.arange(start, stop, device=dev))[to_col]
            pos = to_row[start:stop]
        else:
            pos = torch.arange(start, stop, device=dev)
            scores = scores_at(pos)
        scores = scores * valid
        attn = _flush_subnormal(F.softmax(scores * softmax_scale, dim=0) * valid)  # [L, n]
        if attention is not None:
            attention[:, pos] = attn
        contrib = (raw_t @ attn).view(c, 2 * RATE, 2 * RATE, -1)
        y0, x0 = RATE * (pos // ws) - RATE // 2, RATE * (pos % ws) - RATE // 2
        for ky in range(2 * RATE):
            oy = y0 + ky
            for kx in range(2 * RATE):
                ox = x0 + kx
                ok = torch.nonzero((oy >= 0) & (oy < h) & (ox >= 0) & (ox < w_out)).flatten()
                out.index_add_(1, oy[ok] * w_out + ox[ok], contrib[:, ky, kx, ok])
    out = (out / 4.0).view(1, c, h, w_out)
    if attention is not None:
        attention = attention.view(1, n_bg, hs, ws)
    return out, attention


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
    ``return_attention=True``. ``per_item_mask`` and ``max_scores`` are plain attributes (not in
    the state_dict) that may be changed on a built network.

    Parameters
    ----------
    ksize, softmax_scale, fuse, fuse_k, resize, patch_norm, mask_downsample, return_attention : see
        :func:`contextual_attention` (same names, same meaning).
    per_item_mask : bool
        Each item of a batch uses its own mask (otherwise item 0's, as the reference).
    max_scores : int, optional
        Largest score matrix (elements) computed in one piece; larger ones are split in chunks of
        foreground positions (bounded memory, the same result).
    """

    #: every position attends to the whole map: time and memory grow with the square of the pixel
    #: count, so the runner feeds large images in tiles rather than at full resolution
    global_attention = True

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
        per_item_mask: bool = False,
        max_scores: int | None = None,
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
        #: plain attributes (not in the state_dict); the runner may set them on a loaded network
        self.per_item_mask = per_item_mask
        self.max_scores = max_scores

    def forward(self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor):
        return contextual_attention(
            f, b, mask, ksize=self.ksize, softmax_scale=self.softmax_scale, fuse=self.fuse,
            fuse_k=self.fuse_k, resize=self.resize, patch_norm=self.patch_norm,
            mask_downsample=self.mask_downsample, return_attention=self.return_attention,
            per_item_mask=self.per_item_mask, max_scores=self.max_scores,
        )

    def extra_repr(self) -> str:
        return (f"ksize={self.ksize}, softmax_scale={self.softmax_scale}, fuse={self.fuse}, "
                f"resize={self.resize!r}, patch_norm={self.patch_norm!r}")
