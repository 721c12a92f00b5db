"""DeepFill v2 (Yu et al., ICCV 2019): gated convolutions + contextual attention, two stages.

The network lives in :mod:`inpaint_plugin.deep.nets.deepfill_v2` (module tree of
``nipponjo/deepfillv2-pytorch``, ``model/networks_tf.py``). The official weights are the TensorFlow
checkpoints of ``JiahuiYu/generative_inpainting`` (v2.0.0), converted to PyTorch by nipponjo:
``states_tf_places2.pth`` / ``states_tf_celebahq.pth``, a ``torch.save``'d dict whose ``'G'`` entry
is the generator state_dict (no key prefix). Inputs are RGB in ``[-1, 1]`` with holes set to 0, plus
a ones channel and the mask; sides must be multiples of 8. torch is imported only inside the functions.
"""
from __future__ import annotations

from pathlib import Path

from ..deep._backend import make_backend
from ..deep._checkpoint import load_checked, load_state_dict_file, write_checkpoint
from ..deep._spec import ModelSpec
from ..deep._weights import WeightsEntry, WeightsFile

_REPO = "https://github.com/nipponjo/deepfillv2-pytorch"
_PLACES2 = "https://drive.google.com/u/0/uc?id=1tvdQRmkphJK7FYveNAKSMWC6K09hJoyt&export=download"
_CELEBAHQ = "https://drive.google.com/u/0/uc?id=1fTQVSKWwWcKYnmeemxKWImhVtFQpESmm&export=download"
_OFFICIAL = "https://github.com/JiahuiYu/generative_inpainting/tree/v2.0.0"
#: the official TF checkpoint folders (v2.0.0 README, "Pretrained models")
_TF_FOLDERS = (
    ("places2", "Places2", "https://drive.google.com/drive/folders/1y7Irxm3HSHGvp546hZdAZwuNmhLUVcjO?usp=sharing"),
    ("celebahq", "CelebA-HQ", "https://drive.google.com/drive/folders/1uvcDgMer-4hgWlm6_G9xjvEQGP8neW15?usp=sharing"),
)


def _build():
    from ..deep.nets.deepfill_v2 import DeepFillV2

    return DeepFillV2()


def _tf_name(key: str) -> str:
    """The official TF variable of one of our keys (``inpaint_model.py`` / ``inpaint_ops.py`` of
    JiahuiYu/generative_inpainting v2.0.0): ``variable_scope('inpaint_net')`` holding ``tf.layers.conv2d``
    layers named as our modules (``conv1``, ``xconv1``, ``pmconv1``, ``allconv11``, ...), variables
    ``kernel`` (HWIO) and ``bias``; ``gen_deconv(name=N)`` opens the scope ``N`` around
    ``gen_conv(name=N + '_conv')``, our ``N.conv``. Gated layers keep TF's channel order (features then
    gates, ``tf.split(x, 2, 3)``), as the module does. The same table is in
    ``shared/conformance/deepfill_v2/spec.json`` (``tf_to_port_mapping``)."""
    layer = key.rsplit(".", 2)[0]
    if layer.endswith("_upsample.conv"):
        base = layer[: -len(".conv")]
        layer = f"{base}/{base}_conv"
    return f"inpaint_net/{layer}/{'kernel' if key.endswith('weight') else 'bias'}"


#: convolutions reading the image (channels 0..2) and writing it, whose BGR channels are reversed
_BGR_IN = ("conv1.conv.weight", "xconv1.conv.weight", "pmconv1.conv.weight")
_BGR_OUT = ("conv17.conv.weight", "conv17.conv.bias", "allconv17.conv.weight", "allconv17.conv.bias")


def _load(module, path: Path) -> None:
    """Load strictly: an official TensorFlow checkpoint (folder, one of its files or the prefix; see
    :func:`~inpaint_plugin.deep._tf_checkpoint.generator_state_dict`) or a converted one
    (``{'G': state_dict, ...}`` or a bare state_dict)."""
    from ..deep._tf_checkpoint import generator_state_dict, is_tf_checkpoint

    if is_tf_checkpoint(path):
        state = generator_state_dict(path, "deepfill_v2", module.state_dict(), _tf_name,
                                     bgr_inputs=_BGR_IN, bgr_outputs=_BGR_OUT)
        load_checked(module, state, path=path)
        return
    load_checked(module, load_state_dict_file(path), path=path)


def _predict(module, image, mask):
    """``image`` (B, 3, H, W) in [0, 1], ``mask`` (B, 1, H, W), 1 = hole -> (B, 3, H, W) in [0, 1].

    The items run one at a time: the contextual attention of the network uses one mask per call.
    """
    import torch

    mask = (mask > 0.5).to(image.dtype)
    x = (image * 2 - 1) * (1 - mask)
    out = [
        module(torch.cat([x[i : i + 1], torch.ones_like(mask[i : i + 1]), mask[i : i + 1]], dim=1), mask[i : i + 1])[1]
        for i in range(image.shape[0])
    ]
    return ((torch.cat(out) + 1) / 2).clamp(0, 1)


def _save_state(state: dict, path) -> None:
    """Write ``{'G': state_dict}`` (the converted official format)."""
    write_checkpoint({"G": state}, path)


SPEC = ModelSpec(
    name="deepfill_v2",
    build=_build,
    load=_load,
    predict=_predict,
    save_state=_save_state,
    weights_help=(
        f"The official DeepFill v2 weights converted to PyTorch are linked from {_REPO} (README): "
        f"states_tf_places2.pth ({_PLACES2}) and states_tf_celebahq.pth ({_CELEBAHQ}) on Google Drive; "
        "the official TensorFlow checkpoint folders of https://github.com/JiahuiYu/generative_inpainting/tree/v2.0.0 "
        "(Places2, CelebA-HQ) load too: pass the folder (or its .index file); that repository's states_pt_*.pth "
        "files do not fit"
    ),
    fixed_size=None,
    size_multiple=8,
    tile_size=512,
    margin=64,
    registry=(
        WeightsEntry(name="places2", files=(WeightsFile("states_tf_places2.pth", url=_PLACES2),),
                     description="DeepFill v2 trained on Places2 (256x256, free-form holes)",
                     instructions=f"Download states_tf_places2.pth from {_PLACES2} (Google Drive).",
                     licence="CC BY-NC 4.0, non-commercial (the official DeepFill release, github.com/JiahuiYu/generative_inpainting)"),
        WeightsEntry(name="celebahq", files=(WeightsFile("states_tf_celebahq.pth", url=_CELEBAHQ),),
                     description="DeepFill v2 trained on CelebA-HQ (256x256, free-form holes)",
                     instructions=f"Download states_tf_celebahq.pth from {_CELEBAHQ} (Google Drive).",
                     licence="CC BY-NC 4.0, non-commercial (the official DeepFill release, github.com/JiahuiYu/generative_inpainting)"),
        *(WeightsEntry(name=f"{name}_tf_folder", files=(WeightsFile("checkpoint"),), folder=True,
                       description=f"The official TensorFlow {label} model (checkpoint folder, read without TensorFlow)",
                       instructions=f"Download the folder {url} (Google Drive; linked from {_OFFICIAL} README) "
                                    "and pass it.",
                       licence="CC BY-NC 4.0, non-commercial (the official DeepFill release, "
                               "github.com/JiahuiYu/generative_inpainting)")
          for name, label, url in _TF_FOLDERS),
    ),
)

BACKENDS = [
    make_backend(SPEC, "DeepFill v2: gated convolutions with contextual attention, two stages (ICCV 2019; "
                       "needs trained weights)"),
]
