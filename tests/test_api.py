"""The API layer: validation, dtype/channel handling, slice-wise looping (with the biharmonic backend)."""
from __future__ import annotations

import numpy as np
import pytest

import inpaint_plugin as ip
from inpaint_plugin import Backend, Param


def ramp(shape=(24, 32), dtype=np.float64, scale=1.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy + 2 * xx) * scale).astype(dtype)


def box_mask(shape=(24, 32), sl=(slice(8, 14), slice(10, 18))):
    m = np.zeros(shape, bool)
    m[sl] = True
    return m


# --- basic behaviour ---------------------------------------------------------------------------

def test_linear_ramp_is_reproduced_exactly():
    img = ramp()
    mask = box_mask()
    out = ip.inpaint(img, mask, method="biharmonic")
    np.testing.assert_allclose(out, img, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float16, np.float32, np.float64])
def test_dtype_known_pixels_and_no_mutation(dtype):
    img = ramp(dtype=np.float64, scale=1.7)
    if np.dtype(dtype).kind == "i":
        img = img - 40
    img = img.astype(dtype)
    mask = box_mask()
    img[mask] = 0  # garbage under the hole must not matter
    before, mask_before = img.copy(), mask.copy()
    out = ip.inpaint(img, mask)
    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(out[~mask], img[~mask])
    np.testing.assert_array_equal(img, before)
    np.testing.assert_array_equal(mask, mask_before)
    known = img[~mask]
    assert out[mask].min() >= known.min() and out[mask].max() <= known.max()
    # the hole gets the ramp's values back (up to rounding)
    expected = (ramp(scale=1.7) - (40 if np.dtype(dtype).kind == "i" else 0))[mask]
    tol = 1.5 if np.dtype(dtype).kind in "iu" else 0.05  # known values are quantised too
    assert np.abs(out[mask].astype(np.float64) - expected).max() <= tol


def test_empty_mask_returns_copy():
    img = ramp()
    out = ip.inpaint(img, np.zeros(img.shape, bool))
    np.testing.assert_array_equal(out, img)
    assert out is not img and not np.shares_memory(out, img)


def test_nan_filled_with_mask_none():
    img = ramp()
    img[5:8, 4:9] = np.nan
    out = ip.inpaint(img, None)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, ramp(), atol=1e-8)
    assert np.isnan(img[5:8, 4:9]).all()  # input untouched


def test_nodata_value():
    img = ramp(dtype=np.uint16) + 1
    img[3:6, 3:6] = 0
    out = ip.inpaint(img, nodata=0)
    np.testing.assert_array_equal(out, ramp(dtype=np.uint16) + 1)


def test_nodata_combines_with_mask():
    img = ramp() + 1
    img[2, 2] = -9999
    mask = box_mask()
    out = ip.inpaint(img, mask, nodata=-9999)
    assert abs(out[2, 2] - (ramp() + 1)[2, 2]) < 1e-6
    np.testing.assert_allclose(out[mask], (ramp() + 1)[mask], atol=1e-8)


# --- channels and dimensions ---------------------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_channel_axis_positions(axis):
    base = np.stack([ramp(), 2 * ramp(), 100 - ramp()], axis=-1)
    img = np.moveaxis(base, -1, axis)
    mask = box_mask()
    out = ip.inpaint(img, mask, channel_axis=axis)
    assert out.shape == img.shape
    np.testing.assert_allclose(out, img, atol=1e-8)


def test_many_channels():
    img = np.stack([ramp() * (c + 1) for c in range(7)], axis=0).astype(np.uint16)
    mask = box_mask()
    out = ip.inpaint(img, mask, channel_axis=0)
    np.testing.assert_array_equal(out, img)


def test_3d_volume_nd_backend():
    zz, yy, xx = np.mgrid[:10, :12, :14]
    vol = (zz + yy - xx).astype(np.float32)
    mask = np.zeros(vol.shape, bool)
    mask[3:7, 4:8, 5:9] = True
    out = ip.inpaint(vol, mask)
    np.testing.assert_allclose(out, vol, atol=1e-4)


@pytest.fixture
def slice_backend():
    """A 2-D-only backend that records what the API passes it (fills with the known mean)."""
    calls = []

    def fill(image, mask, *, value_offset=0.0):
        calls.append((image.shape, image.dtype, int(mask.sum()), image.flags.c_contiguous))
        out = image.copy()
        out[mask] = image[~mask].mean(axis=0) + value_offset
        return out

    class Plugin:
        @ip.hookimpl
        def inpaint_plugin_backends(self):
            return [Backend("test_mean2d", fill, "test", spatial_ndim=2,
                            params=[Param("value_offset", "float", 0.0, min=-10, max=10)])]

    plugin = Plugin()
    ip.register(plugin, name="test-slice-backend")
    yield calls
    ip.unregister(plugin)


