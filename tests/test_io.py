"""Image I/O: lazy reads, streaming atomic writes, clear errors, and stream_inpaint()."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
import tifffile  # noqa: E402

from inpaint_plugin import inpaint  # noqa: E402
from inpaint_plugin._dask import stream_inpaint  # noqa: E402
from inpaint_plugin._io import read_image, write_image  # noqa: E402


def _image(shape, dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is None:
        return rng.random(shape).astype(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def _leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.mark.parametrize("name", ["img.tif", "img.zarr", "img.npy", "img.png"])
@pytest.mark.parametrize("source", ["numpy", "dask"])
def test_round_trip(tmp_path, name, source):
    x = _image((130, 170), np.uint16 if name != "img.png" else np.uint8)
    data = x if source == "numpy" else da.from_array(x, chunks=(50, 60))
    path = write_image(tmp_path / name, data)
    assert path == tmp_path / name
    assert _leftovers(tmp_path, {name}) == []
    eager = read_image(path)
    assert isinstance(eager, np.ndarray) and eager.dtype == x.dtype
    np.testing.assert_array_equal(eager, x)
    lazy = read_image(path, lazy=True)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), x)


def test_tiff_streaming_layouts(tmp_path):
    # chunk rows that are no multiple of the 256-pixel tiles
    x = _image((600, 500), np.float32)
    write_image(tmp_path / "a.tif", da.from_array(x, chunks=(170, 130)))
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert tif.pages[0].is_tiled
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), x)
    # a stack chunked across pages goes through a temporary zarr; pages come out in order
    stack = _image((5, 70, 90), np.uint16, seed=1)
    write_image(tmp_path / "s.tif", da.from_array(stack, chunks=(2, 40, 40)))
    np.testing.assert_array_equal(read_image(tmp_path / "s.tif"), stack)
    assert _leftovers(tmp_path, {"a.tif", "s.tif"}) == []
    # (Y, X, 3) uint8 is written as RGB
    rgb = _image((40, 50, 3), np.uint8, seed=2)
    write_image(tmp_path / "rgb.tiff", rgb)
    with tifffile.TiffFile(tmp_path / "rgb.tiff") as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.tiff"), rgb)


def test_lazy_tiff_strips_memmap_and_pickling(tmp_path):
    x = _image((300, 200), np.uint16, seed=3)
    tifffile.imwrite(tmp_path / "plain.tif", x)  # uncompressed: read through a memory map
    tifffile.imwrite(tmp_path / "zlib.tif", x, compression="zlib", rowsperstrip=16)
    for name in ("plain.tif", "zlib.tif"):
        lazy = read_image(tmp_path / name, lazy=True, chunks=(64, 128))
        assert lazy.chunks[0][0] == 64
        np.testing.assert_array_equal(lazy[100:200, 50:150].compute(), x[100:200, 50:150])
        # the graph pickles without open file handles (for dask.distributed worker processes)
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(lazy)).compute(), x)


def test_ome_zarr_multiscale_gives_full_resolution(tmp_path):
    x = _image((64, 48), np.uint16, seed=4)
    for version, fmt in (("0.4", 2), ("0.5", 3)):
        root = zarr.open_group(str(tmp_path / f"v{fmt}.ome.zarr"), mode="w", zarr_format=fmt)
        root.create_array("0", data=x, chunks=(32, 32))
        root.create_array("1", data=x[::2, ::2], chunks=(32, 32))
        datasets = [{"path": "0"}, {"path": "1"}]
        meta = {"version": version, "axes": [{"name": "y"}, {"name": "x"}], "datasets": datasets}
        if fmt == 2:
            root.attrs["multiscales"] = [meta]
        else:
            root.attrs["ome"] = {"version": version, "multiscales": [meta]}
        path = tmp_path / f"v{fmt}.ome.zarr"
        np.testing.assert_array_equal(read_image(path), x)
        np.testing.assert_array_equal(read_image(path, lazy=True).compute(), x)
    plain = zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    plain.create_array("a", data=x)
    plain.create_array("b", data=x)
    with pytest.raises(ValueError, match=r"plain.zarr .*holds arrays: a, b"):
        read_image(tmp_path / "plain.zarr")


def test_failed_write_leaves_nothing_and_keeps_the_old_output(tmp_path):
    def fail_late(block, block_info=None):
        if block_info[0]["chunk-location"] == (2, 1):
            raise RuntimeError("disk on fire")
        return block

    x = _image((90, 60), np.uint16, seed=5)
    bad = da.from_array(x, chunks=30).map_blocks(fail_late, dtype=x.dtype)
    for name in ("out.zarr", "out.tif", "out.npy"):
        with pytest.raises(RuntimeError, match="disk on fire"):
            write_image(tmp_path / name, bad)
        assert _leftovers(tmp_path, set()) == []
    old = _image((10, 10), np.uint16, seed=6)
    for name in ("old.zarr", "old.tif"):
        write_image(tmp_path / name, old)
        with pytest.raises(RuntimeError, match="disk on fire"):
            write_image(tmp_path / name, bad)
        np.testing.assert_array_equal(read_image(tmp_path / name), old)
        write_image(tmp_path / name, x)  # a successful write replaces it, even a zarr folder
        np.testing.assert_array_equal(read_image(tmp_path / name), x)
        with pytest.raises(FileExistsError, match=name):
            write_image(tmp_path / name, x, overwrite=False)
    assert _leftovers(tmp_path, {"old.zarr", "old.tif"}) == []


def test_read_errors_name_the_path(tmp_path):
    x = _image((200, 150), np.uint16, seed=7)
    for name, kwargs in (("plain.tif", {}), ("tiled.tif", {"tile": (64, 64), "compression": "zlib"})):
        tifffile.imwrite(tmp_path / name, x, **kwargs)
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"cut-{name}").write_bytes(data[: len(data) // 2])
        for lazy in (False, True):
            with pytest.raises(ValueError, match=rf"cut-{name}: the file is truncated"):
                read_image(tmp_path / f"cut-{name}", lazy=lazy)
    # a stack cut where its second page begins, and a header cut inside the first page's tag values:
    # tifffile reads what it can (the first page; a blank bool image) and only logs the damage
    stack = _image((5, 30, 40), np.uint16, seed=8)
    tifffile.imwrite(tmp_path / "stack.tif", stack, tile=(16, 16), compression="zlib")
    with tifffile.TiffFile(tmp_path / "stack.tif") as tif:
        second = tif.pages[1].offset
    (tmp_path / "cut-stack.tif").write_bytes((tmp_path / "stack.tif").read_bytes()[:second])
    tifffile.imwrite(tmp_path / "floats.tif", _image((4, 24, 28), np.float32, seed=9))
    (tmp_path / "cut-header.tif").write_bytes((tmp_path / "floats.tif").read_bytes()[:220])
    for name in ("cut-stack.tif", "cut-header.tif"):
        for lazy in (False, True):
            with pytest.raises(ValueError, match=rf"{name}: the file is damaged or truncated"):
                read_image(tmp_path / name, lazy=lazy)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "cut.npy").write_bytes((tmp_path / "x.npy").read_bytes()[:500])
    for lazy in (False, True):
        with pytest.raises(ValueError, match="cut.npy"):
            read_image(tmp_path / "cut.npy", lazy=lazy)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="obj.npy.*pickle"):
        read_image(tmp_path / "obj.npy")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(ValueError, match="junk.tif"):
        read_image(tmp_path / "junk.tif")
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        read_image(tmp_path / "missing.tif")
    (tmp_path / "x.xyz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"x.xyz: unsupported image format '.xyz'"):
        read_image(tmp_path / "x.xyz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_image(tmp_path / "no" / "dir" / "out.tif", x)


def test_progress_bar(tmp_path, capsys):
    write_image(tmp_path / "p.zarr", da.from_array(_image((40, 40)), chunks=20), progress=True)
    err = capsys.readouterr().err
    assert "writing p.zarr" in err and "4/4" in err
    write_image(tmp_path / "q.zarr", _image((40, 40)))
    assert capsys.readouterr().err == ""


def test_stream_inpaint_tiff_and_png_mask_to_zarr_and_tiff(tmp_path):
    yy, xx = np.mgrid[:150, :170]
    img = (2000 + 800 * np.sin(yy / 13) * np.cos(xx / 17)).astype(np.uint16)
    mask = np.zeros(img.shape, bool)
    mask[::37, ::29] = True  # dead pixels
    mask[:, 100] = True  # a dead column
    mask[60:63, 20:90] = True  # a stripe
    tifffile.imwrite(tmp_path / "in.tif", img, tile=(32, 32))
    write_image(tmp_path / "mask.png", np.stack([mask.astype(np.uint8) * 255] * 3, axis=-1))  # an RGB mask
    expected = inpaint(img, mask, "biharmonic")
    for out in ("out.zarr", "out.tif"):
        written = stream_inpaint(tmp_path / "in.tif", tmp_path / "mask.png", tmp_path / out, "biharmonic",
                                 chunks=64, progress=False)
        np.testing.assert_array_equal(read_image(written), expected)
    nan = img.astype(np.float32)
    nan[mask] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    stream_inpaint(tmp_path / "nan.npy", None, tmp_path / "filled.npy", "biharmonic", chunks=64, progress=False)
    np.testing.assert_allclose(read_image(tmp_path / "filled.npy"), inpaint(nan, None, "biharmonic"), rtol=1e-6)
    with pytest.raises(ValueError, match="chunks"):
        stream_inpaint(tmp_path / "in.tif", None, tmp_path / "x.zarr", "biharmonic", chunks=0)
