"""Self-supervised training and fine-tuning of the deep networks on the user's own images.

:func:`train` (also ``inpaint_plugin.train``) runs it; :class:`TrainResult` says what it did and how
the trained network compares with classical inpainting on held-out crops; :func:`read_report` reads
that comparison back from ``<checkpoint>.train.json``. :class:`TrainConfig` holds the options of a
run, checked in one place (``train(config=TrainConfig(...))``, and ``inpaint-plugin train``).

The parts, one concern each (importing this package imports no torch; torch is imported when
training starts):

- :mod:`._config`: :class:`TrainConfig`, the options and their rules;
- :mod:`._loop`: :func:`train`, the training loop, validation against the classical methods,
  the training state for ``resume``;
- :mod:`._files`: the files written beside the checkpoint (state, report);
- :mod:`._data`: images -> normalised 2-D planes -> random crops;
- :mod:`._recipes`: one :class:`~._recipes.Recipe` per network (its losses, optimiser, defaults);
- :mod:`._losses`: spatially discounted L1, VGG19 perceptual and ID-MRF losses;
- :mod:`._discriminator`: the SN-PatchGAN discriminator and the GAN losses;
- :mod:`._cli`: ``inpaint-plugin train``.
"""
from __future__ import annotations

from ._config import TrainConfig
from ._files import read_report, report_path, state_path
from ._loop import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "read_report", "report_path", "state_path", "train"]