def test_2d_backend_loops_only_over_damaged_slices(slice_backend):
    stack = np.stack([ramp() + z for z in range(6)]).astype(np.float32)
    mask = np.zeros(stack.shape, bool)
    mask[1, 3:5, 3:5] = True
    mask[4, 10, 10] = True
    progress = []
    out = ip.inpaint(stack, mask, method="test_mean2d", progress=lambda d, t: progress.append((d, t)))
    assert [c[0] for c in slice_backend] == [(24, 32, 1), (24, 32, 1)]
    assert all(c[1] == np.float64 and c[3] for c in slice_backend)
    assert progress == [(1, 2), (2, 2)]
    np.testing.assert_array_equal(out[~mask], stack[~mask])
    assert out[1, 3, 3] == pytest.approx(stack[1][~mask[1]].mean(), rel=1e-6)


def test_2d_backend_on_full_slice_mask_errors(slice_backend):
    stack = np.stack([ramp()] * 3)
    mask = np.zeros(stack.shape, bool)
    mask[2] = True
    with pytest.raises(ValueError, match=r"whole slice \(2,\)"):
        ip.inpaint(stack, mask, method="test_mean2d")


def test_2d_backend_rejects_1d(slice_backend):
    with pytest.raises(ValueError, match="2-D"):
        ip.inpaint(np.arange(10.0), np.arange(10) == 3, method="test_mean2d")


def test_iter_inpaint_can_be_abandoned(slice_backend):
    stack = np.stack([ramp()] * 4)
    mask = np.zeros(stack.shape, bool)
    mask[:, 5, 5] = True
    before = stack.copy()
    gen = ip.iter_inpaint(stack, mask, method="test_mean2d")
    assert next(gen) == (1, 4)
    gen.close()  # cancelled: nothing written anywhere
    np.testing.assert_array_equal(stack, before)


def test_integer_output_rounded_and_clipped(slice_backend):
    img = np.full((20, 20), 250, np.uint8)
    img[0, :4] = 251
    mask = box_mask((20, 20), (slice(5, 15), slice(5, 15)))
    mean = img[~mask].mean()
    # far above the dtype's range: clipped to 255, not wrapped around
    out = ip.inpaint(img, mask, method="test_mean2d", value_offset=10, clip=False)
    assert out.dtype == np.uint8 and (out[mask] == 255).all()
    # rounded to the nearest integer, not truncated
    out = ip.inpaint(img, mask, method="test_mean2d", value_offset=0.6, clip=False)
    assert (out[mask] == round(mean + 0.6)).all()
    # clip=True (default): within the known values' range
    out = ip.inpaint(img, mask, method="test_mean2d", value_offset=10)
    assert (out[mask] == 251).all()


def test_clip_keeps_known_range_for_floats(slice_backend):
    img = ramp() / ramp().max()
    mask = box_mask()
    out = ip.inpaint(img, mask, method="test_mean2d", value_offset=5)
    assert (out[mask] == 1.0).all()
    raw = ip.inpaint(img, mask, method="test_mean2d", value_offset=5, clip=False)
    np.testing.assert_allclose(raw[mask], img[~mask].mean() + 5)


