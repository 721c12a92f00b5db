"""tests/deep: have pytest rewrite the asserts in the shared helpers (imported as ``_helpers``); the
``fresh_model_cache`` fixture."""
import pytest

pytest.register_assert_rewrite("_helpers")


@pytest.fixture
def fresh_model_cache():
    """The deep model cache is empty when the test starts, and emptied after it."""
    from inpaint_plugin import deep

    deep.clear_model_cache()
    yield
    deep.clear_model_cache()
