"""SN-PatchGAN discriminator and hinge losses (DeepFill v2, Yu et al., ICCV 2019).

The discriminator of the official ``build_sn_patch_gan_discriminator``: six 5 x 5 convolutions
with stride 2, widths ``cnum, 2cnum, 4cnum, 4cnum, 4cnum, 4cnum`` (cnum = 64), each spectrally
normalised and followed by a leaky ReLU (slope 0.2). Every value of the last feature map (4 cnum
channels at 1/64 of the input size) scores one patch of the input; they are flattened to ``(N, -1)``. The input is the RGB
image in [-1, 1] with the hole mask appended as a fourth channel ("gan_with_mask").

Losses (hinge, as ``gan_hinge_loss`` of the official code)::

    d_loss = mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))
    g_loss = -mean(D(fake))

and the non-saturating logistic loss (``nsgan``: SPL's BCE on sigmoid scores, LaMa's
non-saturating loss), written on the raw scores::

    d_loss = mean(softplus(-D(real))) + mean(softplus(D(fake)))
    g_loss = mean(softplus(-D(fake)))

The networks' recipes (:mod:`._recipes`) choose the loss, its weight and whether the mask is a
fourth input channel (``in_channels`` 4) or not (3).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["GAN_LOSSES", "SNPatchGAN", "d_loss", "g_loss", "hinge_d_loss", "hinge_g_loss"]

GAN_LOSSES = ("hinge", "nsgan")


class SNPatchGAN(nn.Module):
    """Spectral-normalised patch discriminator.

    Parameters
    ----------
    in_channels : int
        Input channels (4: RGB + mask).
    cnum : int
        Width of the first layer (64 in the paper).
    n_layers : int
        Number of stride-2 convolutions (6 in the paper).
    """

    def __init__(self, in_channels: int = 4, cnum: int = 64, n_layers: int = 6):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers!r}")
        widths = [cnum * min(2**i, 4) for i in range(n_layers)]
        layers, c_in = [], in_channels
        for c_out in widths:
            layers.append(nn.utils.parametrizations.spectral_norm(nn.Conv2d(c_in, c_out, 5, 2, padding=2)))
            layers.append(nn.LeakyReLU(0.2))
            c_in = c_out
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Patch scores ``(N, P)`` of ``image`` ``(N, 3, H, W)`` in [-1, 1], with ``mask`` ``(N, 1, H, W)``
        appended when the discriminator was built with 4 input channels."""
        x = image if mask is None else torch.cat([image, mask], dim=1)
        return self.layers(x).flatten(1)


def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: ``mean(relu(1 - real)) + mean(relu(1 + fake))``.

    Parameters
    ----------
    real_scores, fake_scores : torch.Tensor
        The discriminator's scores for real and generated images.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def hinge_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: ``-mean(fake)``.

    Parameters
    ----------
    fake_scores : torch.Tensor
        The discriminator's scores for generated images.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    return -fake_scores.mean()


def d_loss(kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of kind ``"hinge"`` or ``"nsgan"``.

    Parameters
    ----------
    kind : {"hinge", "nsgan"}
        Hinge loss, or the non-saturating GAN loss (binary cross-entropy on the logits).
    real_scores, fake_scores : torch.Tensor
        The discriminator's scores (logits) for real and generated images.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    if kind == "hinge":
        return hinge_d_loss(real_scores, fake_scores)
    if kind == "nsgan":
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
    raise ValueError(f"GAN loss must be one of {GAN_LOSSES}, got {kind!r}")


def g_loss(kind: str, fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator adversarial loss of kind ``"hinge"`` or ``"nsgan"``.

    Parameters
    ----------
    kind : {"hinge", "nsgan"}
        Hinge loss, or the non-saturating GAN loss.
    fake_scores : torch.Tensor
        The discriminator's scores (logits) for generated images.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    if kind == "hinge":
        return hinge_g_loss(fake_scores)
    if kind == "nsgan":
        return F.softplus(-fake_scores).mean()
    raise ValueError(f"GAN loss must be one of {GAN_LOSSES}, got {kind!r}")
