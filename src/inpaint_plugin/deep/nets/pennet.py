"""PEN-Net generator (Zeng et al., "Learning Pyramid-Context Encoder Network for High-Quality Image
Inpainting", CVPR 2019), PyTorch release.

Written from the description of the reference implementation ``researchmm/PEN-Net-for-Inpainting``
(``model/pennet.py``, class ``InpaintGenerator``); the module tree is laid out so that the
``state_dict`` keys and shapes are those of the reference, and its official checkpoints
(``gen_XXXXX.pth`` = ``{'netG': state_dict}``) load strictly.

Network, for an input of size ``H x W`` (both multiples of 64):

- **Encoder**: six Conv3x3/stride 2 layers, ``4 -> 32 -> 64 -> 128 -> 256 -> 512 -> 512`` channels, each
  followed by LeakyReLU(0.2) except the last one (ReLU). The input is the masked image in ``[-1, 1]``
  with holes set to 1, concatenated with the mask (1 = hole).
- **Attention transfer networks** (ATN), from deep to shallow: level ``i`` (``i = 5 .. 1``) re-fills the
  encoder features ``x_i`` using the attention scores computed on the already filled, twice smaller
  level ``x_{i+1}`` (see :class:`AttentionTransfer`). Level 5 matches 1x1 patches and is not fused; the
  others match 3x3 patches and are followed by four dilated 3x3 convolutions (dilation 1, 2, 4, 8),
  whose outputs are concatenated.
- **Decoder**: five stages of (bilinear x2 upsampling, ``align_corners=True``) + Conv3x3 + ReLU, each
  fed with the previous stage concatenated with the ATN feature of the same scale; 1x1 ``torgb``
  heads give the pyramid of coarse outputs (used by the training loss only); the final output is a
  last upsampling followed by Conv3x3 + ReLU + Conv3x3 + tanh, in ``[-1, 1]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AttentionTransfer", "PENNet"]


def _conv_act(cin: int, cout: int, act: nn.Module, kernel_size: int = 3, stride: int = 1,
              dilation: int = 1) -> nn.Sequential:
    """``Sequential(conv, act)``: the reference's key layout ``<name>.0.weight``."""
    pad = dilation * (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=pad, dilation=dilation), act)


