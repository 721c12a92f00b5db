"""TIFF files holding several image series (multi-position OME-TIFF, images of different shapes).

Every file here is written by tifffile; the series are what ``tifffile.TiffFile(path).series``
reports. ``read_image(..., series=k)`` reads series ``k``; left out, it reads series 0 and warns
when there are others (never for a stack of pages of one shape or an ImageJ hyperstack).
"""
from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tifffile

import inpaint_plugin as ip
from inpaint_plugin._io import count_series, read_image, read_metadata, write_image
from inpaint_plugin._metadata import ome_annotations
from inpaint_plugin.cli import main

OME_NS = "{http://www.openmicroscopy.org/Schemas/OME/2016-06}"


def _first():
    return (np.arange(64 * 80) % 997).astype(np.uint16).reshape(64, 80)


def _second():
    yy, xx = np.mgrid[:32, :48]
    return np.stack([yy * 7 + xx * 3 + 100 * c for c in range(3)]).astype(np.uint16)  # (C, Y, X) ramps


def _plain_multi(path, metadata=True):
    """Two images of different shapes, written one after the other (tifffile's JSON description, or none)."""
    with tifffile.TiffWriter(path) as tw:
        tw.write(_first(), metadata={} if metadata else None)
        tw.write(_second(), photometric="minisblack", metadata={} if metadata else None)
    return path


def _ome_two(path):
    """A two-image OME-TIFF (two positions), each image with its own pixel size and axes."""
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(_first(), metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "Name": "pos0"})
        tw.write(_second(), photometric="minisblack",
                 metadata={"axes": "CYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.3, "Name": "pos1",
                           "Channel": {"Name": ["DAPI", "GFP", "RFP"]}})
    return path


def _images(xml):
    return ET.fromstring(xml).findall(f"{OME_NS}Image")


# --- which files have several series ---------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda p: _plain_multi(p / "multi.tif"),
    lambda p: _plain_multi(p / "multi_generic.tif", metadata=False),
    lambda p: _ome_two(p / "two.ome.tif"),
], ids=["tifffile-json", "no-description", "ome"])
@pytest.mark.parametrize("lazy", [False, True])
def test_several_series_warn_and_read_the_first(tmp_path, make, lazy):
    path = make(tmp_path)
    assert count_series(path) == 2
    with pytest.warns(UserWarning) as record:
        data = read_image(path, lazy=lazy)
    messages = [str(w.message) for w in record if "image series" in str(w.message)]
    assert len(messages) == 1
    text = messages[0]
    assert str(path) in text and "2 image series" in text
    assert "(64, 80)" in text and "(3, 32, 48)" in text  # the shapes of both, so the user sees what is left out
    assert "series=" in text and "--series" in text
    np.testing.assert_array_equal(np.asarray(data), _first())


def _imagej(path):
    tifffile.imwrite(path, np.arange(2 * 3 * 16 * 16, dtype=np.uint16).reshape(2, 3, 16, 16), imagej=True,
                     metadata={"axes": "ZCYX"})


def _pages(path):
    tifffile.imwrite(path, np.arange(5 * 16 * 16, dtype=np.uint16).reshape(5, 16, 16))


def _pages_generic(path):
    tifffile.imwrite(path, np.arange(5 * 16 * 16, dtype=np.uint16).reshape(5, 16, 16), metadata=None)


def _pyramid(path):
    img = _first()
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(img, subifds=1, tile=(32, 32), metadata={"axes": "YX"})
        tw.write(img[::2, ::2], subfiletype=1, tile=(32, 32))


def _thumbnail(path):
    img = _first()
    with tifffile.TiffWriter(path) as tw:
        tw.write(img, metadata=None)
        tw.write(img[::4, ::4], subfiletype=1, metadata=None)  # a reduced-resolution page


@pytest.mark.parametrize("make", [_imagej, _pages, _pages_generic, _pyramid, _thumbnail],
                         ids=["imagej-hyperstack", "multipage", "multipage-no-description", "ome-pyramid",
                              "thumbnail"])
def test_one_series_files_do_not_warn(tmp_path, make):
    path = tmp_path / "one.tif"
    make(path)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.series) == 1
        expected = tif.series[0].levels[0].asarray()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data, meta = read_image(path, with_metadata=True)
        lazy = read_image(path, lazy=True)
        read_metadata(path)
    np.testing.assert_array_equal(data, expected)
    np.testing.assert_array_equal(lazy.compute(), expected)
    assert meta.series == 0 and meta.shape == expected.shape


