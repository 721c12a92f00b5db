"""LaMa (Suvorov et al., WACV 2022): big-lama, a ResNet of fast Fourier convolutions whose global
branch sees the whole image, so it fills large holes and works far above its 256x256 training size.

The network lives in :mod:`inpaint_plugin.deep.nets.lama` (``FFCResNetGenerator`` of
``advimman/lama``, big-lama configuration). Conventions of the reference's ``bin/predict.py``: RGB in
[0, 1], holes set to 0, the mask (1 = hole, any non-zero pixel counts) as a fourth channel; a sigmoid
output; sides padded at the bottom/right to a multiple of 8 with ``numpy.pad(mode='symmetric')``.

Resolution strategy (``resolution='auto'``): the whole image at full resolution, padded as above, when
its longest side is at most ``tile_size`` = 2048, as the reference does; this is what LaMa is made for
(its Fourier units cover the whole feature map, and no training size is assumed). On the CPU a
2048x2048 image peaks at about 4.9 GiB of process memory (the network's weights and their folded copy
included) and takes about 80 CPU seconds (one thread, commit after 43077e0; ``benchmarks/bench_deep.py``
has the current figures); memory grows with the pixel count. The whole-image run reports its 20 steps
(encoder, each residual block, decoder) through ``progress``, and a raising callback stops it between
two of them. Larger images are filled with overlapping 2048x2048 tiles, only those
holding holes being run; ``resolution='crop'`` runs windows around the holes with ``margin`` = 128 pixels of context (faster
for small holes in a large image).

Weights: the published big-lama checkpoint, ``big-lama/models/best.ckpt`` in ``big-lama.zip`` (linked
from the README of https://github.com/advimman/lama), a PyTorch Lightning checkpoint whose
``state_dict`` holds the generator under ``generator.`` (plus discriminator, loss and evaluator entries
that are ignored) and whose ``hyper_parameters`` hold an omegaconf config. It is read by the restricted
reader :mod:`inpaint_plugin.deep._torch_zip`, which takes the tensors and never runs pickle code, so
omegaconf or Lightning are neither needed nor imported. IOPaint's TorchScript ``big-lama.pt`` (a trace
of the reference's ``bin/to_jit.py`` wrapper, keys ``model.generator.*``) is read the same way, without
``torch.jit.load`` (which would run the archive's code): only the tensors of its ``data.pkl`` are used.
The downloaded ``big-lama.zip`` (its ``best.ckpt`` is extracted to a temporary file), the unzipped
``big-lama`` folder (with ``models/best.ckpt``), ``.safetensors`` files and plain state
dicts (with or without the ``generator.`` prefix) load too. The licence of the published weights is not
stated (the code is BSD-3-Clause, per the repository's LICENSE; the weights were trained on
Places365-Challenge, whose images are for non-commercial research and educational use): treat them as
research-use only.
"""
from __future__ import annotations

from pathlib import Path

from ..deep._backend import make_backend
from ..deep._checkpoint import load_checked, load_state_dict_file, write_checkpoint
from ..deep._spec import ModelSpec
from ..deep._weights import WeightsEntry, WeightsFile

_REPO = "https://github.com/advimman/lama"
_BIG_LAMA_ZIP = "https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip"
_DRIVE = "https://drive.google.com/drive/folders/1B2x7eQDgecTL0oh3LSIBDGj0fTxs6Ips"
_IOPAINT_PT = "https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt"
#: preferred places of the generator in a checkpoint, by the dotted prefix of its keys
_PREFIXES = ("state_dict.generator.", "generator.", "model.generator.", "state_dict.", "")


def _build():
    from ..deep.nets.lama import FFCResNetGenerator

    return FFCResNetGenerator()


