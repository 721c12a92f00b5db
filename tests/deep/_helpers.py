"""Helpers shared by the tests in ``tests/deep``: the network tests (PEN-Net, GMCNN, SPL), and the toy
spec of the machinery tests (``test_infra.py``, ``test_run.py``).

Plain functions taking the model-specific pieces as arguments. Test modules import them as
``from _helpers import ...``: ``tests/deep`` has no ``__init__.py``, so with pytest's default "prepend"
import mode this folder is on ``sys.path`` (no ``__init__.py`` may be added under ``tests/``: ``tests/napari``
would then shadow the real napari package). ``conftest.py`` here registers this module for pytest's
assertion rewriting, so failures in these helpers report the compared values as in the test modules.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

DATA = Path(__file__).parent / "data"


def seeded(build, seed=0):
    """``build()`` under a forked (CPU) torch RNG seeded with ``seed``, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().eval()


def load_reference(model):
    """The reference's recorded key/shape list: ``data/<model>_state_dict.json``."""
    return json.loads((DATA / f"{model}_state_dict.json").read_text())


def keys_and_shapes(state_dict):
    """``[[key, [shape...]], ...]`` in the state_dict's order (the format of the reference files)."""
    return [[k, list(v.shape)] for k, v in state_dict.items()]


def assert_state_dict_matches_reference(net, reference):
    """``net``'s keys/shapes equal the reference's, in order, and so does the parameter count."""
    ours = keys_and_shapes(net.state_dict())
    assert ours == reference["state_dict"]
    assert sum(int(np.prod(s)) for _, s in ours) == reference["n_params"]


def context_and_hole_inputs(side, hole, band):
    """Inputs for (base, known pixels changed, hole content changed) at ``side`` x ``side``.

    ``hole`` and ``band`` are the (rows, columns) slices of the hole and of the known band that is
    redrawn (it must not overlap the hole). Returns ``batch`` (3, 3, side, side), ``masks``
    (3, 1, side, side) and the boolean hole ``(side, side)``.
    """
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, side, side, generator=gen)
    mask = torch.zeros(1, 1, side, side)
    mask[(..., *hole)] = 1
    known = image.clone()
    known[(..., *band)] = torch.rand(known[(..., *band)].shape, generator=gen)  # outside the hole
    changed = image + mask * torch.rand(1, 3, side, side, generator=gen)  # only hole pixels changed
    batch, masks = torch.cat([image, known, changed]), mask.expand(3, 1, side, side)
    return batch, masks, mask[0, 0].bool()


def assert_hole_depends_on_context_not_on_hole_content(out, hole):
    """``out`` is the output for ``context_and_hole_inputs``: the hole changes with the known pixels only."""
    base, known, changed_hole = out[0][:, hole], out[1][:, hole], out[2][:, hole]
    assert (base - known).abs().max() > 1e-4
    torch.testing.assert_close(base, changed_hole, rtol=0, atol=1e-6)


def check_conformance_vectors(conformance_dir, fill_state_dict, model, spec, reference_to_unit=lambda o: o):
    """Reproduce ``shared/conformance/<model>/case0.npz`` (the reference's output for ``fill.py`` weights)
    through ``spec.predict``; skips when there are no vectors. ``reference_to_unit`` maps the reference's
    output to our [0, 1] range."""
    folder = conformance_dir / model
    if not (folder / "case0.npz").is_file():
        pytest.skip(f"no conformance vectors for {model} in {folder}")
    vectors = json.loads((folder / "spec.json").read_text())
    case = np.load(folder / "case0.npz")
    net = spec.build().eval()
    assert keys_and_shapes(net.state_dict()) == vectors["state_dict"]
    net.load_state_dict(fill_state_dict(net.state_dict(), **vectors["fill"]), strict=True)
    image = torch.from_numpy(case["image_uint8"]).permute(2, 0, 1)[None].float() / 255
    mask = torch.from_numpy(case["mask_uint8"] > 0)[None, None].float()
    with torch.inference_mode():
        got = spec.predict(net, image, mask).numpy()
    want = reference_to_unit(case["output"])
    assert np.abs(got - want).max() <= vectors["tolerance"]["max_abs"]


class ToyNet(torch.nn.Module):
    """A network of one convolution (so that it has a state_dict) from RGB and mask to RGB."""

    def __init__(self, kernel: int = 3):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 3, kernel, padding=kernel // 2)


def toy_spec(predict, *, name="toy", kernel=3, weights_help="Toy weights are made with save_random",
             fixed_size=None, tile_size=64, margin=8, registry=(), builds=None, load_delay=0.0):
    """A :class:`~inpaint_plugin.deep.ModelSpec` of a :class:`ToyNet` with the ``predict`` of the test.

    Its checkpoints are plain state_dicts (``torch.save``), loaded strictly; ``builds`` (a list)
    receives the building thread's id at each build, ``load_delay`` seconds pass in each load (a slow
    checkpoint read: other threads ask for the model meanwhile).
    """
    from inpaint_plugin import deep

    def build():
        if builds is not None:
            builds.append(threading.get_ident())
        return ToyNet(kernel)

    def load(module, path):
        time.sleep(load_delay)
        deep.load_checked(module, deep.load_state_dict_file(path), path=path)

    def save_state(state, path):
        torch.save(state, path)

    return deep.ModelSpec(name=name, build=build, load=load, predict=predict, save_state=save_state,
                          weights_help=weights_help, fixed_size=fixed_size, size_multiple=8, tile_size=tile_size,
                          margin=margin, registry=registry)