# --- reading another series ------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda p: _plain_multi(p / "multi.tif"), lambda p: _ome_two(p / "two.ome.tif")],
                         ids=["plain", "ome"])
def test_series_1_is_the_second_image_lazy_and_not(tmp_path, make):
    path = make(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit series never warns
        eager = read_image(path, series=1)
        lazy = read_image(path, series=1, lazy=True)
        first = read_image(path, series=0)
    assert eager.dtype == np.uint16
    np.testing.assert_array_equal(eager, _second())
    assert type(lazy).__module__.startswith("dask") and lazy.shape == (3, 32, 48)
    np.testing.assert_array_equal(lazy.compute(), _second())
    np.testing.assert_array_equal(first, _first())


def test_lazy_series_of_one_shape_are_different_dask_arrays(tmp_path):
    """Two series of the same shape in one file are two arrays to dask (not one cached graph)."""
    import dask.array as da

    path = tmp_path / "same.tif"
    a, b = _first(), _first()[::-1].copy()
    with tifffile.TiffWriter(path) as tw:
        tw.write(a)
        tw.write(b)
    s0, s1 = read_image(path, series=0, lazy=True), read_image(path, series=1, lazy=True)
    assert s0.name != s1.name
    both = da.stack([s0, s1]).compute()
    np.testing.assert_array_equal(both[0], a)
    np.testing.assert_array_equal(both[1], b)


def test_metadata_of_series_1(tmp_path):
    path = _ome_two(tmp_path / "two.ome.tif")
    _, meta0 = read_image(path, series=0, with_metadata=True)
    _, meta1 = read_image(path, series=1, with_metadata=True, lazy=True)
    assert meta0.kind == meta1.kind == "ome-tiff"
    assert meta0.axes == "YX" and meta0.spacing["X"] == 0.5 and meta0.channel_names == ()
    assert meta1.axes == "CYX" and meta1.shape == (3, 32, 48) and meta1.channel_axis == 0
    assert meta1.spacing["X"] == 0.25 and meta1.spacing["Y"] == 0.3
    assert meta1.channel_names == ("DAPI", "GFP", "RFP")
    assert meta1.series == 1 and meta1.ome_image == 1
    assert len(_images(meta1.ome_xml)) == 2  # the file's whole OME-XML is kept
    assert read_metadata(path, series=1) == meta1

    plain = _plain_multi(tmp_path / "multi.tif")
    meta = read_metadata(plain, series=1)
    assert meta.kind == "tiff" and meta.shape == (3, 32, 48) and meta.series == 1


@pytest.mark.parametrize("lazy", [False, True])
def test_round_trip_of_series_1_writes_one_consistent_image(tmp_path, lazy):
    path = _ome_two(tmp_path / "two.ome.tif")
    data, meta = read_image(path, series=1, with_metadata=True, lazy=lazy)
    out = write_image(tmp_path / "out.ome.tif", data, metadata=meta)
    with tifffile.TiffFile(out) as tif:
        assert len(tif.series) == 1
        images = _images(tif.ome_metadata)
    assert len(images) == 1  # the other position is not claimed
    pixels = images[0].find(f"{OME_NS}Pixels")
    assert (pixels.get("SizeX"), pixels.get("SizeY"), pixels.get("SizeC")) == ("48", "32", "3")
    assert pixels.get("PhysicalSizeX") == "0.25"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back, back_meta = read_image(out, with_metadata=True)
    np.testing.assert_array_equal(back, _second())
    assert back_meta.kind == "ome-tiff" and back_meta.axes == "CYX"
    assert back_meta.spacing == meta.spacing and back_meta.units == meta.units
    assert back_meta.channel_names == ("DAPI", "GFP", "RFP")
    assert "inpainted with inpaint-plugin" in " ".join(ome_annotations(back_meta.ome_xml))


def test_ome_image_of_a_series_when_tifffile_skips_an_image(tmp_path):
    """An OME ``Image`` whose planes are in a missing file is no series: series 1 is still the image
    stored from IFD 1 (found by its ``TiffData/@IFD``), not the second ``Image`` of the XML."""
    path = _ome_two(tmp_path / "two.ome.tif")
    xml = tifffile.tiffcomment(path)
    elsewhere = ('<Image ID="Image:9" Name="elsewhere"><Pixels ID="Pixels:9" DimensionOrder="XYCZT" Type="uint16" '
                 'SizeX="8" SizeY="8" SizeC="1" SizeZ="1" SizeT="1"><Channel ID="Channel:9:0" SamplesPerPixel="1"/>'
                 '<TiffData IFD="0" PlaneCount="1"><UUID FileName="missing.ome.tif">'
                 'urn:uuid:00000000-0000-0000-0000-000000000000</UUID></TiffData></Pixels></Image>')
    at = xml.index("<Image ")
    tifffile.tiffcomment(path, (xml[:at] + elsewhere + xml[at:]).encode())
    assert count_series(path) == 2
    data, meta = read_image(path, series=1, with_metadata=True)
    np.testing.assert_array_equal(data, _second())
    assert meta.ome_image == 2 and meta.spacing["X"] == 0.25 and meta.channel_names == ("DAPI", "GFP", "RFP")
    assert read_metadata(path, series=0).ome_image == 1
    out = write_image(tmp_path / "out.ome.tif", data, metadata=meta)
    assert [im.get("Name") for im in _images(tifffile.tiffcomment(out))] == ["pos1"]


def test_references_to_the_dropped_images_are_removed(tmp_path):
    """A dataset listing both positions lists only the image written (no reference left dangling)."""
    from inpaint_plugin._metadata import ome_xml_for_output

    path = _ome_two(tmp_path / "two.ome.tif")
    meta = read_metadata(path, series=1)
    root = ET.fromstring(meta.ome_xml)
    ids = [im.get("ID") for im in _images(meta.ome_xml)]
    dataset = ET.Element(f"{OME_NS}Dataset", {"ID": "Dataset:0"})
    for i in ids:
        ET.SubElement(dataset, f"{OME_NS}ImageRef", {"ID": i})
    root.insert(0, dataset)
    xml = ome_xml_for_output(ET.tostring(root, encoding="unicode"), (3, 32, 48), np.uint16, None, image=1)
    out = ET.fromstring(xml)
    assert [im.get("ID") for im in out.findall(f"{OME_NS}Image")] == [ids[1]]
    assert [r.get("ID") for r in out.iter(f"{OME_NS}ImageRef")] == [ids[1]]


def test_pyramid_of_series_1_keeps_its_own_coarse_pixels(tmp_path):
    """The sub-resolutions written for series 1 come from series 1's (not series 0's) pyramid."""
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 1000, (128, 128)).astype(np.uint16), rng.integers(0, 1000, (128, 96)).astype(np.uint16)]

    def coarse(x):  # the maximum of 2x2 blocks: a rule write_image's mean would not reproduce
        return x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).max(axis=(1, 3)).astype(np.uint16)

    path = tmp_path / "pyr.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tw:
        for x in imgs:
            tw.write(x, subifds=1, tile=(64, 64), metadata={"axes": "YX"})
            tw.write(coarse(x), subfiletype=1, tile=(64, 64))
    data, meta = read_image(path, series=1, lazy=True, with_metadata=True)
    changed = data.compute()
    changed[10:14, 10:14] = 0
    out = write_image(tmp_path / "out.ome.tif", changed, metadata=meta)
    with tifffile.TiffFile(out) as tif:
        assert len(tif.series) == 1 and len(tif.series[0].levels) == 2
        np.testing.assert_array_equal(tif.series[0].levels[0].asarray(), changed)
        level1 = tif.series[0].levels[1].asarray()
    differs = level1 != coarse(imgs[1])
    assert differs[5:7, 5:7].all()  # the coarse pixels over the change are recomputed
    differs[5:7, 5:7] = False
    assert not differs.any()  # every other one is series 1's own