def _generator_state(flat: dict, keys) -> dict:
    """The generator's tensors among ``flat`` (dotted names from any wrapper): the prefix under which all
    of ``keys`` are found (Lightning ``state_dict.generator.``, TorchScript ``model.generator.`` ...)."""
    keys = list(keys)
    anchor = keys[0]
    found = {k[: -len(anchor)] for k in flat if k.endswith(anchor)}
    complete = [p for p in found if all(p + k in flat for k in keys)]
    if not complete:  # let load_checked report what is missing, under the likeliest prefix
        complete = sorted(found, key=len)[:1] or [""]
    prefix = min(complete, key=lambda p: (_PREFIXES.index(p) if p in _PREFIXES else len(_PREFIXES), len(p)))
    return {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}


def _tensors_in_download(path: Path) -> dict:
    """The tensors of ``models/best.ckpt`` inside the downloaded ``big-lama.zip`` (extracted to a
    temporary file, read with the restricted reader, deleted)."""
    import shutil
    import tempfile
    import zipfile

    from ..deep._torch_zip import read_torch_zip, tensors_by_name

    with zipfile.ZipFile(path) as zf:
        members = sorted((n for n in zf.namelist() if n.endswith("models/best.ckpt")), key=len)
        if not members:
            return tensors_by_name(read_torch_zip(path))  # its error names what the zip holds
        with tempfile.TemporaryDirectory(prefix="inpaint-plugin-lama-") as tmp:
            inner = Path(tmp) / "best.ckpt"  # our own name: nothing of the member's path is used
            with zf.open(members[0]) as src, open(inner, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
            try:
                return tensors_by_name(read_torch_zip(inner))
            except ValueError as e:  # name the zip and its member, not the temporary file
                raise ValueError(f"weights={str(path)!r} ({members[0]}): "
                                 f"{str(e)[len(f'weights={str(inner)!r}: '):]}") from None


def _load(module, path: Path) -> None:
    """Load big-lama weights (``best.ckpt``, the ``big-lama`` folder or the downloaded ``big-lama.zip``,
    IOPaint's ``big-lama.pt``, a ``.safetensors`` or plain state_dict file) strictly; no pickle code of
    the file is run."""
    import zipfile

    from ..deep._torch_zip import is_torch_zip, read_torch_zip, tensors_by_name

    path = Path(path)
    if path.is_dir():
        inner = next((p for p in (path / "models" / "best.ckpt", path / "best.ckpt") if p.is_file()), None)
        if inner is None:
            raise ValueError(f"weights={str(path)!r}: a folder without models/best.ckpt (the unzipped big-lama "
                             f"folder is expected); or pass the checkpoint file itself")
        path = inner
    is_zip = path.suffix.lower() != ".safetensors" and path.is_file() and zipfile.is_zipfile(path)
    if is_zip and is_torch_zip(path):
        flat = tensors_by_name(read_torch_zip(path))
    elif is_zip:
        try:
            flat = _tensors_in_download(path)
        except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError) as e:
            raise ValueError(f"weights={str(path)!r}: could not extract the checkpoint from the zip file "
                             f"(truncated or corrupt?): {e}") from None
    else:  # safetensors, or the legacy (pre-zip) torch format: weights_only=True
        flat = load_state_dict_file(path)
    if not flat:
        raise ValueError(f"weights={str(path)!r}: the checkpoint holds no tensors")
    own = module.state_dict()
    load_checked(module, _generator_state(flat, own), path=path)


