"""DeepFill v1 (Yu et al., CVPR 2018): coarse-to-fine network with contextual attention.

The network lives in :mod:`inpaint_plugin.deep.nets.deepfill_v1` (module tree of
``daa233/generative-inpainting-pytorch``). That repository publishes two PyTorch checkpoints, both
accepted here:

- ``gen_00430000.pt``: retrained with the port on ImageNet, a bare ``Generator.state_dict()``;
- ``torch_model.p``: the official TensorFlow ImageNet model converted by hand, a flat dict whose
  generator keys carry the prefix ``netG.`` (discriminator keys, if any, are ignored).

Both were made when the port normalised the attention patches by ``max(||w||, 1e-4)`` (as the official
TensorFlow code does), so the network is built with ``patch_norm="max"``. Inputs are RGB in
``[-1, 1]`` with holes set to 0 and the mask; sides must be multiples of 8. torch is imported only
inside the functions.
"""
from __future__ import annotations

from pathlib import Path

from ..deep._backend import make_backend
from ..deep._checkpoint import load_checked, load_state_dict_file, write_checkpoint
from ..deep._spec import ModelSpec
from ..deep._weights import WeightsEntry, WeightsFile

_REPO = "https://github.com/daa233/generative-inpainting-pytorch"
_RETRAINED = "https://drive.google.com/open?id=1qbfA5BP9yzdTFFmiOTvYARUYgW1zwBBK"
_CONVERTED = "https://drive.google.com/file/d/1vz2Qp12_iwOiuvLWspLHrC1UIuhSLojx"
_OFFICIAL = "https://github.com/JiahuiYu/generative_inpainting/tree/v1.0.0"
#: the official TF checkpoint folders (v1.0.0 README, "Pretrained models")
_TF_FOLDERS = (
    ("celebahq", "CelebA-HQ", "https://drive.google.com/open?id=1lpluFXyWDxTY6wcjixQGWX8jxUUMlyBW"),
    ("places2", "Places2", "https://drive.google.com/open?id=1M3AFy7x9DqXaI-fINSynW7FJSXYROfv-"),
    ("celeba", "CelebA", "https://drive.google.com/open?id=1sP8ViF3mxUMN--xpKqonEeW9d8S8pJEo"),
    ("imagenet", "ImageNet", "https://drive.google.com/open?id=136APWSdPRAF7-XoS8sMBTLV-X3f-ogE0"),
)
#: key prefix of the generator inside the training wrapper (``Trainer``) of the converted TF model
_WRAPPER_PREFIX = "netG."


def _build():
    from ..deep.nets.deepfill_v1 import DeepFillV1

    return DeepFillV1(patch_norm="max")


def _tf_name(key: str) -> str:
    """The official TF variable of one of our keys (``inpaint_model.py`` / ``inpaint_ops.py`` of
    JiahuiYu/generative_inpainting v1.0.0): everything lives in ``variable_scope('inpaint_net')``; the
    stage-2 conv branch is ``xconv*`` (our ``fine_generator.conv*``); ``gen_deconv(name=N)`` opens the scope
    ``N`` around ``gen_conv(name=N + '_conv')``, hence ``conv13_upsample/conv13_upsample_conv`` for our
    ``conv13``; ``tf.layers.conv2d`` names its variables ``kernel`` (HWIO) and ``bias``. The same table is
    in ``shared/conformance/deepfill_v1/spec.json`` (``tf_to_port_mapping``)."""
    stage, layer, _ = key.split(".", 2)
    if stage == "fine_generator" and layer.startswith("conv"):
        layer = "x" + layer
    if layer in ("conv13", "conv15", "allconv13", "allconv15"):
        layer = f"{layer}_upsample/{layer}_upsample_conv"
    return f"inpaint_net/{layer}/{'kernel' if key.endswith('weight') else 'bias'}"


#: convolutions reading the image (channels 0..2) and writing it, whose BGR channels are reversed
_BGR_IN = ("coarse_generator.conv1.conv.weight", "fine_generator.conv1.conv.weight",
           "fine_generator.pmconv1.conv.weight")
_BGR_OUT = ("coarse_generator.conv17.conv.weight", "coarse_generator.conv17.conv.bias",
            "fine_generator.allconv17.conv.weight", "fine_generator.allconv17.conv.bias")
#: other sub-modules of the port's training wrapper (``Trainer``: netG, localD, globalD)
_WRAPPER_OTHERS = ("localD.", "globalD.")


