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


# --- the format table ----------------------------------------------------------------------------

def test_one_format_table_serves_reader_writer_and_channel_rules(tmp_path):
    from inpaint_plugin import _io
    from inpaint_plugin._formats import FORMATS, READ_SUFFIXES, default_channel_axis, format_for

    assert set(_io._PICTURE) == {s for f in FORMATS if f.kind == "picture" for s in f.suffixes}
    for suffix in READ_SUFFIXES:
        assert suffix in format_for(f"x{suffix.upper()}").suffixes
    assert format_for("a.ome.tif").name == "OME-TIFF" and format_for("a.tif").name == "TIFF"
    store = tmp_path / "store"
    zarr.open_array(str(store), mode="w", shape=(4, 4), dtype="u1")
    assert format_for(store).kind == "zarr"  # a zarr folder whatever its name
    # WebP (the suffix that worked with --chunks only) is read and written losslessly, RGB and RGBA
    for channels in (3, 4):
        rgb = _image((30, 40, channels), np.uint8, seed=channels)
        write_image(tmp_path / f"c{channels}.webp", rgb)
        np.testing.assert_array_equal(read_image(tmp_path / f"c{channels}.webp"), rgb)
        np.testing.assert_array_equal(read_image(tmp_path / f"c{channels}.webp", lazy=True).compute(), rgb)
        assert default_channel_axis(tmp_path / f"c{channels}.webp", rgb.shape) == 2
    assert default_channel_axis("x.npy", (30, 40, 3)) is None
    assert default_channel_axis("x.tif", (3, 30, 40), axes="CYX") == 0


@pytest.mark.parametrize("name, dtype, shape, match", [
    ("out.png", np.float32, (20, 30), r"path=.*out.png: PNG cannot hold floating-point float32 .*\.tif"),
    ("out.png", np.int16, (20, 30), r"PNG cannot hold signed .*int16.*\.tif"),
    ("out.png", np.uint8, (20, 30, 5), r"PNG holds one 2-D image with at most 4 channels.*\(20, 30, 5\).*\.tif"),
    ("out.png", np.uint16, (20, 30, 3), r"PNG holds uint16 images as grey only.*\.tif"),
    ("out.png", np.uint8, (4, 20, 30), r"PNG holds one 2-D image.*or a stack of images.*\.tif"),
    ("out.png", np.uint8, (2, 4, 20, 30), r"PNG holds one 2-D image \(Y, X\) or \(Y, X, channels\).*\.tif"),
    ("out.jpg", np.uint8, (20, 30), r"JPEG is lossy.*allow_lossy=True"),
    ("out.gif", np.uint8, (20, 30), r"GIF files can be read but not written"),
    ("out.ome.tif", np.int64, (20, 30), r"OME-TIFF cannot hold int64"),
    ("out.bmp", np.uint8, (20, 30, 4),
     r"BMP holds one 2-D image with at most 3 channels, the result has shape \(20, 30, 4\) \(4 channels\)"),
])
def test_outputs_that_cannot_hold_the_result_are_refused_before_any_work(tmp_path, name, dtype, shape, match):
    from inpaint_plugin._formats import check_writable

    with pytest.raises(ValueError, match=match):
        check_writable(tmp_path / name, dtype, shape)

    def never(block):
        raise AssertionError("computed before the format was checked")

    lazy = da.zeros(shape, dtype=dtype, chunks=10).map_blocks(never, dtype=dtype)
    with pytest.raises(ValueError, match=match.replace("path=", "")):
        write_image(tmp_path / name, lazy)
    assert _leftovers(tmp_path, set()) == []
    with pytest.raises(ValueError, match="-o/--output=.*" + name.replace(".", r"\.")):
        check_writable(tmp_path / name, dtype, shape, argument="-o/--output")


def test_jpeg_only_when_lossy_output_is_allowed(tmp_path):
    grey = _image((40, 50), np.uint8, seed=11)
    with pytest.raises(ValueError, match="lossy"):
        write_image(tmp_path / "a.jpg", grey)
    write_image(tmp_path / "a.jpg", grey, allow_lossy=True)
    assert read_image(tmp_path / "a.jpg").shape == grey.shape


