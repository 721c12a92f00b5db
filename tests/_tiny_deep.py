"""Tiny-width variants of the deep networks, for the tests of the API contract.

The contract tests (``test_backends_generic.py``, ``test_properties.py``, ``test_fuzz.py``,
``deep/test_checkpoint_safety.py``, ``deep/test_save.py``) check what the API promises for every
method: known pixels bit-for-bit, dtype and shape kept, inputs untouched, progress, errors naming the
argument, strict and safe checkpoint loading. For a deep method none of that depends on the width
of its network, and the full-width networks take seconds per call on a CPU. So these tests run each
deep method as ``<name>_tiny``: the registered method's own :class:`~inpaint_plugin.deep.ModelSpec`
(its loader, saver, ``predict``, sizes, margins, weights registry) with only ``build`` replaced by
the same network class at a small width (``cnum``/``ngf``), turned into a method by the package's own
:func:`~inpaint_plugin.deep.make_backend`, exactly as the real one is. The networks' own tests
(``deep/test_<net>.py``: reference keys and shapes, conformance vectors) and the public-path tests
keep the full-width networks.

Two networks of fixed input size run at a smaller one (the spec's ``fixed_size``: windows are
resized to it and back by the same code, at 64 instead of 256): PEN-Net, and SPL, whose widths are
fixed in the reference (its variant has one context-aware residual block instead of eight, the
``residual_blocks`` argument of the reference's ``G_Net``). MEDFE keeps its input side of 256 (its
feature equalisation works on a fixed 32 x 32 grid of the 256 x 256 input): its variant is only narrower
(``ngf``, the base width of the reference's encoder and decoder, which the network also applies to the
channel counts the reference hard-codes in ``PCconv``): ``ngf=4`` instead of 64, 0.5 M parameters instead
of 130 M, one forward pass about 40 times faster on one CPU thread (0.05 s instead of 2.1 s).

The variants are registered only while a test module that uses them runs (the ``tiny_deep_methods``
fixture of ``conftest.py``), so no other test sees them in :func:`inpaint_plugin.methods`.
"""
from __future__ import annotations

import dataclasses

import inpaint_plugin as ip
from inpaint_plugin import hookimpl

SUFFIX = "_tiny"


def _deepfill_v1():
    from inpaint_plugin.deep.nets.deepfill_v1 import DeepFillV1

    return DeepFillV1(cnum=4, patch_norm="max")  # the registered build's patch_norm


def _deepfill_v2():
    from inpaint_plugin.deep.nets.deepfill_v2 import DeepFillV2

    return DeepFillV2(cnum=8)


def _gmcnn():
    from inpaint_plugin.deep.nets.gmcnn import GMCNN

    return GMCNN(cnum=4)


def _gmcnn_tf():
    from inpaint_plugin.deep.nets.gmcnn_tf import GMCNNTF

    return GMCNNTF(cnum=4)


def _lama():
    from inpaint_plugin.deep.nets.lama import FFCResNetGenerator

    return FFCResNetGenerator(ngf=4)


def _medfe():
    from inpaint_plugin.deep.nets.medfe import MEDFE

    return MEDFE(ngf=4)


def _pennet():
    from inpaint_plugin.deep.nets.pennet import PENNet

    return PENNet(cnum=4)


def _spl():
    from inpaint_plugin.deep.nets.spl import SPL

    return SPL(residual_blocks=1)


#: registered deep method -> build of its tiny network
TINY_BUILDS = {
    "deepfill_v1": _deepfill_v1,
    "deepfill_v2": _deepfill_v2,
    "gmcnn": _gmcnn,
    "gmcnn_tf": _gmcnn_tf,
    "lama": _lama,
    "medfe": _medfe,
    "pennet": _pennet,
    "spl": _spl,
}
#: other fields of the variants' specs (fixed-size networks: a smaller input side)
TINY_FIELDS = {"pennet": {"fixed_size": 64}, "spl": {"fixed_size": 64}}


def _make_backends():
    """``{tiny name: Backend}`` for the registered deep methods that have a tiny build."""
    from inpaint_plugin.deep import find_spec, make_backend

    found = {}
    for name, backend in ip.methods().items():
        if backend.needs_weights and name in TINY_BUILDS:
            spec = find_spec(name)
            tiny = dataclasses.replace(spec, name=name + SUFFIX, build=TINY_BUILDS[name],
                                       **TINY_FIELDS.get(name, {}))
            # the real backend's own extra parameters (beyond weights, device, resolution)
            extra = backend.params[3:]
            found[tiny.name] = make_backend(tiny, f"{backend.description} [tiny width, tests only]", extra)
    return found


BACKENDS = _make_backends()


def tiny(name: str) -> str:
    """The method the contract tests run for registered method ``name``: its tiny variant where it
    has one, else ``name`` itself."""
    return name + SUFFIX if name + SUFFIX in BACKENDS else name


def real(name: str) -> str:
    """The registered method a (possibly tiny) method name stands for."""
    return name[: -len(SUFFIX)] if name in BACKENDS else name


def contract_methods() -> dict:
    """``{method: Backend}`` for the contract tests: every registered method, deep ones replaced by
    their tiny variant where they have one, sorted by the registered name."""
    table = ip.methods()
    return {tiny(name): BACKENDS.get(tiny(name), table[name]) for name in table}


class TinyDeepPlugin:
    """The pluggy plugin that registers :data:`BACKENDS`."""

    @hookimpl
    def inpaint_plugin_backends(self):
        return list(BACKENDS.values())


PLUGIN_NAME = "tests.tiny_deep"
