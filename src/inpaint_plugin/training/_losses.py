"""Reconstruction and feature losses for training the deep backends.

- :func:`spatial_discount` gives DeepFill v1's spatially discounted weights ``gamma ** (l - 1)``
  in the holes (``l``: Euclidean distance to the nearest known pixel, 1 next to the border), so that
  the pixels deep inside a hole, which are the least constrained, count less.
- :class:`VGG19Features` is the convolutional part of VGG19 with torchvision's key names
  (``features.<i>.weight``), loaded from a state_dict file the user supplies (nothing is downloaded);
  ImageNet mean/std normalisation of [0, 1] inputs is built in.
- :func:`perceptual_loss`: mean L1 distance of the relu1_1, relu2_1, relu3_1 and relu4_1 features.
- :func:`id_mrf_loss`: the implicit-diversified MRF loss of GMCNN (Wang et al., NeurIPS 2018):
  for each target feature vector, the best match among the generated ones under a relative,
  exponentially normalised cosine distance (bias 1, bandwidth 0.5); ``-log`` of the mean best match,
  summed over the batch, on relu3_2 + relu4_2 (style) plus relu4_2 (content), all weights 1.
"""
from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["VGG19Features", "id_mrf_loss", "load_vgg19", "perceptual_loss", "spatial_discount"]

#: VGG19 configuration: channel widths, "M" = 2x2 max pooling (torchvision's layer numbering)
_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
#: index (in ``features``) of the ReLU output of each named layer
RELU = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu3_2": 13, "relu4_1": 20, "relu4_2": 22}
PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def spatial_discount(mask: np.ndarray, gamma: float = 0.9) -> np.ndarray:
    """Weights ``gamma ** (l - 1)`` in the holes of ``mask`` (0 outside), ``l`` the distance to the
    nearest known pixel (Euclidean, in pixels).

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        True = hole.
    gamma : float
        Discount per pixel of distance.

    Returns
    -------
    ndarray of float32, shape (H, W)
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    dist = ndimage.distance_transform_edt(mask)
    return np.where(mask, gamma ** np.maximum(dist - 1.0, 0.0), 0.0).astype(np.float32)


class VGG19Features(nn.Module):
    """The 16 convolutions of VGG19 (torchvision layout), returning the requested ReLU outputs.

    ``forward(x, layers)`` takes ``x`` ``(N, 3, H, W)`` in [0, 1] and returns ``{name: features}``
    for the names of :data:`RELU`; only the layers up to the deepest requested one are run.

    Attributes
    ----------
    features : torch.nn.Sequential
        The convolutions and ReLUs, with torchvision's indices (so its state_dict keys load as they are).
    """

    # non-persistent buffers registered in __init__ (torch types a module attribute as Tensor | Module)
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self):
        super().__init__()
        layers, c_in = [], 3
        for v in _VGG19:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU()]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, layers) -> dict:
        wanted = {RELU[name]: name for name in layers}
        out = {}
        x = (x - self.mean) / self.std
        for i, layer in enumerate(self.features[: max(wanted) + 1]):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return out


def load_vgg19(path) -> VGG19Features:
    """A frozen :class:`VGG19Features` with the weights of a torchvision VGG19 state_dict file.

    ``classifier.*`` keys (the fully connected head) are ignored.

    Parameters
    ----------
    path : str or os.PathLike
        A torchvision VGG19 state_dict (``vgg19-dcbb9e9d.pth``), read safely.

    Returns
    -------
    VGG19Features

    Raises
    ------
    ValueError
        If the file is not a VGG19 state_dict (the message names ``vgg_weights``).
    """
    from ..deep._checkpoint import load_checked, load_state_dict_file

    net = VGG19Features()
    load_checked(net, load_state_dict_file(path, argument="vgg_weights"), path=path, argument="vgg_weights",
                 drop_prefixes=("classifier.",))
    return net.eval().requires_grad_(False)


def perceptual_loss(vgg: VGG19Features, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over relu1_1, relu2_1, relu3_1, relu4_1 of the mean L1 feature distance (inputs in [0, 1]).

    Parameters
    ----------
    vgg : VGG19Features
        Frozen feature extractor.
    output, target : torch.Tensor
        ``(N, 3, H, W)`` in [0, 1].

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    fo, ft = vgg(output, PERCEPTUAL_LAYERS), vgg(target, PERCEPTUAL_LAYERS)
    # PERCEPTUAL_LAYERS is not empty, so the sum is a tensor (mypy only sees sum()'s int start, 0)
    return cast("torch.Tensor", sum(F.l1_loss(fo[k], ft[k].detach()) for k in PERCEPTUAL_LAYERS))


def _mrf(gen: torch.Tensor, tar: torch.Tensor, bias: float = 1.0, sigma: float = 0.5) -> torch.Tensor:
    """ID-MRF term of one feature layer: ``sum_n -log(mean_j max_i CX(gen_i, tar_j))``."""
    mean = tar.mean(dim=1, keepdim=True)
    g = F.normalize(gen - mean, dim=1, eps=1e-8).flatten(2)  # (N, C, Pg)
    t = F.normalize(tar - mean, dim=1, eps=1e-8).flatten(2)  # (N, C, Pt)
    dist = (1.0 - torch.einsum("nct,ncg->ntg", t, g)) / 2  # cosine distance in [0, 1], (N, Pt, Pg)
    relative = dist / (dist.min(dim=1, keepdim=True).values + 1e-5)  # relative to the best target of each gen
    weights = torch.exp((bias - relative) / sigma)
    cx = weights / weights.sum(dim=1, keepdim=True)
    best = cx.max(dim=2).values  # (N, Pt): best generated match of each target feature
    return -torch.log(best.mean(dim=1)).sum()


def id_mrf_loss(vgg: VGG19Features, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """GMCNN's ID-MRF loss of ``output`` against ``target`` (both ``(N, 3, H, W)`` in [0, 1]).

    Parameters
    ----------
    vgg : VGG19Features
        Frozen feature extractor.
    output, target : torch.Tensor
        ``(N, 3, H, W)`` in [0, 1].

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    layers = ("relu3_2", "relu4_2")
    fo, ft = vgg(output, layers), vgg(target, layers)
    style = _mrf(fo["relu3_2"], ft["relu3_2"].detach()) + _mrf(fo["relu4_2"], ft["relu4_2"].detach())
    content = _mrf(fo["relu4_2"], ft["relu4_2"].detach())
    return style + content