def test_params_validated_and_passed(slice_backend):
    img = ramp()
    mask = box_mask()
    out = ip.inpaint(img, mask, method="test_mean2d", value_offset="2.5", clip=False)
    assert out[mask][0] == pytest.approx(img[~mask].mean() + 2.5)
    with pytest.raises(ValueError, match="value_offset.*<= 10"):
        ip.inpaint(img, mask, method="test_mean2d", value_offset=11)
    with pytest.raises(TypeError, match="value_offset.*number"):
        ip.inpaint(img, mask, method="test_mean2d", value_offset="big")


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "image, mask, kwargs, exc, match",
    [
        (np.zeros((8, 8), bool), np.eye(8, dtype=bool), {}, TypeError, "image must be numeric"),
        (np.zeros((8, 8), complex), np.eye(8, dtype=bool), {}, TypeError, "complex"),
        (np.array([["a"] * 8] * 8), np.eye(8, dtype=bool), {}, TypeError, "image must be an integer or float"),
        (np.zeros((8, 8), object), np.eye(8, dtype=bool), {}, TypeError, "image must be an integer or float"),
        (np.zeros((0, 8)), np.zeros((0, 8), bool), {}, ValueError, "non-empty"),
        (ramp(), np.zeros((24, 31), bool), {}, ValueError, "mask shape"),
        (np.zeros((8, 8, 3)), np.zeros((8, 8, 3), bool), {"channel_axis": -1}, ValueError, "mask shape"),
        (ramp(), np.full((24, 32), "x"), {}, TypeError, "mask must be a boolean"),
        (ramp(), np.full((24, 32), 0.5), {}, ValueError, "float mask may only hold 0 and 1"),
        (ramp(), np.ones((24, 32), bool), {}, ValueError, "whole image"),
        (ramp(dtype=np.uint8), None, {}, ValueError, "mask is required"),
        (ramp(), box_mask(), {"method": "no_such"}, ValueError, "unknown method 'no_such'"),
        (ramp(), box_mask(), {"method": 3}, TypeError, "method must be a string"),
        (ramp(), box_mask(), {"bogus": 1}, TypeError, "unexpected parameter.*'bogus'"),
        (ramp(), box_mask(), {"channel_axis": 2}, ValueError, "channel_axis=2 is out of range"),
        (ramp(), box_mask(), {"channel_axis": 1.0}, TypeError, "channel_axis must be an int"),
        (ramp(), box_mask(), {"clip": "yes"}, TypeError, "clip must be"),
        (ramp(), box_mask(), {"nodata": "0"}, TypeError, "nodata must be a number"),
        (np.ma.masked_array(ramp()), box_mask(), {}, TypeError, "masked arrays"),
    ],
)
def test_errors_name_the_argument(image, mask, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ip.inpaint(image, mask, **kwargs)


def test_nan_among_known_pixels_is_an_error():
    img = ramp()
    img[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf at 1 pixel\(s\) outside the mask \(first at \(0, 0\)\)"):
        ip.inpaint(img, box_mask())
    img[0, 0] = np.inf
    with pytest.raises(ValueError, match="outside the mask"):
        ip.inpaint(img, box_mask())


def test_all_nan_image_is_an_error():
    with pytest.raises(ValueError, match="whole image"):
        ip.inpaint(np.full((5, 5), np.nan), None)


def test_integer_labels_mask_counts_nonzero():
    img = ramp()
    labels = np.zeros(img.shape, np.int32)
    labels[2:4, 2:4] = 7
    labels[10:12, 20:22] = 1
    out = ip.inpaint(img, labels)
    np.testing.assert_allclose(out, img, atol=1e-8)


# --- methods() metadata --------------------------------------------------------------------------

def test_methods_metadata_is_complete():
    table = ip.methods()
    assert "biharmonic" in table
    assert list(table) == sorted(table)
    for name, backend in table.items():
        d = backend.to_dict()
        assert d["name"] == name and d["description"]
        assert d["spatial_ndim"] in (None, 2, 3)
        assert d["channels"] in ("any", "per_channel", "rgb")
        for p in d["params"]:
            assert p["kind"] in ("int", "float", "bool", "str", "path")
            assert p["default"] is None or isinstance(p["default"], (int, float, bool, str))
            if p["default"] is not None and p["kind"] in ("int", "float") and p["min"] is not None:
                assert p["min"] <= p["default"]
        if backend.needs_weights:
            assert "weights" in backend.param_map


def test_backend_gets_c_contiguous_channels_last_block(slice_backend):
    img = np.stack([ramp(), ramp() * 2, ramp() * 3]).astype(np.uint16)  # channels first
    mask = box_mask()
    out = ip.inpaint(img, mask, method="test_mean2d", channel_axis=0)
    assert slice_backend == [((24, 32, 3), np.float64, int(mask.sum()), True)]
    np.testing.assert_array_equal(out[:, ~mask], img[:, ~mask])


def test_auto_with_a_seed_and_method_parameters():
    yy, xx = np.mgrid[:48, :48]
    img = np.sin(xx / 6.0) + np.cos(yy / 9.0)
    mask = np.zeros(img.shape, bool)
    mask[20:26, 10:16] = True
    out = ip.inpaint(img, mask, method="auto", seed=1)  # seed must not break deterministic choices
    np.testing.assert_array_equal(out[~mask], img[~mask])
    assert np.abs(out[mask] - img[mask]).max() < 0.2
    # a parameter only some methods take restricts the choice to them
    out = ip.inpaint(img, mask, method="auto", patch_size=5)
    np.testing.assert_array_equal(out[~mask], img[~mask])