# --- safe writing: folders, symlinks, signals -----------------------------------------------------

def test_an_existing_folder_is_never_replaced(tmp_path):
    x = _image((20, 20), np.uint16, seed=12)
    for name in ("results.tif", "plain.zarr", "empty.zarr", "data.npy"):
        folder = tmp_path / name
        folder.mkdir()
        if name != "empty.zarr":
            (folder / "notes.txt").write_text("precious")
        for overwrite in (False, True):
            with pytest.raises(IsADirectoryError, match=rf"{name}: it is .*folder.*refusing to replace"):
                write_image(folder, x, overwrite=overwrite)
        if name != "empty.zarr":
            assert (folder / "notes.txt").read_text() == "precious"
    # a zarr store is replaced, only with overwrite=True
    write_image(tmp_path / "store.zarr", x)
    with pytest.raises(FileExistsError, match="store.zarr"):
        write_image(tmp_path / "store.zarr", x + 1, overwrite=False)
    write_image(tmp_path / "store.zarr", x + 1, overwrite=True)
    np.testing.assert_array_equal(read_image(tmp_path / "store.zarr"), x + 1)
    assert _leftovers(tmp_path, {"results.tif", "plain.zarr", "empty.zarr", "data.npy", "store.zarr"}) == []


@pytest.mark.parametrize("name", ["out.tif", "out.npy", "out.zarr", "out.png"])
@pytest.mark.parametrize("source", ["numpy", "dask"])
def test_a_symlink_output_is_written_through(tmp_path, name, source):
    real_dir, link_dir = tmp_path / "real", tmp_path / "links"
    real_dir.mkdir()
    link_dir.mkdir()
    old = _image((16, 16), np.uint8, seed=13)
    new = _image((16, 16), np.uint8, seed=14)
    write_image(real_dir / name, old)
    (link_dir / name).symlink_to(f"../real/{name}")
    data = new if source == "numpy" else da.from_array(new, chunks=8)
    assert write_image(link_dir / name, data) == link_dir / name
    assert (link_dir / name).is_symlink() and (link_dir / name).resolve() == (real_dir / name).resolve()
    np.testing.assert_array_equal(read_image(real_dir / name), new)
    assert _leftovers(real_dir, {name}) == [] and _leftovers(link_dir, {name}) == []
    # a dangling link: its target is created
    (link_dir / f"new-{name}").symlink_to(f"../real/new-{name}")
    write_image(link_dir / f"new-{name}", new)
    assert (link_dir / f"new-{name}").is_symlink()
    np.testing.assert_array_equal(read_image(real_dir / f"new-{name}"), new)


_SLOW_WRITER = r'''
import signal, sys, time
import numpy as np
import dask.array as da
from inpaint_plugin._io import write_image

out, mode = sys.argv[1], sys.argv[2]
if mode == "ignore-hup":
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

def slow(block):
    time.sleep(0.05)
    return block + 1

x = da.zeros((64 * 60, 256), dtype=np.uint16, chunks=(64, 256)).map_blocks(slow, dtype=np.uint16)
write_image(out, x)
print("finished", flush=True)
'''


@pytest.mark.parametrize("sig, name, mode", [
    ("SIGTERM", "out.tif", ""),
    ("SIGHUP", "out.zarr", ""),
    ("SIGINT", "out.npy", ""),
    ("SIGTERM", "out.zarr", ""),
    ("SIGHUP", "out.tif", "ignore-hup"),
])
def test_a_signal_during_a_write_leaves_no_partial_file_and_the_old_output(tmp_path, sig, name, mode):
    import signal
    import subprocess
    import sys
    import time

    signum = getattr(signal, sig)
    out = tmp_path / name
    old = _image((10, 10), np.uint16, seed=15)
    write_image(out, old)
    script = tmp_path / "writer.py"
    script.write_text(_SLOW_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(out), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(".partial" in p.name for p in tmp_path.iterdir()):  # the write has begun
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.02)
        time.sleep(0.3)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if mode == "ignore-hup":  # an ignored SIGHUP (nohup) stays ignored: the write completes
        assert proc.returncode == 0 and "finished" in stdout, stderr
        assert read_image(out).shape == (64 * 60, 256) and (read_image(out) == 1).all()
    else:
        assert proc.returncode == -signum, stderr  # ended by the signal, as without the handler
        assert "finished" not in stdout
        np.testing.assert_array_equal(read_image(out), old)
    assert _leftovers(tmp_path, {name, "writer.py"}) == []