# --- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("series", [2, -1, 10])
def test_out_of_range_series_names_the_valid_range(tmp_path, series):
    path = _ome_two(tmp_path / "two.ome.tif")
    for call in (lambda: read_image(path, series=series), lambda: read_image(path, series=series, lazy=True),
                 lambda: read_metadata(path, series=series)):
        with pytest.raises(ValueError, match=rf"series={series}.*{re.escape(str(path))}.*0 to 1"):
            call()


@pytest.mark.parametrize("series", [1.0, "1", True, 1.5])
def test_series_must_be_an_int(tmp_path, series):
    path = _ome_two(tmp_path / "two.ome.tif")
    with pytest.raises(ValueError, match="series must be an int"):
        read_image(path, series=series)


def test_series_of_a_format_without_series_is_refused(tmp_path):
    np.save(tmp_path / "a.npy", _first())
    tifffile.imwrite(tmp_path / "one.tif", _first())
    for path in (tmp_path / "a.npy",):
        with pytest.raises(ValueError, match=r"series=0 applies to TIFF"):
            read_image(path, series=0)
        with pytest.raises(ValueError, match=r"series=1 applies to TIFF"):
            read_metadata(path, series=1)
    np.testing.assert_array_equal(read_image(tmp_path / "one.tif", series=0), _first())  # a one-series TIFF: 0 is valid
    with pytest.raises(ValueError, match="series=1 is out of range.*valid series are 0 to 0"):
        read_image(tmp_path / "one.tif", series=1)


