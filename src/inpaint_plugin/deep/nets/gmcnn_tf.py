"""GMCNN, TensorFlow version (Wang et al., NeurIPS 2018): the network of the official TensorFlow
checkpoints (Paris StreetView, Places2, CelebA-HQ) of ``shepnerd/inpainting_gmcnn``.

It is not the network of that repository's PyTorch folder (:mod:`.gmcnn`): facts read in
``tensorflow/net/network.py`` (``GMCNNModel.build_generator``, commit 08eb38f), written here as our own
code:

- input ``concat([x, ones, ones * mask])`` (5 channels; ``x`` in [-1, 1] with holes set to 0);
- every conv is ``tf.layers.conv2d(padding='SAME')`` (zero padding, TF's rule: ``pad_total = max((out - 1)
  * stride + (k - 1) * dilation + 1 - in, 0)``, the smaller half before) followed by ELU, except the
  last (``mergeconv18``), which is linear; the output is clipped to [-1, 1];
- column 1 (``b1conv*``): 7x7 convs ``conv1`` (cnum), ``conv2_downsample`` (2cnum, stride 2), ``conv3``,
  ``conv4_downsample`` (4cnum, stride 2), ``conv5``, ``conv6``, ``conv7_atrous`` .. ``conv10_atrous``
  (dilation 2, 4, 8, 16), [``conv11_atrous`` (dilation 32) when cnum > 32], ``conv11``, ``conv12``, then
  ``resize_bilinear`` to the input size (``align_corners=True``);
- column 2 (``b2conv*``): the same encoder with 5x5 convs, then ``resize_nearest_neighbor`` to half the
  input size (``align_corners=True``), ``conv13_upsample/conv13_upsample_conv`` (3x3, 2cnum), ``conv14``
  (5x5, 2cnum), ``resize_bilinear`` to the input size (``align_corners=True``);
- column 3 (``b3conv*``): ``conv1`` is 5x5, the rest 3x3; after ``conv12``: nearest to half size,
  ``conv13_upsample/..._conv`` (2cnum), ``conv14`` (2cnum), nearest to full size,
  ``conv15_upsample/..._conv`` (cnum), ``conv16`` (cnum // 2);
- ``concat([b1, b2, b3])`` (4cnum + 2cnum + cnum // 2 channels), ``mergeconv17`` (3x3, cnum // 2),
  ``mergeconv18`` (3x3, 3, linear).

``resize_nearest_neighbor(align_corners=True)`` (TF 1.x kernel, ``half_pixel_centers=False``) takes
source index ``min(roundf(i * (in - 1) / (out - 1)), in - 1)``, computed in float32. Module attribute
names are the TF layer names (``b2conv13_upsample`` for ``b2conv13_upsample/b2conv13_upsample_conv``).
torch is imported at module level: import this module only where torch is needed.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GMCNNTF", "layer_table"]


def layer_table(cnum: int = 32) -> list[tuple[str, int, int, int, int, int]]:
    """``(name, in_channels, out_channels, kernel, stride, dilation)`` of every conv, in order.

    Parameters
    ----------
    cnum : int, optional
        The base width (default 32): the columns' layers have ``cnum``, ``2 * cnum`` and ``4 * cnum``
        channels, and a ``conv11_atrous`` layer (dilation 32) is added when ``cnum > 32``.

    Returns
    -------
    list of tuple
        ``(name, in_channels, out_channels, kernel, stride, dilation)`` per convolution: columns
        ``b1``, ``b2``, ``b3``, then ``mergeconv17`` and ``mergeconv18``; the names are the official
        TF variable scopes.
    """
    rows = []
    for col, k, k1, kd in (("b1", 7, 7, 7), ("b2", 5, 5, 5), ("b3", 3, 5, 3)):
        rows += [(f"{col}conv1", 5, cnum, k1, 1, 1), (f"{col}conv2_downsample", cnum, 2 * cnum, kd, 2, 1),
                 (f"{col}conv3", 2 * cnum, 2 * cnum, k, 1, 1), (f"{col}conv4_downsample", 2 * cnum, 4 * cnum, k, 2, 1),
                 (f"{col}conv5", 4 * cnum, 4 * cnum, k, 1, 1), (f"{col}conv6", 4 * cnum, 4 * cnum, k, 1, 1)]
        rows += [(f"{col}conv{7 + i}_atrous", 4 * cnum, 4 * cnum, k, 1, 2 ** (i + 1)) for i in range(4)]
        if cnum > 32:
            rows.append((f"{col}conv11_atrous", 4 * cnum, 4 * cnum, k, 1, 32))
        rows += [(f"{col}conv11", 4 * cnum, 4 * cnum, k, 1, 1), (f"{col}conv12", 4 * cnum, 4 * cnum, k, 1, 1)]
        if col == "b2":
            rows += [("b2conv13_upsample", 4 * cnum, 2 * cnum, 3, 1, 1), ("b2conv14", 2 * cnum, 2 * cnum, 5, 1, 1)]
        if col == "b3":
            rows += [("b3conv13_upsample", 4 * cnum, 2 * cnum, 3, 1, 1), ("b3conv14", 2 * cnum, 2 * cnum, 3, 1, 1),
                     ("b3conv15_upsample", 2 * cnum, cnum, 3, 1, 1), ("b3conv16", cnum, cnum // 2, 3, 1, 1)]
    rows += [("mergeconv17", 4 * cnum + 2 * cnum + cnum // 2, cnum // 2, 3, 1, 1),
             ("mergeconv18", cnum // 2, 3, 3, 1, 1)]
    return rows


def _same_pad(x, kernel: int, stride: int, dilation: int):
    """Zero padding of TF's 'SAME' rule (the odd pixel after)."""
    pads = []
    for n in (x.shape[3], x.shape[2]):  # F.pad order: last dim first
        out = -(-n // stride)
        total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def _nearest_align_corners(x, height: int, width: int):
    """``tf.image.resize_nearest_neighbor(x, [height, width], align_corners=True)`` (TF 1.x rule)."""
    def index(n_in, n_out):
        scale = np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0)
        pos = np.arange(n_out, dtype=np.float32) * scale
        return torch.from_numpy(np.minimum(np.floor(pos + np.float32(0.5)).astype(np.int64), n_in - 1)).to(x.device)

    return x.index_select(2, index(x.shape[2], height)).index_select(3, index(x.shape[3], width))