def _load(module, path: Path) -> None:
    """Load strictly: an official TensorFlow checkpoint (folder, one of its files or the prefix; see
    :func:`~inpaint_plugin.deep._tf_checkpoint.generator_state_dict`), ``gen_*.pt`` (bare state_dict)
    or ``torch_model.p`` (``netG.``-prefixed keys beside the discriminators ``localD.``/``globalD.``)."""
    from ..deep._tf_checkpoint import generator_state_dict, is_tf_checkpoint

    if is_tf_checkpoint(path):
        state = generator_state_dict(path, "deepfill_v1", module.state_dict(), _tf_name,
                                     bgr_inputs=_BGR_IN, bgr_outputs=_BGR_OUT)
        load_checked(module, state, path=path)
        return
    state = load_state_dict_file(path)
    if any(k.startswith(_WRAPPER_PREFIX) for k in state):
        # the generator's keys; anything but the wrapper's discriminators is reported as unexpected
        state = {(k[len(_WRAPPER_PREFIX):] if k.startswith(_WRAPPER_PREFIX) else k): v for k, v in state.items()
                 if not k.startswith(_WRAPPER_OTHERS)}
    load_checked(module, state, path=path)


def _predict(module, image, mask):
    """``image`` (B, 3, H, W) in [0, 1], ``mask`` (B, 1, H, W), 1 = hole -> (B, 3, H, W) in [0, 1].

    The items run one at a time: the contextual attention of the network uses one mask per call.
    """
    import torch

    mask = (mask > 0.5).to(image.dtype)
    x = (image * 2 - 1) * (1 - mask)
    out = [module(x[i : i + 1], mask[i : i + 1])[1] for i in range(image.shape[0])]
    return ((torch.cat(out) + 1) / 2).clamp(0, 1)


def _save_state(state: dict, path) -> None:
    """Write the bare generator state_dict (the ``gen_*.pt`` format)."""
    write_checkpoint(state, path)


SPEC = ModelSpec(
    name="deepfill_v1",
    build=_build,
    load=_load,
    predict=_predict,
    save_state=_save_state,
    weights_help=(
        f"The PyTorch DeepFill v1 weights are linked from {_REPO} (README): the model retrained on ImageNet "
        f"(folder with gen_00430000.pt, {_RETRAINED}) and the official TensorFlow ImageNet model converted to "
        f"PyTorch (torch_model.p, {_CONVERTED}), both on Google Drive; the official TensorFlow checkpoint folders of "
        "https://github.com/JiahuiYu/generative_inpainting/tree/v1.0.0 (CelebA-HQ, Places2, CelebA, ImageNet) load too: "
        "pass the folder (or its .index file)"
    ),
    fixed_size=None,
    size_multiple=8,
    tile_size=512,
    margin=64,
    registry=(
        WeightsEntry(name="imagenet", files=(WeightsFile("gen_00430000.pt", url=_RETRAINED),),
                     description="DeepFill v1 retrained with the PyTorch port on ImageNet (256x256, rectangles)",
                     instructions=f"Download gen_00430000.pt from the folder {_RETRAINED} (Google Drive).",
                     licence="not stated for these weights (the port's code is MIT); DeepFill's official release is "
                             "CC BY-NC 4.0: treat as non-commercial"),
        WeightsEntry(name="imagenet_tf", files=(WeightsFile("torch_model.p", url=_CONVERTED),),
                     description="The official TensorFlow ImageNet model, converted to PyTorch",
                     instructions=f"Download torch_model.p from {_CONVERTED} (Google Drive).",
                     licence="CC BY-NC 4.0, non-commercial (the official DeepFill release, github.com/JiahuiYu/generative_inpainting)"),
        *(WeightsEntry(name=f"{name}_tf_folder", files=(WeightsFile("checkpoint"),), folder=True,
                       description=f"The official TensorFlow {label} model (checkpoint folder, read without TensorFlow)",
                       instructions=f"Download the folder {url} (Google Drive; linked from {_OFFICIAL} README) and "
                                    "pass it (rename checkpoint.txt to checkpoint, or leave it: both are read).",
                       licence="CC BY-NC 4.0, non-commercial (the official DeepFill release, "
                               "github.com/JiahuiYu/generative_inpainting)")
          for name, label, url in _TF_FOLDERS),
    ),
)

BACKENDS = [
    make_backend(SPEC, "DeepFill v1: coarse-to-fine network with contextual attention (CVPR 2018; "
                       "needs trained weights)"),
]
