"""SPL (Zhang et al., IJCAI 2021): context-aware inpainting with learned semantic priors, 256 x 256.

The network lives in :mod:`inpaint_plugin.deep.nets.spl`; this module describes how to build it, load
the official checkpoints of ``WendongZh/SPL`` and run it (image in ``[0, 1]``; the network sets holes
to 1 itself and feeds its semantic learner a x2 nearest-upsampled copy). An official checkpoint
(``x_*_epoch_*.pt``) is the ``state_dict`` of the whole training model: the generator under
``generator.module.`` (DistributedDataParallel), the discriminator and loss buffers beside it; only the
generator is loaded (strictly). torch is imported only inside the functions.
"""
from __future__ import annotations

from pathlib import Path

from ..deep._backend import make_backend
from ..deep._checkpoint import load_checked, load_state_dict_file, write_checkpoint
from ..deep._spec import ModelSpec
from ..deep._weights import WeightsEntry, WeightsFile

_DRIVE = "https://drive.google.com/drive/folders/1oAr61KlWVTypHgL_DV4rr1YbAw4BDf0N?usp=sharing"
_PREFIX = "generator."


def _build():
    from ..deep.nets.spl import SPL

    return SPL()


#: the other sub-modules of the reference's training model (``models_inpaint.py``, ``InpaintingModel``:
#: ``generator``, ``discriminator``, the TResNet-L teacher ``tresnet_xL_hold`` and the
#: ``AdversarialLoss`` buffers ``real_label``/``fake_label``), whose entries an official checkpoint holds
_OTHERS = ("discriminator.", "tresnet_xL_hold.", "adversarial_loss.")


def generator_state_dict(state: dict) -> dict:
    """The generator's entries of an SPL checkpoint.

    As the reference's ``eval_final.py`` does, every ``module.`` is removed from the keys; when keys
    start with ``generator.``, those entries are kept (prefix removed) and those of the training model's
    other parts (discriminator, TResNet teacher, loss buffers: :data:`_OTHERS`) dropped; any other key
    is kept as it is, so that strict loading reports it as unexpected. Without ``generator.`` keys the
    checkpoint is taken as a bare generator state_dict.
    """
    state = {k.replace("module.", ""): v for k, v in state.items()}
    if any(k.startswith(_PREFIX) for k in state):
        return {(k[len(_PREFIX):] if k.startswith(_PREFIX) else k): v for k, v in state.items()
                if not k.startswith(_OTHERS)}
    return state


def _load(module, path: Path) -> None:
    """Load the generator of an official checkpoint strictly (see :func:`generator_state_dict`)."""
    load_checked(module, generator_state_dict(load_state_dict_file(path)), path=path)


def _predict(module, image, mask):
    """``image`` (B, 3, 256, 256) in [0, 1], ``mask`` (B, 1, 256, 256), 1 = hole -> (B, 3, 256, 256) in [0, 1]."""
    out, _ = module(image, mask)
    return out.clamp(0, 1)


def _save_state(state: dict, path) -> None:
    """Write a checkpoint laid out as the official ones: the generator under ``generator.module.`` and
    the adversarial loss' label buffers (the training-only discriminator is left out)."""
    import torch

    out = {f"{_PREFIX}module.{k}": v for k, v in state.items()}
    out["adversarial_loss.real_label"] = torch.tensor(1.0)
    out["adversarial_loss.fake_label"] = torch.tensor(0.0)
    write_checkpoint(out, path)


SPEC = ModelSpec(
    name="spl",
    build=_build,
    load=_load,
    predict=_predict,
    save_state=_save_state,
    weights_help=(
        "Official SPL weights (Places2, CelebA, Paris StreetView; 256x256, irregular holes) are in the Google Drive "
        f"folder linked from https://github.com/WendongZh/SPL: {_DRIVE}; pass the .pt file"
    ),
    fixed_size=256,
    size_multiple=4,
    margin=32,
    registry=tuple(
        WeightsEntry(name=name, files=(WeightsFile(f"spl_{name}.pt"),), description=f"SPL trained on {name}",
                     instructions=f"Download the {name} .pt file from the Google Drive folder {_DRIVE}.",
                     licence="not stated (github.com/WendongZh/SPL has no licence file): research use only")
        for name in ("places2", "celeba", "paris")
    ),
)

BACKENDS = [
    make_backend(SPEC, "SPL: semantic prior learner + SPADE residual generator with region normalisation "
                       "(IJCAI 2021; 256x256 crops; needs trained weights)"),
]
