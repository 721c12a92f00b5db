"""Metadata round trips on real files: ImageJ hyperstacks, OME-TIFF, plain TIFF, OME-Zarr multiscales."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
import tifffile  # noqa: E402

from inpaint_plugin import inpaint  # noqa: E402
from inpaint_plugin._dask import stream_inpaint  # noqa: E402
from inpaint_plugin._io import read_image, read_metadata, write_image  # noqa: E402
from inpaint_plugin._metadata import ome_annotations  # noqa: E402


def _stack(shape=(3, 2, 40, 50), dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[-2], : shape[-1]]
    base = 1000 + 300 * np.sin(yy / 7.0) * np.cos(xx / 9.0)
    out = base + rng.normal(0, 5, shape)
    return np.clip(out, 0, np.iinfo(dtype).max).astype(dtype) if np.dtype(dtype).kind == "u" else out.astype(dtype)


def _imagej_file(path, data):
    tifffile.imwrite(path, data, imagej=True, resolution=((250, 27), (250, 27)),
                     metadata={"axes": "ZCYX", "spacing": 0.5, "unit": "um", "Ranges": (0, 1000, 0, 2000),
                               "Labels": ["DAPI", "GFP"] * data.shape[0], "Info": "acquired on scope 3",
                               "mode": "composite"})


def _check_imagej(path, data, processing):
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        assert tif.series[0].axes == "ZCYX"  # not QQYX
        ij = tif.imagej_metadata
        assert ij["spacing"] == 0.5 and ij["unit"] == "um" and ij["mode"] == "composite"
        assert tuple(ij["Ranges"]) == (0, 1000, 0, 2000)
        assert ij["Labels"] == ["DAPI", "GFP"] * data.shape[0]
        assert ij["Info"].startswith("acquired on scope 3") and processing in ij["Info"]
        page = tif.pages[0]
        assert page.tags["XResolution"].value == (250, 27) and page.tags["YResolution"].value == (250, 27)
        np.testing.assert_array_equal(tif.asarray(), data)


@pytest.mark.parametrize("source", ["numpy", "dask"])
def test_imagej_hyperstack_keeps_axes_calibration_and_metadata(tmp_path, source):
    data = _stack()
    _imagej_file(tmp_path / "in.tif", data)
    image, meta = read_image(tmp_path / "in.tif", with_metadata=True, lazy=source == "dask")
    assert meta.kind == "imagej" and meta.axes == "ZCYX" and meta.channel_axis == 1
    assert meta.spacing == pytest.approx({"X": 27 / 250, "Y": 27 / 250, "Z": 0.5})
    assert meta.units == {"X": "um", "Y": "um", "Z": "um"}
    assert meta.channel_names == ("DAPI", "GFP")
    assert meta.resolution == ((250, 27), (250, 27))
    write_image(tmp_path / "out.tif", image, metadata=meta, processing="filled by the test")
    _check_imagej(tmp_path / "out.tif", data, "filled by the test")
    again, meta2 = read_image(tmp_path / "out.tif", with_metadata=True)
    assert meta2.axes == "ZCYX" and meta2.spacing == meta.spacing and meta2.units == meta.units


def test_stream_inpaint_reads_the_channel_axis_from_the_file_and_keeps_imagej_metadata(tmp_path):
    data = _stack((2, 2, 48, 40), seed=1)
    _imagej_file(tmp_path / "in.tif", data)
    mask = np.zeros(data.shape[-2:], bool)
    mask[20:24, 10:30] = True
    np.save(tmp_path / "mask.npy", np.broadcast_to(mask, (2,) + mask.shape).copy())
    stream_inpaint(tmp_path / "in.tif", tmp_path / "mask.npy", tmp_path / "out.tif", "biharmonic", chunks=64,
                   progress=False)  # no channel_axis given: the file says C is axis 1
    mask3 = np.broadcast_to(mask, (2,) + mask.shape)
    expected = inpaint(data, mask3, "biharmonic", channel_axis=1)
    out, meta = read_image(tmp_path / "out.tif", with_metadata=True)
    np.testing.assert_array_equal(out, expected)
    assert meta.kind == "imagej" and meta.axes == "ZCYX" and meta.spacing["Z"] == 0.5
    assert "method=biharmonic" in meta.imagej["Info"]


def _ome_file(path, data):
    tifffile.imwrite(path, data, ome=True, resolution=((250, 27), (250, 27)), resolutionunit=3,
                     metadata={"axes": "ZCYX", "Name": "sample 7", "PhysicalSizeX": 0.108, "PhysicalSizeXUnit": "µm",
                               "PhysicalSizeY": 0.108, "PhysicalSizeYUnit": "µm", "PhysicalSizeZ": 0.5,
                               "Channel": {"Name": ["DAPI", "GFP"]}})


@pytest.mark.parametrize("source", ["numpy", "dask"])
def test_ome_tiff_keeps_its_ome_xml_and_adds_the_processing(tmp_path, source):
    data = _stack(seed=2)
    _ome_file(tmp_path / "in.ome.tif", data)
    image, meta = read_image(tmp_path / "in.ome.tif", with_metadata=True, lazy=source == "dask")
    assert meta.kind == "ome-tiff" and meta.axes == "ZCYX" and meta.channel_axis == 1
    assert meta.spacing == {"X": 0.108, "Y": 0.108, "Z": 0.5} and meta.units["X"] == "µm"
    assert meta.channel_names == ("DAPI", "GFP")
    write_image(tmp_path / "out.ome.tif", image, metadata=meta, processing="filled by the test")
    out, meta2 = read_image(tmp_path / "out.ome.tif", with_metadata=True)
    np.testing.assert_array_equal(out, data)
    assert meta2.kind == "ome-tiff" and meta2.axes == "ZCYX"
    assert meta2.spacing == meta.spacing and meta2.units == meta.units and meta2.channel_names == meta.channel_names
    assert 'Name="sample 7"' in meta2.ome_xml
    assert ome_annotations(meta2.ome_xml) == ["filled by the test"]
    assert meta2.resolution == ((250, 27), (250, 27)) and meta2.resolution_unit == 3
    # a second pass adds a second annotation (unique IDs) and keeps the first
    write_image(tmp_path / "out2.ome.tif", out, metadata=meta2, processing="second pass")
    meta3 = read_metadata(tmp_path / "out2.ome.tif")
    assert ome_annotations(meta3.ome_xml) == ["filled by the test", "second pass"]
    with tifffile.TiffFile(tmp_path / "out2.ome.tif") as tif:
        assert tif.is_ome and len(tif.series) == 1


def test_ome_tiff_with_a_float_result_says_so_in_the_pixel_type(tmp_path):
    data = _stack((2, 30, 20), seed=3)
    tifffile.imwrite(tmp_path / "in.ome.tif", data, ome=True, metadata={"axes": "CYX", "PhysicalSizeX": 2.0})
    image, meta = read_image(tmp_path / "in.ome.tif", with_metadata=True)
    result = image.astype(np.float32) / 3  # the metadata is the input's; the pixel type follows the result
    write_image(tmp_path / "out.tif", result, metadata=meta)
    out, meta2 = read_image(tmp_path / "out.tif", with_metadata=True)
    assert meta2.kind == "ome-tiff" and 'Type="float"' in meta2.ome_xml and meta2.spacing["X"] == 2.0
    np.testing.assert_array_equal(out, result)


def test_plain_tiff_keeps_axes_description_and_resolution(tmp_path):
    data = _stack((3, 30, 20), seed=4)
    tifffile.imwrite(tmp_path / "in.tif", data, metadata={"axes": "CYX", "operator": "ada"},
                     resolution=(400.0, 400.0), resolutionunit=3)
    image, meta = read_image(tmp_path / "in.tif", with_metadata=True)
    assert meta.kind == "tiff" and meta.axes == "CYX" and meta.channel_axis == 0
    assert meta.spacing == pytest.approx({"X": 1 / 400, "Y": 1 / 400}) and meta.units["X"] == "centimeter"
    write_image(tmp_path / "out.tif", image, metadata=meta, processing="p1")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.series[0].axes == "CYX"
        shaped = tif.shaped_metadata[0]
        assert shaped["operator"] == "ada" and shaped["processing"] == "p1"
        assert tif.pages[0].tags["ResolutionUnit"].value == 3
        assert tif.pages[0].tags["XResolution"].value == (400, 1)


def test_metadata_of_another_shape_is_not_applied(tmp_path):
    data = _stack(seed=5)
    _imagej_file(tmp_path / "in.tif", data)
    _, meta = read_image(tmp_path / "in.tif", with_metadata=True)
    mask = np.zeros(data.shape[-2:], np.uint8)  # e.g. the mask that was filled
    write_image(tmp_path / "mask.tif", mask, metadata=meta)
    out, meta2 = read_image(tmp_path / "mask.tif", with_metadata=True)
    assert out.shape == mask.shape and meta2.kind == "tiff" and meta2.axes == "YX"


def _ome_zarr(path, level0, zarr_format=2):
    """An OME-Zarr with two levels; level 1 is the *maximum* of 2x2 blocks (not what the writer uses)."""
    c, h, w = level0.shape
    level1 = level0.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))
    root = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    root.create_array("0", data=level0, chunks=(1, 32, 32))
    root.create_array("1", data=level1, chunks=(1, 16, 16))
    ms = {"version": "0.4" if zarr_format == 2 else "0.5", "name": "cells",
          "axes": [{"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"},
                   {"name": "x", "type": "space", "unit": "micrometer"}],
          "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 0.5, 0.5]}]},
                       {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1, 1.0, 1.0]}]}]}
    if zarr_format == 2:
        root.attrs["multiscales"] = [ms]
        root.attrs["omero"] = {"channels": [{"label": "DAPI"}, {"label": "GFP"}]}
    else:
        root.attrs["ome"] = {"version": "0.5", "multiscales": [ms],
                             "omero": {"channels": [{"label": "DAPI"}, {"label": "GFP"}]}}
    return level1, ms


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_multiscales_every_level_written(tmp_path, zarr_format):
    level0 = _stack((2, 64, 48), seed=6)
    level1, ms = _ome_zarr(tmp_path / "in.ome.zarr", level0, zarr_format)
    image, meta = read_image(tmp_path / "in.ome.zarr", with_metadata=True)
    assert meta.kind == "ome-zarr" and meta.axes == "CYX" and meta.channel_axis == 0
    assert meta.spacing == {"Y": 0.5, "X": 0.5} and meta.units == {"Y": "micrometer", "X": "micrometer"}
    assert meta.channel_names == ("DAPI", "GFP")
    assert [lv[1] for lv in meta.levels] == [(2, 64, 48), (2, 32, 24)]
    mask = np.zeros((64, 48), bool)
    mask[10:14, 20:30] = True
    filled = inpaint(image, mask, "biharmonic", channel_axis=0)
    write_image(tmp_path / "out.ome.zarr", filled, metadata=meta, processing="filled by the test")
    out = zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r")
    attrs = dict(out.attrs)
    got_ms = attrs["multiscales"] if zarr_format == 2 else attrs["ome"]["multiscales"]
    assert got_ms == [ms] and attrs["inpaint_plugin"]["processing"] == "filled by the test"
    assert out.metadata.zarr_format == zarr_format
    np.testing.assert_array_equal(out["0"][...], filled)
    assert out["1"].shape == level1.shape and out["1"].chunks == (1, 16, 16)
    # coarse pixels over unchanged pixels keep the source pyramid's values (its own max rule) ...
    covered = np.zeros((32, 24), bool)
    covered[5:7, 10:15] = True
    np.testing.assert_array_equal(out["1"][...][:, ~covered], level1[:, ~covered])
    # ... and those over filled pixels are the mean of the new full resolution
    mean = np.rint(filled.reshape(2, 32, 2, 24, 2).astype(np.float64).mean(axis=(2, 4))).astype(np.uint16)
    np.testing.assert_array_equal(out["1"][...][:, covered], mean[:, covered])
    again, meta2 = read_image(tmp_path / "out.ome.zarr", with_metadata=True)
    np.testing.assert_array_equal(again, filled)
    assert meta2.kind == "ome-zarr" and meta2.spacing == meta.spacing


def test_ome_zarr_pyramid_rebuilt_when_the_source_is_gone(tmp_path):
    level0 = _stack((2, 64, 48), seed=7)
    _ome_zarr(tmp_path / "in.ome.zarr", level0)
    image, meta = read_image(tmp_path / "in.ome.zarr", with_metadata=True)
    shutil.rmtree(tmp_path / "in.ome.zarr")
    write_image(tmp_path / "out.ome.zarr", da.from_array(image, chunks=(1, 20, 20)), metadata=meta)
    out = zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r")
    mean = np.rint(image.reshape(2, 32, 2, 24, 2).astype(np.float64).mean(axis=(2, 4))).astype(np.uint16)
    np.testing.assert_array_equal(out["1"][...], mean)


def test_stream_inpaint_ome_zarr_to_ome_zarr(tmp_path):
    level0 = _stack((2, 64, 48), seed=8).astype(np.float32)
    level0[:, 30:33, 5:40] = np.nan
    _ome_zarr(tmp_path / "in.ome.zarr", level0)
    stream_inpaint(tmp_path / "in.ome.zarr", None, tmp_path / "out.ome.zarr", "biharmonic", chunks=32,
                   progress=False)  # channel axis from the multiscales axes
    out, meta = read_image(tmp_path / "out.ome.zarr", with_metadata=True)
    np.testing.assert_allclose(out, inpaint(level0, None, "biharmonic", channel_axis=0), rtol=1e-5, atol=1e-3)
    assert [lv[1] for lv in meta.levels] == [(2, 64, 48), (2, 32, 24)]
    coarse = zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r")["1"][...]
    assert np.isfinite(coarse).all()  # the holes are filled at every level


def test_ome_zarr_output_from_an_ome_tiff_and_axes_in_plain_zarr(tmp_path):
    data = _stack((2, 3, 30, 20), seed=9)  # C, Z, Y, X: the order NGFF 0.4 asks for
    tifffile.imwrite(tmp_path / "in.ome.tif", data, ome=True,
                     metadata={"axes": "CZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 1.0,
                               "Channel": {"Name": ["DAPI", "GFP"]}})
    image, meta = read_image(tmp_path / "in.ome.tif", with_metadata=True)
    assert meta.axes == "CZYX"
    write_image(tmp_path / "out.ome.zarr", image, metadata=meta)
    out, meta2 = read_image(tmp_path / "out.ome.zarr", with_metadata=True)
    np.testing.assert_array_equal(out, data)
    assert meta2.kind == "ome-zarr" and meta2.axes == "CZYX" and meta2.channel_axis == 0
    assert meta2.spacing == {"Z": 1.0, "Y": 0.2, "X": 0.2} and meta2.units["X"] == "micrometer"
    assert meta2.channel_names == ("DAPI", "GFP")
    # ImageJ order (Z before C) is not NGFF 0.4: a plain zarr array, its axes kept as dimension names
    _imagej_file(tmp_path / "ij.tif", _stack(seed=10))
    image, meta = read_image(tmp_path / "ij.tif", with_metadata=True)
    write_image(tmp_path / "ij.ome.zarr", image, metadata=meta, processing="p")
    out, meta3 = read_image(tmp_path / "ij.ome.zarr", with_metadata=True)
    assert meta3.kind == "zarr" and meta3.axes == "ZCYX" and meta3.channel_axis == 1
    assert meta3.zarr_attrs["inpaint_plugin"]["processing"] == "p"


def test_metadata_written_without_dask(tmp_path):
    """The core install (no dask): ImageJ and OME metadata are written from numpy arrays too."""
    import subprocess
    import sys

    _imagej_file(tmp_path / "in.tif", _stack(seed=11))
    _ome_file(tmp_path / "in.ome.tif", _stack(seed=12))
    code = (
        "import sys\n"
        "sys.modules['dask'] = None; sys.modules['dask.array'] = None\n"
        "from inpaint_plugin._io import read_image, write_image\n"
        "for src, dst in (('in.tif', 'out.tif'), ('in.ome.tif', 'out.ome.tif')):\n"
        "    image, meta = read_image(src, with_metadata=True)\n"
        "    write_image(dst, image, metadata=meta, processing='no dask')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    _check_imagej(tmp_path / "out.tif", _stack(seed=11), "no dask")
    meta = read_metadata(tmp_path / "out.ome.tif")
    assert meta.kind == "ome-tiff" and meta.axes == "ZCYX" and ome_annotations(meta.ome_xml) == ["no dask"]


def test_ome_tiff_pyramid_keeps_its_sub_resolutions(tmp_path):
    data = _stack((2, 300, 260), seed=13)  # C, Y, X
    coarse = data.reshape(2, 150, 2, 130, 2).max(axis=(2, 4))  # the source pyramid's own rule (max)
    with tifffile.TiffWriter(tmp_path / "in.ome.tif", ome=True) as tw:
        tw.write(data, subifds=1, tile=(64, 64), metadata={"axes": "CYX", "PhysicalSizeX": 0.5})
        tw.write(coarse, subfiletype=1, tile=(64, 64))
    image, meta = read_image(tmp_path / "in.ome.tif", with_metadata=True)
    assert [lv[1] for lv in meta.levels] == [(2, 300, 260), (2, 150, 130)]
    mask = np.zeros((300, 260), bool)
    mask[100:104, 50:60] = True
    filled = inpaint(image, mask, "biharmonic", channel_axis=0)
    write_image(tmp_path / "out.ome.tif", filled, metadata=meta, processing="pyramid")
    with tifffile.TiffFile(tmp_path / "out.ome.tif") as tif:
        assert tif.is_ome and tif.series[0].axes == "CYX"
        assert [lv.shape for lv in tif.series[0].levels] == [(2, 300, 260), (2, 150, 130)]
        full, sub = tif.series[0].levels[0].asarray(), tif.series[0].levels[1].asarray()
    np.testing.assert_array_equal(full, filled)
    covered = np.zeros((150, 130), bool)
    covered[50:52, 25:30] = True
    np.testing.assert_array_equal(sub[:, ~covered], coarse[:, ~covered])
    mean = np.rint(filled.reshape(2, 150, 2, 130, 2).astype(np.float64).mean(axis=(2, 4))).astype(np.uint16)
    np.testing.assert_array_equal(sub[:, covered], mean[:, covered])
    assert ome_annotations(read_metadata(tmp_path / "out.ome.tif").ome_xml) == ["pyramid"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ome.tif", "out.ome.tif"]  # staging removed


def test_the_mask_of_a_calibrated_stack_keeps_axes_and_calibration(tmp_path):
    data = _stack(seed=14)
    _imagej_file(tmp_path / "in.tif", data)
    _, meta = read_image(tmp_path / "in.tif", with_metadata=True)
    mask = np.zeros((3, 40, 50), np.uint8)
    mask[:, 5:9, 10:20] = 1
    mask_meta = meta.drop_axis(meta.channel_axis)
    assert mask_meta.axes == "ZYX" and mask_meta.fits(mask.shape)
    write_image(tmp_path / "mask.tif", mask, metadata=mask_meta, processing="the mask that was filled")
    out, meta2 = read_image(tmp_path / "mask.tif", with_metadata=True)
    np.testing.assert_array_equal(out, mask)
    assert meta2.kind == "imagej" and meta2.axes == "ZYX" and meta2.resolution == ((250, 27), (250, 27))
    assert meta2.spacing == pytest.approx({"X": 27 / 250, "Y": 27 / 250, "Z": 0.5}) and meta2.units["Z"] == "um"
    assert "Labels" not in meta2.imagej and "Ranges" not in meta2.imagej
    with pytest.raises(ValueError, match="axis=4 is out of range"):
        meta.drop_axis(4)


def test_axis_spacing_and_time_axes_for_the_fill_options(tmp_path):
    data = _stack((4, 2, 30, 20), seed=15)
    tifffile.imwrite(tmp_path / "t.tif", data, imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "TCYX", "unit": "um", "finterval": 0.5})
    meta = read_metadata(tmp_path / "t.tif")
    assert meta.time_axes == (0,) and meta.channel_axis == 1
    assert meta.axis_spacing() == (0.5, 0.5, 0.5)  # T (s), Y, X (um); C left out
    assert meta.axis_spacing(exclude_channels=False) == (0.5, None, 0.5, 0.5)
    _imagej_file(tmp_path / "z.tif", _stack(seed=16))
    meta = read_metadata(tmp_path / "z.tif")
    assert meta.time_axes == () and meta.axis_spacing() == pytest.approx((0.5, 27 / 250, 27 / 250))
    np.save(tmp_path / "a.npy", np.zeros((3, 8, 8)))
    assert read_metadata(tmp_path / "a.npy").axis_spacing() == (None, None, None)


def test_ome_zarr_calibration_carried_into_tiff_outputs(tmp_path):
    level0 = _stack((2, 64, 48), seed=17)
    _ome_zarr(tmp_path / "in.ome.zarr", level0)
    image, meta = read_image(tmp_path / "in.ome.zarr", with_metadata=True)
    write_image(tmp_path / "out.ome.tif", image, metadata=meta, processing="from zarr")
    ome = read_metadata(tmp_path / "out.ome.tif")
    assert ome.kind == "ome-tiff" and ome.axes == "CYX" and ome.spacing == {"X": 0.5, "Y": 0.5}
    assert ome.units == {"X": "µm", "Y": "µm"}  # OME's unit symbol, not the NGFF name
    assert ome.channel_names == ("DAPI", "GFP")
    write_image(tmp_path / "out.tif", image, metadata=meta)
    plain = read_metadata(tmp_path / "out.tif")
    assert plain.axes == "CYX" and plain.spacing == {"Y": 0.5, "X": 0.5} and plain.units["X"] == "micrometer"
