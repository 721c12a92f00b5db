"""PEN-Net (Zeng et al., CVPR 2019): pyramid-context encoder with attention transfer, 256 x 256.

The network lives in :mod:`inpaint_plugin.deep.nets.pennet`; this module describes how to build it,
load the official checkpoints of ``researchmm/PEN-Net-for-Inpainting`` (``gen_XXXXX.pth`` =
``{'netG': state_dict}``) and run it (image in ``[-1, 1]``, holes set to 1, mask channel appended, output
``tanh``). torch is imported only inside the functions.
"""
from __future__ import annotations

from pathlib import Path

from ..deep._backend import make_backend
from ..deep._checkpoint import load_checked, load_state_dict_file, write_checkpoint
from ..deep._spec import ModelSpec
from ..deep._weights import WeightsEntry, WeightsFile

_DRIVE = {
    "places2": "https://drive.google.com/open?id=1Hd8DUCJMGnCZz53_19zV4_p06YJ0UDt2",
    "celebahq": "https://drive.google.com/open?id=1Xf_LwP38PLL78817nXfpsHsLuCNWoPX9",
    "dtd": "https://drive.google.com/open?id=1OCrML2j6apv44-TxJvpOLOzavJmxZtJr",
    "facade": "https://drive.google.com/open?id=1cTcEMIuii3jJfc5sstXxMQNyTVcV3I8K",
}


def _build():
    from ..deep.nets.pennet import PENNet

    return PENNet()


def _load(module, path: Path) -> None:
    """Load an official checkpoint (``{'netG': state_dict}``, or the bare state_dict) strictly."""
    load_checked(module, load_state_dict_file(path), path=path)


def _predict(module, image, mask):
    """``image`` (B, 3, 256, 256) in [0, 1], ``mask`` (B, 1, 256, 256), 1 = hole -> (B, 3, 256, 256) in [0, 1]."""
    import torch

    x = image * 2 - 1
    x = x * (1 - mask) + mask  # the reference's test.py: holes are white (1)
    _, out = module(torch.cat([x, mask], dim=1), mask)
    return ((out + 1) / 2).clamp(0, 1)


def _save_state(state: dict, path) -> None:
    """Write ``{'netG': state_dict}`` (the official format)."""
    write_checkpoint({"netG": state}, path)


SPEC = ModelSpec(
    name="pennet",
    build=_build,
    load=_load,
    predict=_predict,
    save_state=_save_state,
    weights_help=(
        "Official PEN-Net weights (Places2, CelebA-HQ, DTD or Facade, trained with square holes at 256x256) are on "
        "Google Drive, linked from https://github.com/researchmm/PEN-Net-for-Inpainting#pretrained-models: "
        f"Places2 {_DRIVE['places2']}, CelebA-HQ {_DRIVE['celebahq']}; the file to use is release_model/"
        "pennet_<dataset>_square256/gen_XXXXX.pth"
    ),
    fixed_size=256,
    size_multiple=64,
    margin=32,
    registry=tuple(
        WeightsEntry(name=name, files=(WeightsFile("gen_pennet.pth"),), description=f"PEN-Net trained on {name}",
                     instructions=f"Download the {name} model from {url} (Google Drive) and pass its gen_XXXXX.pth.",
                     licence="MIT (github.com/researchmm/PEN-Net-for-Inpainting)")
        for name, url in _DRIVE.items()
    ),
)

BACKENDS = [
    make_backend(SPEC, "PEN-Net: pyramid-context encoder with attention transfer from deep to shallow levels "
                       "(CVPR 2019; 256x256 crops; needs trained weights)"),
]
