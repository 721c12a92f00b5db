"""GMCNN, TensorFlow version (Wang et al., NeurIPS 2018): the network of the official TensorFlow
checkpoints of ``shepnerd/inpainting_gmcnn`` (Paris StreetView, Places2, CelebA-HQ).

The network lives in :mod:`inpaint_plugin.deep.nets.gmcnn_tf` (it differs from the PyTorch GMCNN of
method ``gmcnn``: 5 input channels, zero 'SAME' padding, other kernel sizes). Checkpoints are TF1
``tf.train.Saver`` folders, read without TensorFlow by :mod:`inpaint_plugin.deep._tf_checkpoint`.
Facts from ``tensorflow/test.py`` and ``GMCNNModel.evaluate`` (``tensorflow/net/network.py``): the image
is read with ``cv2.imread`` (BGR) and scaled to ``x / 127.5 - 1``, holes set to 0, the generator sees
``cat[x, ones, mask]``, its output (clipped to [-1, 1]) is composited into the known pixels; sides are
cut to multiples of 4. The loader reverses the BGR channels of the three first convolutions and of the
last, so the network here takes RGB. torch is imported only inside the functions.
"""
from __future__ import annotations

from pathlib import Path

from ..deep._backend import make_backend
from ..deep._checkpoint import load_checked, load_state_dict_file
from ..deep._spec import ModelSpec
from ..deep._weights import WeightsEntry, WeightsFile

_REPO = "https://github.com/shepnerd/inpainting_gmcnn"
#: README of the repository, "Testing": "Download pretrained models through the following links"
_DRIVE = {
    "paris_streetview": "https://drive.google.com/file/d/1wgesxSUfKGyPwGQMw6IXZ9GLeZ7YNQxu/view?usp=sharing",
    "celebahq_256": "https://drive.google.com/file/d/1zvMMzMCXNxzbYJ_6SEwt3hUShD3Xnz9W/view?usp=sharing",
    "places2": "https://drive.google.com/file/d/1aakVS0CPML_Qg-PuXGE1Xaql96hNEKOU/view?usp=sharing",
}
_BGR_IN = ("b1conv1.weight", "b2conv1.weight", "b3conv1.weight")
_BGR_OUT = ("mergeconv18.weight", "mergeconv18.bias")


def _build():
    from ..deep.nets.gmcnn_tf import GMCNNTF

    return GMCNNTF()


def _tf_name(key: str) -> str:
    """Official variable of one of our keys: ``tf.layers.conv2d(name=N)`` inside
    ``variable_scope('inpaint_net')``; the ``*conv13_upsample`` / ``*conv15_upsample`` layers sit in a
    scope of that name: ``inpaint_net/b2conv13_upsample/b2conv13_upsample_conv/kernel``."""
    layer, kind = key.rsplit(".", 1)
    if layer.endswith("_upsample"):
        layer = f"{layer}/{layer}_conv"
    return f"inpaint_net/{layer}/{'kernel' if kind == 'weight' else 'bias'}"


def _load(module, path: Path) -> None:
    """Load strictly: an official TF checkpoint (folder, one of its files or the prefix), or a state_dict
    file with our keys (what ``weights import`` stores)."""
    from ..deep._tf_checkpoint import generator_state_dict, is_tf_checkpoint

    if is_tf_checkpoint(path):
        state = generator_state_dict(path, "gmcnn_tf", module.state_dict(), _tf_name,
                                     bgr_inputs=_BGR_IN, bgr_outputs=_BGR_OUT)
    else:
        state = load_state_dict_file(path)
    load_checked(module, state, path=path)


def _predict(module, image, mask):
    """``image`` (B, 3, H, W) in [0, 1], ``mask`` (B, 1, H, W), 1 = hole -> (B, 3, H, W) in [0, 1]."""
    import torch

    mask = (mask > 0.5).to(image.dtype)
    x = (image * 2 - 1) * (1 - mask)
    out = module(torch.cat([x, torch.ones_like(mask), mask], dim=1))
    return ((out + 1) / 2).clamp(0, 1)


def _save_state(state: dict, path) -> None:
    """Write the official format: a TF checkpoint folder (``checkpoint``, ``snap-0.index``,
    ``snap-0.data-00000-of-00001``) with the official names, HWIO kernels and BGR image channels."""
    from ..deep._tf_checkpoint import write_checkpoint

    out = {}
    for key, t in state.items():
        a = t.detach().cpu().numpy().copy()
        if key in _BGR_IN:
            a[:, :3] = a[:, 2::-1].copy()
        if key in _BGR_OUT:
            a[:3] = a[2::-1].copy()
        out[_tf_name(key)] = a.transpose(2, 3, 1, 0) if a.ndim == 4 else a
    write_checkpoint(path, out)


SPEC = ModelSpec(
    name="gmcnn_tf",
    build=_build,
    load=_load,
    predict=_predict,
    save_state=_save_state,
    weights_help=(
        f"The official TensorFlow GMCNN checkpoints are zip files on Google Drive, linked from {_REPO} (README, "
        f"Testing): Paris StreetView {_DRIVE['paris_streetview']}, CelebA-HQ 256 {_DRIVE['celebahq_256']}, "
        f"Places2 {_DRIVE['places2']}; unzip and pass the folder (the one holding 'checkpoint' and '*.index')"
    ),
    fixed_size=None,
    size_multiple=4,
    tile_size=512,
    margin=64,
    registry=tuple(
        WeightsEntry(name=name, files=(WeightsFile("checkpoint"),), folder=True,
                     description=f"GMCNN (TensorFlow) trained on {name.replace('_', ' ')}",
                     instructions=f"Download the zip from {url} (Google Drive), unzip it and pass the folder.",
                     licence="MIT (github.com/shepnerd/inpainting_gmcnn)")
        for name, url in _DRIVE.items()
    ),
)

BACKENDS = [
    make_backend(SPEC, "GMCNN (TensorFlow checkpoints): generative multi-column CNN, 7x7/5x5/3x3 columns "
                       "(NeurIPS 2018; needs the official TF checkpoint folder)"),
]
