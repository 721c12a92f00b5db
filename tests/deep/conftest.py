"""tests/deep: have pytest rewrite the asserts in the shared helpers (imported as ``_helpers``)."""
import pytest

pytest.register_assert_rewrite("_helpers")