class AttentionTransfer(nn.Module):
    """Cross-layer attention transfer (ATN) of PEN-Net.

    Cosine similarities between every ``ksize x ksize`` patch of the high-level map ``x2`` (size
    ``h x w``) and the patches of known regions (those whose mask patch is entirely zero) give, after a
    softmax scaled by ``softmax_scale``, attention weights; these weights paste the corresponding
    ``4 x 4`` / stride 2 patches of the low-level map ``x1`` (size ``2h x 2w``) with a transposed
    convolution (divided by 4 for the overlap). With ``fuse`` the result goes through four parallel
    dilated 3x3 convolutions + ReLU whose outputs are concatenated.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of ``x1`` and of the fused output (``out_channels`` is split over 4 groups).
    ksize : int
        Matching patch size on ``x2`` (1 or 3).
    fuse : bool
        Apply the dilated fusion convolutions (keys ``conv00`` .. ``conv03``).
    """

    rate = 2
    softmax_scale = 10.0
    groups = 4
    dilations = (1, 2, 4, 8)

    def __init__(self, in_channels: int, out_channels: int, ksize: int = 3, fuse: bool = True):
        super().__init__()
        self.ksize = ksize
        self.fuse = fuse
        if fuse:
            for i, d in enumerate(self.dilations):
                self.add_module(f"conv{i:02d}", _conv_act(in_channels, out_channels // self.groups,
                                                          nn.ReLU(inplace=True), dilation=d))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fill ``x1`` (B, C1, 2h, 2w) from attention computed on ``x2`` (B, C2, h, w).

        ``mask`` (B, 1, H, W) is 1 in holes; it is resized bilinearly (``align_corners=True``) to
        ``h x w``.

        The reference correlates ``x2`` with its ``L = h w`` normalised patches (a convolution),
        takes the softmax over the patches of ``scale * score * valid`` (invalid patches: score 0),
        multiplies by ``valid``, clamps at 1e-8 and pastes with a transposed convolution. The same
        sums are computed here as matrix products over the valid patches only, with the positions
        as rows (a contiguous softmax): the invalid patches enter the softmax's normaliser as
        ``n_invalid * exp(0)`` and the paste as their clamped weight 1e-8 times the sum of their
        4x4 patches; the paste is a matrix product and a fold (col2im).
        """
        h, w = x2.shape[2:]
        kernel = 2 * self.rate
        mask = F.interpolate(mask, size=(h, w), mode="bilinear", align_corners=True)
        pad = 0 if self.ksize == 1 else 1
        n_pos = h * w
        # patches as columns: matching (C2 k k, L), of the mask (k k, L), pasting (C1 4 4, L); row-major
        cols = F.unfold(x2, self.ksize, padding=pad)
        raws = F.unfold(x1, kernel, stride=self.rate, padding=1)
        valids = F.unfold(mask, self.ksize, padding=pad).mean(dim=1) == 0  # (B, L)
        out = []
        for b in range(x2.shape[0]):
            u, raw = cols[b], raws[b]
            keep = torch.nonzero(valids[b]).flatten()
            n_invalid = n_pos - keep.numel()
            norm = u.pow(2).sum(dim=0).sqrt().clamp(min=1e-4)
            # the softmax scale is folded into the normalised patches (one pass less over the scores)
            wv = u[:, keep] * (self.softmax_scale / norm[keep])
            scores = u.t() @ wv  # (positions, valid patches), already scaled
            # softmax over each row, the invalid patches' n_invalid * exp(0) terms included
            top = scores.amax(dim=1, keepdim=True) if keep.numel() else scores.new_zeros((n_pos, 1))
            if n_invalid:
                top = top.clamp(min=0)
            if torch.is_grad_enabled():
                attn = torch.exp(scores - top)
            else:
                attn = scores.sub_(top).exp_()
            total = attn.sum(dim=1, keepdim=True)
            if n_invalid:
                total = total + n_invalid * torch.exp(-top)
            if torch.is_grad_enabled():
                attn = (attn / total).clamp(min=1e-8)
            else:
                attn = attn.div_(total).clamp_(min=1e-8)
            pasted = raw[:, keep] @ attn.t()  # (C1 * 16, positions)
            if n_invalid:
                gone = torch.ones(n_pos, dtype=torch.bool, device=raw.device)
                gone[keep] = False
                pasted = pasted + 1e-8 * raw[:, gone].sum(dim=1, keepdim=True)
            out.append(F.fold(pasted[None], output_size=(self.rate * h, self.rate * w), kernel_size=kernel,
                              stride=self.rate, padding=1) / 4.0)
        y = torch.cat(out, dim=0)
        if self.fuse:
            y = torch.cat([getattr(self, f"conv{i:02d}")(y) for i in range(self.groups)], dim=1)
        return y


class PENNet(nn.Module):
    """The PEN-Net inpainting generator (keys of the reference ``InpaintGenerator``).

    ``forward(x, mask)`` takes ``x`` = concatenation of the masked image in ``[-1, 1]`` (holes set to 1)
    and the mask, (B, 4, H, W), and the mask (B, 1, H, W) with 1 = hole; ``H`` and ``W`` must be
    multiples of 64. It returns ``(pyramid, output)``: the five coarse tanh images from finest to
    coarsest and the full-resolution output in ``[-1, 1]``.

    Parameters
    ----------
    cnum : int, optional
        The base width (default 32, as the official weights): the encoder's layers have ``cnum``
        to ``16 * cnum`` channels.
    """

    size_multiple = 64

    def __init__(self, cnum: int = 32):
        super().__init__()
        enc = [4, cnum, cnum * 2, cnum * 4, cnum * 8, cnum * 16, cnum * 16]
        for i in range(1, 7):
            act = nn.ReLU(inplace=True) if i == 6 else nn.LeakyReLU(0.2, inplace=True)
            self.add_module(f"dw_conv0{i}", _conv_act(enc[i - 1], enc[i], act, stride=2))
        self.at_conv05 = AttentionTransfer(cnum * 16, cnum * 16, ksize=1, fuse=False)
        for i in range(4, 0, -1):
            self.add_module(f"at_conv0{i}", AttentionTransfer(enc[i], enc[i]))
        # decoder: up_conv0i takes cat(previous stage, ATN feature) except at the deepest level
        dec_in = {5: cnum * 16, 4: cnum * 32, 3: cnum * 16, 2: cnum * 8, 1: cnum * 4}
        for i in range(5, 0, -1):
            self.add_module(f"up_conv0{i}", _conv_act(dec_in[i], enc[i], nn.ReLU(inplace=True)))
        for i in range(5, 0, -1):
            self.add_module(f"torgb{i}", nn.Sequential(nn.Conv2d(2 * enc[i], 3, kernel_size=1), nn.Tanh()))
        self.decoder = nn.Sequential(
            nn.Conv2d(cnum * 2, cnum, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(cnum, 3, kernel_size=3, padding=1),
            nn.Tanh(),
        )

    @staticmethod
    def _up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        h, w = x.shape[2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"PEN-Net input size must be a multiple of {self.size_multiple}, got {h}x{w}")
        feats = []
        for i in range(1, 7):
            x = getattr(self, f"dw_conv0{i}")(x)
            feats.append(x)
        # attention transfer from deep to shallow; feats[i - 1] is level i
        filled = {6: feats[5]}
        for i in range(5, 0, -1):
            filled[i] = getattr(self, f"at_conv0{i}")(feats[i - 1], filled[i + 1], mask)
        up = self.up_conv05(self._up(filled[6]))
        pyramid = []
        for i in range(5, 0, -1):
            skip = torch.cat([up, filled[i]], dim=1)
            pyramid.append(getattr(self, f"torgb{i}")(skip))
            if i > 1:
                up = getattr(self, f"up_conv0{i - 1}")(self._up(skip))
        out = self.decoder(self._up(skip))
        return pyramid[::-1], out