def test_stream_inpaint_checks_the_output_before_any_work_and_can_drop_metadata(tmp_path):
    rgb = _image((40, 50, 3), np.uint8, seed=16)
    write_image(tmp_path / "in.webp", rgb)  # a WebP input: channels last, from the table
    with pytest.raises(ValueError, match="out_path=.*out.jpg: JPEG is lossy"):
        stream_inpaint(tmp_path / "in.webp", None, tmp_path / "out.jpg", "biharmonic", progress=False)
    stream_inpaint(tmp_path / "in.webp", None, tmp_path / "out.jpg", "biharmonic", progress=False, allow_lossy=True,
                   nodata=0)
    assert read_image(tmp_path / "out.jpg").shape == rgb.shape
    stack = _image((3, 30, 40), np.uint16, seed=17)
    tifffile.imwrite(tmp_path / "s.tif", stack, metadata={"axes": "CYX"})
    with pytest.raises(ValueError, match="out_path=.*PNG holds one 2-D image with its channels last"):
        stream_inpaint(tmp_path / "s.tif", None, tmp_path / "s.png", "biharmonic", progress=False)
    stream_inpaint(tmp_path / "s.tif", None, tmp_path / "kept.tif", "biharmonic", progress=False, nodata=0)
    stream_inpaint(tmp_path / "s.tif", None, tmp_path / "bare.tif", "biharmonic", progress=False, nodata=0,
                   keep_metadata=False)
    assert read_image(tmp_path / "kept.tif", with_metadata=True)[1].axes == "CYX"
    assert read_image(tmp_path / "bare.tif", with_metadata=True)[1].axes != "CYX"


def test_read_metadata_of_tiff_npy_zarr_and_damaged_files(tmp_path):
    from inpaint_plugin._io import read_metadata

    x = _image((5, 60, 70), np.uint16, seed=18)
    tifffile.imwrite(tmp_path / "s.tif", x, metadata={"axes": "ZYX"}, tile=(32, 32), compression="zlib")
    np.save(tmp_path / "a.npy", x)
    write_image(tmp_path / "z.zarr", x)
    for name in ("s.tif", "a.npy", "z.zarr"):
        meta = read_metadata(tmp_path / name)
        assert meta.shape == x.shape and meta.dtype == "uint16"
    assert read_metadata(tmp_path / "s.tif").axes == "ZYX"
    (tmp_path / "cut.tif").write_bytes((tmp_path / "s.tif").read_bytes()[:400])
    with pytest.raises(ValueError, match="cut.tif"):
        read_metadata(tmp_path / "cut.tif")
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        read_metadata(tmp_path / "missing.tif")


def test_read_progress_reports_slabs_and_gives_the_same_pixels(tmp_path):
    x = _image((300, 200), np.uint16, seed=19)
    stack = _image((6, 40, 50), np.float32, seed=20)
    tifffile.imwrite(tmp_path / "tiled.tif", x, tile=(16, 16), compression="zlib")
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    write_image(tmp_path / "z.zarr", da.from_array(x, chunks=(10, 200)))
    for name, expected in (("tiled.tif", x), ("stack.tif", stack), ("z.zarr", x)):
        calls = []
        got = read_image(tmp_path / name, progress=lambda done, total: calls.append((done, total)))
        np.testing.assert_array_equal(got, expected)
        assert calls and calls[-1][0] == calls[-1][1] and len(calls) == calls[-1][1]
        assert [c[0] for c in calls] == list(range(1, len(calls) + 1))
    calls = []
    read_image(tmp_path / "z.zarr", progress=lambda done, total: calls.append(done))
    assert len(calls) == 30  # 300 rows in chunks of 10: one slab per chunk row (at most 64)
