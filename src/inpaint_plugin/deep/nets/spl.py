"""SPL generator (Zhang et al., "Context-Aware Image Inpainting with Learned Semantic Priors",
IJCAI 2021).

Written from the description of the reference implementation ``WendongZh/SPL`` (``networks.py``,
class ``G_Net(input_channels=3, residual_blocks=8)``, and ``rn.py``); the module tree is laid out so
that the ``state_dict`` keys and shapes are those of the reference generator. Only the generator is
needed for inference (the discriminator and the TResNet teacher are training-only).

Network, for an image in ``[0, 1]`` of size ``H x W`` (multiples of 4; trained at 256):

- **Image encoder**: the image with holes set to 1 goes through ReflectionPad(3) + Conv7x7 (3 -> 64) and
  two Conv4x4/stride 2 (-> 128 -> 256), each followed by *RN-B* region normalisation (instance
  statistics computed separately inside and outside the hole, then separate learned affine terms
  for the two regions) and ReLU; result 256 @ H/4.
- **Semantic learner**: the masked image and the mask, upsampled x2 (nearest), go through
  ReflectionPad(3) + Conv7x7 (4 -> 64) and three Conv4x4/stride 2 (-> 128 -> 256 -> 256), each followed by
  LeakyReLU(0.1), giving 256 @ H/4; a 3x3 conv and 16 residual dense blocks (6 layers of growth 32
  each), global feature fusion (1x1 + 3x3 conv) added back to the encoder output, then 4 residual
  blocks give the semantic prior ("layout"). ``feature_mapping`` (1x1 -> 152) only feeds the
  distillation loss.
- **Context-aware generator**: 8 residual blocks with SPADE normalisation conditioned on the prior
  (dilation 2), then a decoder of two (Conv3x3 + PixelShuffle(2) + *RN-L* + ReLU) stages and
  ReflectionPad(3) + Conv7x7 (64 -> 3); output ``(tanh + 1) / 2`` in ``[0, 1]``. RN-L thresholds a learned
  spatial importance map at 0.8 to choose its two regions.

Instance normalisations have no affine parameters and eps 1e-5.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SPL", "region_norm"]


def _region_norm_filled(x: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """:func:`region_norm` computed as it is defined (each part filled with its mean, then instance
    normalisation); used for regions that are not 0/1."""
    out = 0
    hw = x.shape[2] * x.shape[3]
    for r in (region, 1 - region):
        part = x * r
        area = r.sum(dim=(2, 3))  # (B, 1)
        area = torch.where(area == 0, torch.ones_like(area), area)
        mean = part.sum(dim=(2, 3)) / area  # (B, C)
        filled = part + (1 - r) * mean[:, :, None, None]
        out = out + F.instance_norm(filled, eps=1e-5) * torch.sqrt(area / hw)[:, :, None, None]
    return out


def _region_parts(x: torch.Tensor, inside: torch.Tensor, eps: float = 1e-5):
    """The pieces of :func:`region_norm` for a 0/1 region, in closed form.

    A part ``r`` filled with its channel mean ``m`` has instance mean ``m`` and variance
    ``V / (H W)`` with ``V = sum_r (x - m)**2``, so its normalised, rescaled map is
    ``r (x - m) sqrt(area / (V + H W eps))``: ``region_norm = d * k`` with ``d`` = ``x`` minus the
    mean of its pixel's part and ``k`` the scale of that part. The sums take a few passes over ``x``
    (sums for the means, then the squares of ``d`` summed per part by a matrix product with the two
    region indicators).

    Parameters
    ----------
    x : torch.Tensor
        (B, C, H, W).
    inside : torch.Tensor
        (B, 1, H, W) bool, the region.
    eps : float
        Instance normalisation's epsilon.

    Returns
    -------
    d : torch.Tensor
        (B, C, H, W).
    k : torch.Tensor
        (B, C, 2): the scales outside (``[..., 0]``) and inside (``[..., 1]``) the region.
    """
    b, c, h, w = x.shape
    r = inside.reshape(b, h * w, 1).to(x.dtype)
    weights = torch.cat([1 - r, r], dim=2)  # (B, HW, 2)
    area = weights.sum(dim=1, keepdim=True)  # (B, 1, 2)
    # the sums of x use torch.sum (cascade summation): a float32 matrix product here loses digits
    total, part_in = x.sum(dim=(2, 3)), (x * r.view(b, 1, h, w)).sum(dim=(2, 3))
    mean = torch.stack([total - part_in, part_in], dim=2) / area.clamp_min(1)  # (B, C, 2)
    d = x - _select(inside, mean)
    var_sum = (d * d).reshape(b, c, h * w) @ weights
    # an empty part (area 0) is selected nowhere: its scale is unused, clamped to keep gradients finite
    return d, torch.sqrt(area.clamp_min(1) / (var_sum + h * w * eps))


def _select(inside: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W): ``values[..., 1]`` (B, C, 2) where ``inside`` (B, 1, H, W), else ``values[..., 0]``."""
    return torch.where(inside, values[:, :, 1, None, None], values[:, :, 0, None, None])