def _net_input(image, mask):
    """``(x, h, w)``: the generator's input ``cat([image * (1 - mask), mask])`` (mask: any value > 0 is a
    hole), sides padded by edge replication to multiples of 8 of at least 16 where they are not
    (:func:`run` already pads to multiples of 8 with the reference's symmetric mode), and the sides to
    crop the output back to."""
    import torch
    import torch.nn.functional as F

    mask = (mask > 0).to(image.dtype)
    x = torch.cat([image * (1 - mask), mask], dim=1)
    h, w = x.shape[-2:]
    ph, pw = max(16, -(-h // 8) * 8) - h, max(16, -(-w // 8) * 8) - w
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, h, w


def _inference(module) -> bool:
    """Whether ``module`` may run its folded eval-mode path (no gradients wanted, not training)."""
    import torch

    return not torch.is_grad_enabled() and not module.training


def _predict(module, image, mask):
    """``image`` (B, 3, H, W) in [0, 1], ``mask`` (B, 1, H, W), > 0 = hole -> the generator's output
    (B, 3, H, W) in (0, 1), whole image (the caller composites). Without gradients (inference,
    validation) the generator's folded :meth:`~inpaint_plugin.deep.nets.lama.FFCResNetGenerator.infer`
    computes it; with them (training) its ``forward``."""
    x, h, w = _net_input(image, mask)
    y = module.infer(x) if _inference(module) else module(x)
    return y[..., :h, :w]


def _predict_holes(module, image, mask, step=None):
    """:func:`_predict` where only the hole pixels are used: the decoder runs near the holes only
    (``infer(holes_only=True)``); elsewhere the result is the input image. ``step(done, total)`` is
    called after the encoder, each residual block and the decoder (20 steps for big-lama)."""
    x, h, w = _net_input(image, mask)
    if _inference(module):
        y = module.infer(x, holes_only=True, step=step)
    else:
        y = module(x)
        if step is not None:
            step(1, 1)
    return y[..., :h, :w]


def _save_state(state: dict, path) -> None:
    """Write the official form: a Lightning-shaped ``{'state_dict': {'generator.<key>': ...}}`` (what
    the reference's ``load_checkpoint`` reads; plain containers, so ``weights_only=True`` reads it too)."""
    write_checkpoint({"state_dict": {f"generator.{k}": v for k, v in state.items()}}, path)


SPEC = ModelSpec(
    name="lama",
    build=_build,
    load=_load,
    predict=_predict,
    predict_holes=_predict_holes,
    reports_steps=True,
    save_state=_save_state,
    weights_help=(
        f"The published big-lama weights are big-lama/models/best.ckpt in big-lama.zip ({_BIG_LAMA_ZIP}, "
        f"linked from {_REPO}; also in the Google Drive folder {_DRIVE}); pass the zip, the unzipped big-lama "
        f"folder or best.ckpt. IOPaint's TorchScript big-lama.pt ({_IOPAINT_PT}) works too. The licence of the "
        "weights is not stated: research use"
    ),
    fixed_size=None,
    size_multiple=8,
    tile_size=2048,
    margin=128,
    registry=(
        WeightsEntry(name="big-lama", files=(WeightsFile("big-lama.zip", url=_BIG_LAMA_ZIP),),
                     description="big-lama (Places365-Challenge, 256x256 crops, large masks); licence of the "
                                 "weights unclear: research use",
                     instructions=f"Download big-lama.zip from {_BIG_LAMA_ZIP} (or {_DRIVE}) and pass it, or "
                                  "the unzipped big-lama folder, or big-lama/models/best.ckpt.",
                     licence="not stated for the weights (the code is BSD-3-Clause, github.com/advimman/lama): "
                             "research use"),
        WeightsEntry(name="iopaint-big-lama", files=(WeightsFile("big-lama.pt", url=_IOPAINT_PT),),
                     description="IOPaint's TorchScript export of the same big-lama weights (md5 "
                                 "e3aa4aaa15225a33ec84f9f4bc47e500); only its tensors are read",
                     instructions=f"Download big-lama.pt from {_IOPAINT_PT} and pass its path.",
                     licence="not stated for the weights (the code is BSD-3-Clause, github.com/advimman/lama): "
                             "research use"),
    ),
)

BACKENDS = [
    make_backend(SPEC, "LaMa (big-lama): fast Fourier convolutions with an image-wide receptive field, for large "
                       "holes at any resolution (WACV 2022; needs trained weights)"),
]
