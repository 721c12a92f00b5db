"""GMCNN (Wang et al., NeurIPS 2018): generative multi-column CNN, PyTorch version.

The network lives in :mod:`inpaint_plugin.deep.nets.gmcnn`; this module describes how to build it,
load the official PyTorch checkpoint of ``shepnerd/inpainting_gmcnn`` (``<epoch>_net_GM.pth``, a bare
state_dict) and run it (image in ``[-1, 1]`` with holes set to 0, mask channel appended). The network is
fully convolutional (sides multiple of 4); windows smaller than :attr:`GMCNN.min_size` are extended by
mirror symmetry (image and mask alike) and the result cropped back. torch is imported only inside the
functions.
"""
from __future__ import annotations

from pathlib import Path

from ..deep._backend import make_backend
from ..deep._checkpoint import load_checked, load_state_dict_file, write_checkpoint
from ..deep._spec import ModelSpec
from ..deep._weights import WeightsEntry, WeightsFile

_DRIVE_CELEBAHQ = "https://drive.google.com/file/d/1lx0BHKQ-GsbFu60ocYm4wK1HVfv7uean/view?usp=sharing"


def _build():
    from ..deep.nets.gmcnn import GMCNN

    return GMCNN()


def _load(module, path: Path) -> None:
    """Load an official PyTorch checkpoint (a bare state_dict of ``netGM``) strictly.

    The TensorFlow checkpoints of the same page (Paris StreetView, Places2, CelebA-HQ) hold another
    network (``tensorflow/net/network.py``: 5 input channels, zero 'SAME' padding, a 5x5 first conv in
    the third column, 16 channels out of it), which method ``gmcnn_tf`` runs: they are recognised and
    refused here with that explanation.
    """
    from ..deep._tf_checkpoint import NETWORKS, identify, is_tf_checkpoint, list_variables

    if is_tf_checkpoint(path):  # never the PyTorch GMCNN: say what it is
        kind = identify(list_variables(path))
        where = f"weights={str(path)!r}"
        if kind == "gmcnn_tf":
            raise ValueError(
                f"{where}: this is a checkpoint of the {NETWORKS[kind]}, a different network from the PyTorch "
                "GMCNN that method='gmcnn' runs (5 input channels, zero 'SAME' padding, other kernel sizes): "
                "use method='gmcnn_tf', which runs it, or the PyTorch checkpoint <epoch>_net_GM.pth here")
        if kind is not None:
            raise ValueError(f"{where}: this TensorFlow checkpoint looks like {NETWORKS[kind]}, not GMCNN: "
                             f"use method={kind!r}")
        raise ValueError(f"{where}: a TensorFlow checkpoint that is not a GMCNN checkpoint; method='gmcnn' "
                         "loads the PyTorch checkpoint <epoch>_net_GM.pth")
    load_checked(module, load_state_dict_file(path), path=path)


def _symmetric_extend(t, height: int, width: int):
    """Extend (B, C, h, w) to (B, C, height, width) at the bottom/right by mirror symmetry
    (edge pixel repeated, as ``numpy.pad(mode="symmetric")``), for any extension length."""
    import torch

    def index(n, size):
        i = torch.arange(size, device=t.device) % (2 * n)
        return torch.where(i < n, i, 2 * n - 1 - i)

    h, w = t.shape[2:]
    return t.index_select(2, index(h, height)).index_select(3, index(w, width))


def _predict(module, image, mask):
    """``image`` (B, 3, H, W) in [0, 1], ``mask`` (B, 1, H, W), 1 = hole -> (B, 3, H, W) in [0, 1]."""
    import torch

    h, w = image.shape[2:]
    k, low = module.size_multiple, module.min_size
    height = max(low, -(-h // k) * k)
    width = max(low, -(-w // k) * k)
    if (height, width) != (h, w):
        image, mask = _symmetric_extend(image, height, width), _symmetric_extend(mask, height, width)
    x = (image * 2 - 1) * (1 - mask)  # the reference's evaluate(): holes are 0
    out = module(torch.cat([x, mask], dim=1))
    return ((out[:, :, :h, :w] + 1) / 2).clamp(0, 1)


def _save_state(state: dict, path) -> None:
    """Write the bare state_dict (the official format)."""
    write_checkpoint(state, path)


SPEC = ModelSpec(
    name="gmcnn",
    build=_build,
    load=_load,
    predict=_predict,
    save_state=_save_state,
    weights_help=(
        "The official PyTorch GMCNN weights (CelebA-HQ 256, rectangular holes) are on Google Drive, linked from "
        f"https://github.com/shepnerd/inpainting_gmcnn#for-pytorch-implementations: {_DRIVE_CELEBAHQ}; the file "
        "to use is the <epoch>_net_GM.pth inside (the TensorFlow checkpoints of that page belong to the TensorFlow GMCNN, a different network: method 'gmcnn_tf')"
    ),
    fixed_size=None,
    size_multiple=4,
    tile_size=512,
    margin=64,
    registry=(
        WeightsEntry(
            name="celebahq256", files=(WeightsFile("net_GM.pth"),), description="GMCNN trained on CelebA-HQ 256",
            instructions=f"Download it from {_DRIVE_CELEBAHQ} (Google Drive) and pass its <epoch>_net_GM.pth.",
            licence="MIT (github.com/shepnerd/inpainting_gmcnn)",
        ),
    ),
)

BACKENDS = [
    make_backend(SPEC, "GMCNN: generative multi-column CNN with 7x7/5x5/3x3 dilated columns (NeurIPS 2018; "
                       "needs trained weights)"),
]