def _is_binary(region: torch.Tensor) -> bool:
    return bool(((region == 0) | (region == 1)).all())


def region_norm(x: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Region normalisation: instance-normalise ``x`` separately inside ``region`` and outside it.

    For each part ``r`` (``region`` and ``1 - region``; ``region`` is (B, 1, H, W) with values 0/1), the
    part's pixels keep their values, the others take the part's channel mean, the map is
    instance-normalised and scaled by ``sqrt(area(r) / (H * W))``; the two results are summed.
    (This is ``rn`` of ``RN_binarylabel_IN`` in the reference's ``rn.py``; it is computed here in the
    equivalent closed form of :func:`_region_parts`, which reads ``x`` a few times instead of
    building the filled maps.)

    Parameters
    ----------
    x : torch.Tensor
        Features, (B, C, H, W).
    region : torch.Tensor
        (B, 1, H, W), 1 inside the region and 0 outside, the dtype of ``x``.

    Returns
    -------
    torch.Tensor
        (B, C, H, W), the sum of the two normalised parts.
    """
    if not _is_binary(region):
        return _region_norm_filled(x, region)
    inside = region.bool()
    d, k = _region_parts(x, inside)
    return d * _select(inside, k)


class RegionNormB(nn.Module):
    """RN-B: region normalisation with the (resized, nearest) hole mask and per-region affine terms.

    ``y * mask * (1 + foreground_gamma) + foreground_beta + y * (1 - mask) * (1 + background_gamma)
    + background_beta`` with ``y = region_norm(x, mask)`` (as ``RN_B`` of the reference: both betas are
    added everywhere).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.foreground_gamma = nn.Parameter(torch.zeros(channels))
        self.foreground_beta = nn.Parameter(torch.zeros(channels))
        self.background_gamma = nn.Parameter(torch.zeros(channels))
        self.background_beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if mask.shape[2:] != x.shape[2:]:
            mask = F.interpolate(mask, size=x.shape[2:], mode="nearest")

        def vec(p):
            return p[None, :, None, None]

        beta = vec(self.foreground_beta + self.background_beta)
        if not _is_binary(mask):
            y = _region_norm_filled(x, mask)
            return (y * mask * (1 + vec(self.foreground_gamma)) + y * (1 - mask) * (1 + vec(self.background_gamma))
                    + beta)
        inside = mask.bool()
        d, k = _region_parts(x, inside)
        # per part: its region-norm scale times its (1 + gamma), applied to d in one pass
        scale = k * torch.stack([1 + self.background_gamma, 1 + self.foreground_gamma], dim=1)[None]
        return torch.addcmul(beta, d, _select(inside, scale))


class SelfAwareAffine(nn.Module):
    """Spatial importance map (sigmoid of a 7x7 conv over channel mean and max) and affine maps."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        self.gamma_conv = nn.Conv2d(1, 1, 7, padding=3)
        self.beta_conv = nn.Conv2d(1, 1, 7, padding=3)

    def forward(self, x: torch.Tensor):
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        importance = torch.sigmoid(self.conv1(stats))
        return importance, self.gamma_conv(importance), self.beta_conv(importance)


class RegionNormL(nn.Module):
    """RN-L: region normalisation with regions from a thresholded learned importance map."""

    def __init__(self, threshold: float = 0.8):
        super().__init__()
        self.sa = SelfAwareAffine()
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        importance, gamma, beta = self.sa(x)
        inside = importance >= self.threshold
        d, k = _region_parts(x, inside)
        return torch.addcmul(beta, d * _select(inside, k), 1 + gamma)


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: IN(x) * (1 + gamma(prior)) + beta(prior)."""

    def __init__(self, channels: int, prior_channels: int, hidden: int = 128):
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(prior_channels, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        if prior.shape[2:] != x.shape[2:]:  # nearest resizing to the same size is the identity: no copy
            prior = F.interpolate(prior, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(prior)
        return F.instance_norm(x, eps=1e-5) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class ResBlock(nn.Module):
    """``x + conv(pad(relu(conv(pad(x)))))``; keys ``conv_block.1`` / ``conv_block.4``."""

    def __init__(self, dim: int, dilation: int = 1):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            nn.Conv2d(dim, dim, 3, dilation=dilation),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class SPADEResBlock(nn.Module):
    """Residual block with SPADE normalisations before each conv (keys ``conv_block.0/3/4/7``)."""

    def __init__(self, dim: int, prior_channels: int, dilation: int = 2):
        super().__init__()
        self.conv_block = nn.Sequential(
            SPADE(dim, prior_channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(dilation),
            nn.Conv2d(dim, dim, 3, dilation=dilation),
            SPADE(dim, prior_channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
        )

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.conv_block:
            out = layer(out, prior) if isinstance(layer, SPADE) else layer(out)
        return x + out


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, growth, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, F.relu(self.conv(x))], dim=1)


class ResidualDenseBlock(nn.Module):
    """``x + lff(dense layers(x))`` with ``num_layers`` densely connected 3x3 conv + ReLU layers."""

    def __init__(self, channels: int, growth: int, num_layers: int):
        super().__init__()
        self.layers = nn.Sequential(*[_DenseLayer(channels + growth * i, growth) for i in range(num_layers)])
        self.lff = nn.Conv2d(channels + growth * num_layers, channels, 1)

    def forward(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``x + lff(dense layers(x))``; without autograd written into ``out`` (``x``'s shape) when given.

        Without autograd, the dense layers write their outputs into consecutive channels of one buffer
        instead of concatenating at every layer (same values): with one image the channel prefix that
        each layer reads is a contiguous view, so nothing is copied. (With autograd the in-place
        writes would overwrite what the backward pass needs: concatenation then, and ``out`` is
        not used.)
        """
        if torch.is_grad_enabled():
            return x + self.lff(self.layers(x))
        c = x.shape[1]
        growth = self.layers[0].conv.out_channels
        buf = x.new_empty((x.shape[0], c + growth * len(self.layers), *x.shape[2:]))
        buf[:, :c] = x
        for layer in self.layers:
            buf[:, c:c + growth] = F.relu(layer.conv(buf[:, :c]))
            c += growth
        return torch.add(x, self.lff(buf), out=out)


class SPL(nn.Module):
    """The SPL generator (keys of the reference ``G_Net(3, residual_blocks=8)``).

    ``forward(image, mask)`` takes the image in ``[0, 1]`` (B, 3, H, W) and the mask (B, 1, H, W) with
    1 = hole; ``H`` and ``W`` must be multiples of 4. Returns ``(output, prior_features)``: the image in
    ``[0, 1]`` and the 152-channel prediction of the teacher's features (training only).
    The semantic learner sees the masked image (holes 1) and the mask upsampled x2 with nearest
    interpolation, as the reference's evaluation does (256 -> 512).

    Parameters
    ----------
    channels : int, optional
        Image channels (default 3).
    residual_blocks : int, optional
        The number of context-aware (SPADE) residual blocks in the middle (default 8).
    threshold : float, optional
        RN-L's threshold on the learned importance map that splits the regions (default 0.8).

    Attributes
    ----------
    size_multiple : int
        ``H`` and ``W`` must be multiples of this (4).
    """

    size_multiple = 4

    def __init__(self, channels: int = 3, residual_blocks: int = 8, threshold: float = 0.8):
        super().__init__()
        c0, growth, n_rdb, n_layers = 256, 32, 16, 6
        # image encoder
        self.encoder_conv1 = nn.Conv2d(channels, 64, 7)
        self.encoder_in1 = RegionNormB(64)
        self.encoder_conv2 = nn.Conv2d(64, 128, 4, stride=2, padding=1)
        self.encoder_in2 = RegionNormB(128)
        self.encoder_conv3 = nn.Conv2d(128, 256, 4, stride=2, padding=1)
        self.encoder_in3 = RegionNormB(256)
        # context-aware generator blocks
        self.middle = nn.Sequential(*[SPADEResBlock(256, 256, dilation=2) for _ in range(residual_blocks)])
        # semantic learner
        self.encoder_conv1_sm = nn.Conv2d(channels + 1, 64, 7)
        self.encoder_conv2_sm = nn.Conv2d(64, 128, 4, stride=2, padding=1)
        self.encoder_conv3_sm = nn.Conv2d(128, 256, 4, stride=2, padding=1)
        self.encoder_conv4_sm = nn.Conv2d(256, 256, 4, stride=2, padding=1)
        self.encoder_sm_out = nn.Conv2d(256, 256, 3, padding=1)
        self.rdbs = nn.ModuleList([ResidualDenseBlock(c0, growth, n_layers) for _ in range(n_rdb)])
        self.gff = nn.Sequential(nn.Conv2d(c0 * n_rdb, c0, 1), nn.Conv2d(c0, c0, 3, padding=1))
        self.feature_recon = nn.Sequential(*[ResBlock(256) for _ in range(4)])
        self.feature_mapping = nn.Conv2d(256, 152, 1)
        # decoder
        self.decoder = nn.Sequential(
            nn.Conv2d(256, 128 * 4, 3, padding=1),
            nn.PixelShuffle(2),
            RegionNormL(threshold),
            nn.ReLU(True),
            nn.Conv2d(128, 64 * 4, 3, padding=1),
            nn.PixelShuffle(2),
            RegionNormL(threshold),
            nn.ReLU(True),
            nn.ReflectionPad2d(3),
            nn.Conv2d(64, channels, 7),
        )

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Image encoder: (B, 3, H, W) with holes filled -> (B, 256, H/4, W/4)."""
        x = F.pad(x, (3, 3, 3, 3), mode="reflect")
        for conv, norm in ((self.encoder_conv1, self.encoder_in1), (self.encoder_conv2, self.encoder_in2),
                           (self.encoder_conv3, self.encoder_in3)):
            x = F.relu(norm(conv(x), mask))
        return x

    def semantic_prior(self, x: torch.Tensor) -> torch.Tensor:
        """Semantic learner: (B, 4, 2H, 2W) -> the prior (B, 256, H/4, W/4)."""
        # the four strided convolutions at 2x and 1x the image size run in channels-last memory
        # format, where oneDNN is much faster for them on the CPU (the values are the same); the
        # conversion happens once on the 4-channel input and once on the quarter-size result
        x = F.pad(x, (3, 3, 3, 3), mode="reflect").contiguous(memory_format=torch.channels_last)
        for conv in (self.encoder_conv1_sm, self.encoder_conv2_sm, self.encoder_conv3_sm, self.encoder_conv4_sm):
            x = F.leaky_relu(conv(x), 0.1)
        x = x.contiguous()
        skip = self.encoder_sm_out(x)
        if torch.is_grad_enabled():
            local = []
            for rdb in self.rdbs:
                skip = rdb(skip)
                local.append(skip)
            local = torch.cat(local, dim=1)
        else:  # each RDB writes its output into its slice of the buffer that global feature fusion reads
            c = skip.shape[1]
            local = x.new_empty((x.shape[0], c * len(self.rdbs), *x.shape[2:]))
            for i, rdb in enumerate(self.rdbs):
                skip = rdb(skip, out=local[:, i * c:(i + 1) * c])
        x = self.gff(local) + x
        return self.feature_recon(x)

    def forward(self, image: torch.Tensor, mask: torch.Tensor):
        h, w = image.shape[2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"SPL input size must be a multiple of {self.size_multiple}, got {h}x{w}")
        masked = image * (1 - mask) + mask
        x = self.encode(masked, mask)
        up = (2 * h, 2 * w)
        prior_in = torch.cat([F.interpolate(masked, size=up, mode="nearest"),
                              F.interpolate(mask, size=up, mode="nearest")], dim=1)
        layout = self.semantic_prior(prior_in)
        for block in self.middle:
            x = block(x, layout)
        out = (torch.tanh(self.decoder(x)) + 1) / 2
        return out, self.feature_mapping(layout)