class GMCNNTF(nn.Module):
    """The TensorFlow GMCNN generator; ``forward(x)`` with ``x`` = ``cat[image, ones, mask]`` (B, 5, H, W),
    image in [-1, 1] with holes 0 (in the channel order the weights expect), returns (B, 3, H, W) in
    [-1, 1].

    Parameters
    ----------
    cnum : int, optional
        The base width of the three columns (default 32); ``cnum > 32`` adds a dilation-32 layer to
        each column (see :func:`layer_table`).

    Attributes
    ----------
    table : list of tuple
        The convolutions, as :func:`layer_table` gives them.
    """

    def __init__(self, cnum: int = 32):
        super().__init__()
        self.cnum = cnum
        self.table = layer_table(cnum)
        for name, cin, cout, k, _, d in self.table:
            setattr(self, name, nn.Conv2d(cin, cout, k, stride=_stride(self.table, name), dilation=d))

    def _conv(self, name: str, x, act: bool = True):
        conv = getattr(self, name)
        x = conv(_same_pad(x, conv.kernel_size[0], conv.stride[0], conv.dilation[0]))
        return F.elu(x) if act else x

    def _encoder(self, col: str, x):
        for name in [n for n, *_ in self.table if n.startswith(col)][: 12 + (self.cnum > 32)]:
            x = self._conv(name, x)
        return x

    def forward(self, x):
        h, w = x.shape[2:]
        b1 = F.interpolate(self._encoder("b1", x), size=(h, w), mode="bilinear", align_corners=True)
        b2 = _nearest_align_corners(self._encoder("b2", x), h // 2, w // 2)
        b2 = self._conv("b2conv14", self._conv("b2conv13_upsample", b2))
        b2 = F.interpolate(b2, size=(h, w), mode="bilinear", align_corners=True)
        b3 = _nearest_align_corners(self._encoder("b3", x), h // 2, w // 2)
        b3 = self._conv("b3conv14", self._conv("b3conv13_upsample", b3))
        b3 = _nearest_align_corners(b3, h, w)
        b3 = self._conv("b3conv16", self._conv("b3conv15_upsample", b3))
        y = self._conv("mergeconv17", torch.cat([b1, b2, b3], dim=1))
        return self._conv("mergeconv18", y, act=False).clamp(-1, 1)


def _stride(table, name: str) -> int:
    return next(s for n, _, _, _, s, _ in table if n == name)