# --- command line ------------------------------------------------------------------------------------

def _hole():
    m = np.zeros((32, 48), bool)
    m[10:15, 20:26] = True
    return m


def test_cli_series_1_fills_the_second_image(tmp_path):
    path = _ome_two(tmp_path / "two.ome.tif")
    tifffile.imwrite(tmp_path / "mask.tif", _hole().astype(np.uint8))
    damaged = _second()
    out = tmp_path / "out.ome.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rc = main([str(path), str(tmp_path / "mask.tif"), "-o", str(out), "--series", "1", "--quiet"])
    assert rc == 0
    result, meta = read_image(out, with_metadata=True)
    expected = ip.inpaint(damaged, _hole(), channel_axis=0)
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(result[:, ~_hole()], damaged[:, ~_hole()])  # known pixels bit for bit
    assert result.dtype == np.uint16
    assert meta.axes == "CYX" and meta.spacing["X"] == 0.25 and meta.channel_names == ("DAPI", "GFP", "RFP")
    assert len(_images(meta.ome_xml)) == 1


def test_cli_series_takes_the_same_series_of_a_mask_of_several(tmp_path):
    path = _ome_two(tmp_path / "two.ome.tif")
    with tifffile.TiffWriter(tmp_path / "masks.tif") as tw:  # one mask per position
        tw.write(np.zeros((64, 80), np.uint8))
        tw.write(_hole().astype(np.uint8))
    out = tmp_path / "out.tif"
    assert main([str(path), str(tmp_path / "masks.tif"), "-o", str(out), "--series", "1", "--quiet"]) == 0
    np.testing.assert_array_equal(tifffile.imread(out), ip.inpaint(_second(), _hole(), channel_axis=0))


def test_cli_without_series_warns_once(tmp_path, recwarn):
    path = tmp_path / "multi.tif"
    img = _first().astype(np.float32)
    img[5:8, 5:9] = np.nan
    with tifffile.TiffWriter(path) as tw:
        tw.write(img)
        tw.write(_second(), photometric="minisblack")
    for extra in ([], ["--chunks", "32"]):
        recwarn.clear()
        out = tmp_path / f"out{len(extra)}.tif"
        assert main([str(path), "-o", str(out), "--quiet", *extra]) == 0
        notes = [w for w in recwarn if "image series" in str(w.message)]
        assert len(notes) == 1, extra
        assert "--series" in str(notes[0].message)
        result = tifffile.imread(out)
        assert result.shape == (64, 80) and not np.isnan(result).any()


def test_cli_series_errors_name_the_option(tmp_path, capsys):
    path = _ome_two(tmp_path / "two.ome.tif")
    np.save(tmp_path / "a.npy", _first())
    out = tmp_path / "out.tif"
    assert main([str(path), "-o", str(out), "--nodata", "0", "--series", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--series 2 is out of range" in err and "0 to 1" in err
    assert main([str(tmp_path / "a.npy"), "-o", str(out), "--nodata", "0", "--series", "1", "--quiet"]) == 2
    assert "--series 1 applies to TIFF" in capsys.readouterr().err
    assert main([str(path), "-o", str(out), "--nodata", "0", "--series", "x"]) == 2  # argparse: not an int
    assert "--series" in capsys.readouterr().err
    assert not out.exists()


def test_cli_series_with_chunks(tmp_path):
    """``--chunks`` streams the chosen series (the lazy reader takes ``series`` too)."""
    path = _ome_two(tmp_path / "two.ome.tif")
    tifffile.imwrite(tmp_path / "mask.tif", _hole().astype(np.uint8))
    out = tmp_path / "out.tif"
    rc = main([str(path), str(tmp_path / "mask.tif"), "-o", str(out), "--series", "1", "--chunks", "32", "--quiet"])
    assert rc == 0
    np.testing.assert_array_equal(tifffile.imread(out), ip.inpaint(_second(), _hole(), channel_axis=0))
