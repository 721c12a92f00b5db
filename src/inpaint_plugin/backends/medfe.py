"""MEDFE backend (Mutual Encoder-Decoder with Feature Equalizations, Liu et al., ECCV 2020).

The network (``inpaint_plugin.deep.nets.medfe``, imported lazily) takes one 256 x 256 RGB image; larger
or other-sized images are handled by :func:`inpaint_plugin.deep.run` (crops around the holes,
resized to 256, by default). Weights: the authors' ``EN.pkl``, ``DE.pkl`` and ``MEDEF.pkl`` in one folder.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..deep._backend import make_backend
from ..deep._checkpoint import load_checked, load_state_dict_file
from ..deep._spec import ModelSpec
from ..deep._weights import WeightsEntry, WeightsFile

DRIVE_FOLDER = "https://drive.google.com/drive/folders/1uLC9YN_34mLod5kIE1nMb9P5L40Iqbkp"
#: Official file of each sub-module, as test.py of the reference loads them (note the spelling MEDEF).
FILES = {"netEN": "EN.pkl", "netMEDFE": "MEDEF.pkl", "netDE": "DE.pkl"}

WEIGHTS_HELP = (
    "MEDFE weights are the files EN.pkl, DE.pkl and MEDEF.pkl of one sub-folder (Places2, CelebA or Paris "
    f"StreetView) of the authors' Google Drive folder {DRIVE_FOLDER} (linked from the README of "
    "github.com/KumapowerLIU/Rethinking-Inpainting-MEDFE); download one sub-folder and pass that folder"
)


def _build():
    from ..deep.nets.medfe import MEDFE

    return MEDFE()


def _folder(path) -> Path:
    path = Path(os.fspath(path))
    if path.is_file() and path.name in FILES.values():
        return path.parent
    if not path.is_dir():
        raise ValueError(f"weights={str(path)!r}: MEDFE weights must be a folder holding "
                         f"{', '.join(FILES.values())}. {WEIGHTS_HELP}.")
    return path


def _load(module, path) -> None:
    """Load the official EN.pkl / MEDEF.pkl / DE.pkl of the folder ``path`` (training-only ``loss.*``
    keys of MEDEF.pkl may be absent)."""
    folder = _folder(path)
    missing = [name for name in FILES.values() if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"weights={str(folder)!r}: missing {', '.join(missing)} (a MEDFE weights folder holds "
                         f"{', '.join(FILES.values())}). {WEIGHTS_HELP}.")
    for attr, name in FILES.items():
        sub = getattr(module, attr)
        state = load_state_dict_file(folder / name, argument="weights")
        if attr == "netMEDFE":
            own = sub.state_dict()
            state = {**{k: v for k, v in own.items() if k.startswith("loss.")}, **state}
        load_checked(sub, state, path=folder / name)


def _predict(module, image, mask):
    """``image`` [B, 3, 256, 256] in [0, 1], ``mask`` [B, 1, 256, 256] (1 = hole) -> [B, 3, 256, 256] in [0, 1].

    As the reference's test.py: the image is scaled to [-1, 1], hole pixels get the network's fill value,
    the valid mask is appended, and the tanh output is mapped back to [0, 1].
    """
    hole = (mask >= 0.5).to(image.dtype)
    out = module(module.make_input(image * 2.0 - 1.0, hole))
    return (out + 1.0) * 0.5


def _save_state(state: dict, path) -> None:
    """Write EN.pkl, MEDEF.pkl and DE.pkl (plain state_dicts of the three parts) into the folder ``path``."""
    from ..deep._checkpoint import write_checkpoint

    folder = Path(os.fspath(path))
    folder.mkdir(parents=True, exist_ok=True)
    for attr, name in FILES.items():
        prefix = attr + "."
        write_checkpoint({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, folder / name)


SPEC = ModelSpec(
    name="medfe",
    build=_build,
    load=_load,
    predict=_predict,
    save_state=_save_state,
    weights_help=WEIGHTS_HELP,
    fixed_size=256,
    margin=32,
    registry=[
        WeightsEntry(
            name="places2",
            files=[WeightsFile(name) for name in FILES.values()],
            folder=True,
            description="trained on Places2",
            licence="CC BY-NC-SA 4.0, non-commercial: academic research use only "
                    "(github.com/KumapowerLIU/Rethinking-Inpainting-MEDFE)",
            instructions=f"The official weights are on Google Drive ({DRIVE_FOLDER}) and cannot be fetched "
                         "automatically.",
        )
    ],
)

BACKENDS = [
    make_backend(
        SPEC,
        "MEDFE deep network (Liu et al. 2020): mutual encoder-decoder with feature equalisations; "
        "256x256 network input, crops around holes for other sizes",
    )
]
