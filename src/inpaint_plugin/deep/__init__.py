"""Deep-learning inpainting networks and their shared infrastructure (torch imported lazily)."""
from __future__ import annotations

__all__ = ["model_spec"]


def model_spec(method: str):
    """The :class:`~inpaint_plugin.deep._infra.ModelSpec` of a deep method, for your own code:
    ``build()`` the network, ``load(module, path)`` an official checkpoint, ``save(module, path)``
    it back in the official format (after fine-tuning in your own training loop, say), which
    ``inpaint(..., method=method, weights=path)`` then uses.

    Raises ``ValueError`` naming the deep methods when ``method`` is not one of them.
    """
    from ._infra import _find_spec

    return _find_spec(method)
