"""The command line tool on real files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

import inpaint_plugin as ip
from inpaint_plugin.cli import main


def _ramp(dtype=np.uint16):
    yy, xx = np.mgrid[:30, :40]
    return (yy * 20 + xx * 10).astype(dtype)


def _mask():
    m = np.zeros((30, 40), bool)
    m[10:15, 12:20] = True
    return m


def test_tiff_in_tiff_out(tmp_path):
    img, mask = _ramp(), _mask()
    tifffile.imwrite(tmp_path / "img.tif", img)
    tifffile.imwrite(tmp_path / "mask.tif", mask.astype(np.uint8) * 255)
    rc = main([str(tmp_path / "img.tif"), str(tmp_path / "mask.tif"), "-o", str(tmp_path / "out.tif"), "--quiet"])
    assert rc == 0
    out = tifffile.imread(tmp_path / "out.tif")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, ip.inpaint(img, mask))
    np.testing.assert_array_equal(out, img)  # a ramp is reproduced exactly


def test_png_rgb_with_params_and_npy_out(tmp_path):
    rgb = np.stack([_ramp(np.uint8), 255 - _ramp(np.uint8), np.full((30, 40), 7, np.uint8)], -1)
    iio.imwrite(tmp_path / "img.png", rgb)
    iio.imwrite(tmp_path / "mask.png", np.repeat((_mask() * 255).astype(np.uint8)[..., None], 3, -1))
    rc = main([str(tmp_path / "img.png"), str(tmp_path / "mask.png"), "-o", str(tmp_path / "out.npy"),
               "--method", "biharmonic", "--quiet"])
    assert rc == 0
    out = np.load(tmp_path / "out.npy")
    np.testing.assert_array_equal(out, ip.inpaint(rgb, _mask(), channel_axis=-1))


def test_nan_fill_without_mask(tmp_path):
    img = _ramp().astype(np.float32)
    img[3:6, 3:6] = np.nan
    np.save(tmp_path / "img.npy", img)
    assert main([str(tmp_path / "img.npy"), "-o", str(tmp_path / "out.npy"), "--quiet"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), _ramp().astype(np.float32), atol=1e-3)


def test_nodata_option(tmp_path):
    img = _ramp() + 1
    img[5, 5] = 0
    np.save(tmp_path / "img.npy", img)
    assert main([str(tmp_path / "img.npy"), "-o", str(tmp_path / "o.npy"), "--nodata", "0", "--quiet"]) == 0
    assert np.load(tmp_path / "o.npy")[5, 5] == (_ramp() + 1)[5, 5]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "nope"], "unknown method 'nope'"),
        (["--param", "bogus=1"], "unexpected parameter"),
        (["--param", "novalue"], "key=value"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, extra, message):
    np.save(tmp_path / "img.npy", _ramp())
    np.save(tmp_path / "mask.npy", _mask())
    out = tmp_path / "out.tif"
    rc = main([str(tmp_path / "img.npy"), str(tmp_path / "mask.npy"), "-o", str(out), "--quiet", *extra])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_mask_shape_mismatch(tmp_path, capsys):
    np.save(tmp_path / "img.npy", _ramp())
    np.save(tmp_path / "mask.npy", np.ones((5, 5), bool))
    out = tmp_path / "out.npy"
    assert main([str(tmp_path / "img.npy"), str(tmp_path / "mask.npy"), "-o", str(out)]) == 2
    assert "mask shape" in capsys.readouterr().err
    assert not out.exists()


def test_missing_input_and_output(tmp_path, capsys):
    assert main([str(tmp_path / "missing.tif"), "-o", str(tmp_path / "o.tif")]) == 2
    assert "missing.tif" in capsys.readouterr().err
    np.save(tmp_path / "img.npy", _ramp())
    assert main([str(tmp_path / "img.npy")]) == 2
    assert "--output" in capsys.readouterr().err


def test_list_and_json(capsys):
    assert main(["--list"]) == 0
    text = capsys.readouterr().out
    assert "biharmonic" in text
    assert main(["--list", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) == set(ip.methods())
    assert table["biharmonic"]["spatial_ndim"] is None


def test_demo_writes_before_after_png(tmp_path):
    """The README's first command, through the installed console script."""
    out = tmp_path / "demo.png"
    res = subprocess.run([sys.executable, "-m", "inpaint_plugin", "--demo", "-o", str(out)],
                         capture_output=True, text=True, check=True)
    assert "hole PSNR" in res.stdout
    after = float(res.stdout.split("before, ")[1].split(" dB")[0])
    assert after > 35  # the bundled damage is really repaired
    montage = iio.imread(out)
    assert montage.dtype == np.uint8 and montage.shape == (660, 3 * 550 + 16)


CORE_ONLY = """
import importlib.abc, sys
# the optional extras are absent: importing any of them fails, as on a core `pip install .`
EXTRAS = {"dask", "distributed", "zarr", "torch", "napari", "magicgui", "qtpy", "safetensors"}
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in EXTRAS:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Absent())
from inpaint_plugin.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _core_cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-c", CORE_ONLY, *map(str, args)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)


def test_readme_demo_and_eager_io_work_without_the_extras(tmp_path):
    """The README's first command needs no optional extra (dask, zarr, torch, napari)."""
    proc = _core_cli(tmp_path, "--demo")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert iio.imread(tmp_path / "inpaint-demo.png").shape[1] > 3 * 550  # damaged | mask | repaired
    rng = np.random.default_rng(0)
    image = (rng.random((40, 300)) * 60000).astype(np.uint16)  # wider than one 256 px TIFF tile
    mask = np.zeros(image.shape, np.uint8)
    mask[10:20, 100:140] = 1
    tifffile.imwrite(tmp_path / "in.tif", image)
    tifffile.imwrite(tmp_path / "mask.tif", mask)
    expected = ip.inpaint(image, mask.astype(bool))
    for out, read in (("out.tif", tifffile.imread), ("out.npy", np.load)):
        proc = _core_cli(tmp_path, "in.tif", "mask.tif", "-o", out, "--quiet")
        assert proc.returncode == 0, proc.stderr[-2000:]
        np.testing.assert_array_equal(read(tmp_path / out), expected)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    for args, message in ((["in.tif", "mask.tif", "-o", "out.zarr"], ".zarr output needs the dask extra"),
                          (["in.tif", "mask.tif", "-o", "s.tif", "--chunks", "64"],
                           "--chunks (streaming) needs the dask extra"),
                          (["in.zarr", "mask.tif", "-o", "z.tif"], ".zarr input needs the dask extra")):
        proc = _core_cli(tmp_path, *args, "--quiet")
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not any((tmp_path / name).exists() for name in ("out.zarr", "s.tif", "z.tif"))
    proc = _core_cli(tmp_path, "in.tif", "mask.tif", "-o", "deep.tif", "--method", "deepfill_v2", "--quiet")
    assert proc.returncode == 1 and "needs PyTorch" in proc.stderr and "inpaint-plugin[deep]" in proc.stderr
    proc = _core_cli(tmp_path, "train", "--method", "deepfill_v2", "--images", "in.tif", "--out", "m.pth")
    assert proc.returncode != 0 and "needs PyTorch" in proc.stderr
    assert not (tmp_path / "deep.tif").exists() and not (tmp_path / "m.pth").exists()


def test_detect_option_finds_and_fills_the_defects(tmp_path, capsys):
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[:80, :90]
    image = (2000 + 300 * np.sin(yy / 9) * np.cos(xx / 13) + rng.normal(0, 5, (80, 90))).astype(np.uint16)
    image[10, 20] = 60000  # a hot pixel
    image[:, 45] = 0  # a dead column
    image[60:62, 30:33] = 60000  # a cluster
    tifffile.imwrite(tmp_path / "in.tif", image)
    found = ip.detect(image)
    assert found[10, 20] and found[:, 45].all() and found[60:62, 30:33].all()

    assert main([str(tmp_path / "in.tif"), "-o", str(tmp_path / "out.tif"), "--detect",
                 "--mask-out", str(tmp_path / "mask.tif")]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), ip.inpaint(image, found))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "mask.tif"), found.astype(np.uint8))
    assert f"detected {found.sum()} defective pixels" in capsys.readouterr().err

    # chosen kinds, plus a hand-made mask: the union is filled
    extra = np.zeros(image.shape, np.uint8)
    extra[5:8, 70:75] = 1
    tifffile.imwrite(tmp_path / "extra.tif", extra)
    assert main([str(tmp_path / "in.tif"), str(tmp_path / "extra.tif"), "-o", str(tmp_path / "o2.tif"),
                 "--detect", "hot,lines", "--mask-out", str(tmp_path / "m2.npy"), "--quiet"]) == 0
    union = ip.detect(image, ["hot", "lines"]) | (extra != 0)
    assert not union[60:62, 30:33].all()  # clusters were not asked for
    np.testing.assert_array_equal(np.load(tmp_path / "m2.npy"), union.astype(np.uint8))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o2.tif"), ip.inpaint(image, union))

    for extra_args, message in ((["--detect", "hot,sparkles"], "unknown kind 'sparkles'"),
                                (["--detect", "--chunks", "64"], "cannot be combined with --chunks"),
                                (["--mask-out", str(tmp_path / "m.xyz")], "unsupported image format")):
        assert main([str(tmp_path / "in.tif"), "-o", str(tmp_path / "bad.tif"), *extra_args]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad.tif").exists()


# --------------------------------------------------------------------------------------------------
# the command on real files and paths (issues 15, 20): run in this process (the ``cli`` fixture), and
# as the installed command in a subprocess where only a process shows the behaviour (exit status,
# signals)
# --------------------------------------------------------------------------------------------------
EXE = Path(sys.executable).with_name("inpaint-plugin")
installed = pytest.mark.skipif(not EXE.exists(), reason="the inpaint-plugin command is not installed")


def _run_cli(cwd, *args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(cwd, *args)``: the command run in this process, as the installed command runs it
    (``sys.exit(main(args))``) from the working directory ``cwd``; returns what ``_run_cli`` returns
    (exit code, stdout, stderr). The tests of what only a process shows (its exit status, signals,
    missing extras) run the installed command in a subprocess."""

    def call(cwd, *args):
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        argv = [str(a) for a in args]
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: -h, usage errors
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(argv, code, out, err)

    return call


@pytest.fixture
def files(tmp_path):
    tifffile.imwrite(tmp_path / "img.tif", _ramp())
    tifffile.imwrite(tmp_path / "mask.tif", _mask().astype(np.uint8))
    return tmp_path


def test_outputs_that_would_destroy_data_are_refused_before_any_work(files, cli):
    d = files
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    # --mask-out naming the result, directly or through a symlink / another spelling
    (d / "link.tif").symlink_to(d / "out.tif")
    for same in ("out.tif", "./out.tif", "link.tif", str(d / "sub" / ".." / "out.tif")):
        (d / "sub").mkdir(exist_ok=True)
        proc = cli(d, "img.tif", "mask.tif", "-o", "out.tif", "--mask-out", same)
        assert proc.returncode == 2 and "name the same file" in proc.stderr, proc.stderr
    # the result or the mask onto an input
    for args in (["-o", "img.tif"], ["-o", "o.tif", "--mask-out", "mask.tif"], ["-o", "./sub/../img.tif"]):
        proc = cli(d, "img.tif", "mask.tif", *args)
        assert proc.returncode == 2 and "refusing to replace an input" in proc.stderr, proc.stderr
    # an existing folder, with or without --overwrite
    (d / "res.tif").mkdir()
    (d / "res.tif" / "keep.txt").write_text("precious")
    for extra in ([], ["--overwrite"]):
        proc = cli(d, "img.tif", "mask.tif", "-o", "res.tif", *extra)
        assert proc.returncode == 2 and "existing folder" in proc.stderr
    assert (d / "res.tif" / "keep.txt").read_text() == "precious"
    assert not (d / "out.tif").exists() and not (d / "o.tif").exists()
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and not p.is_symlink()} == before


def test_overwrite_replaces_a_zarr_store_only_when_asked(files, cli):
    pytest.importorskip("dask.array")
    zarr = pytest.importorskip("zarr")
    d = files
    zarr.save_array(str(d / "store.zarr"), np.zeros((2, 2), np.uint16))
    proc = cli(d, "img.tif", "mask.tif", "-o", "store.zarr", "--quiet")
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert ip.read_image(d / "store.zarr").shape == (2, 2)
    proc = cli(d, "img.tif", "mask.tif", "-o", "store.zarr", "--overwrite", "--quiet")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.asarray(ip.read_image(d / "store.zarr")), ip.inpaint(_ramp(), _mask()))


@installed
def test_the_installed_command_exits_2_on_a_refused_run(files):
    """The entry point hands main's return code to the process: a refused run exits with status 2,
    the message and no traceback on stderr, and writes nothing."""
    proc = _run_cli(files, "img.tif", "mask.tif", "-o", "out.tif", "-p", "seed=abc")
    assert proc.returncode == 2, proc.stderr
    assert "--param seed=abc: expected an integer" in proc.stderr and "Traceback" not in proc.stderr
    assert not (files / "out.tif").exists()


@installed
def test_output_through_a_symlink_keeps_the_link(files):
    d = files
    (d / "target").mkdir()
    (d / "target" / "real.tif").write_bytes(b"old")
    (d / "out.tif").symlink_to(d / "target" / "real.tif")
    proc = _run_cli(d, "img.tif", "mask.tif", "-o", "out.tif", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (d / "out.tif").is_symlink()
    np.testing.assert_array_equal(tifffile.imread(d / "target" / "real.tif"), ip.inpaint(_ramp(), _mask()))
    assert sorted(p.name for p in (d / "target").iterdir()) == ["real.tif"]  # no temporary left


@pytest.mark.parametrize("args, message", [
    (["-m", "patchmatch", "-p", "seed=abc"], "--param seed=abc: expected an integer"),
    (["-p", "seed=abc"], "--param seed=abc: expected an integer (the random seed)"),
    (["-m", "criminisi", "-p", "search_radius=" + "1" + "0" * 30], "--param search_radius=1000"),
    (["-m", "criminisi", "-p", "search_radius=10**30"], "parameter 'search_radius' of method 'criminisi'"),
    (["-m", "telea", "-p", "radius=abc"], "--param radius=abc"),
])
def test_bad_parameter_values_name_the_parameter_and_type(files, args, message, cli):
    proc = cli(files, "img.tif", "mask.tif", "-o", "out.tif", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    if "0" * 30 in args[-1]:
        assert "too large" in proc.stderr
    assert not (files / "out.tif").exists()


def test_lossy_and_unfit_formats_are_refused_before_any_work(files, cli):
    d = files
    rgb = np.stack([_ramp(np.uint8), 255 - _ramp(np.uint8), np.full((30, 40), 9, np.uint8)], -1)
    iio.imwrite(d / "rgb.png", rgb)
    proc = cli(d, "rgb.png", "mask.tif", "-o", "out.jpg", "--quiet")
    assert proc.returncode == 2 and "--allow-lossy" in proc.stderr and not (d / "out.jpg").exists()
    proc = cli(d, "rgb.png", "mask.tif", "-o", "out.jpg", "--allow-lossy", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert iio.imread(d / "out.jpg").shape == rgb.shape
    np.save(d / "f.npy", _ramp().astype(np.float32))
    proc = cli(d, "f.npy", "mask.tif", "-o", "out.png", "-m", "criminisi")
    assert proc.returncode == 2 and ".tif" in proc.stderr and not (d / "out.png").exists()
    assert "criminisi" not in proc.stderr.split("error:")[0]  # refused before the method started


def test_method_auto_reports_its_choice_and_subcommands(files, cli):
    d = files
    proc = cli(d, "img.tif", "mask.tif", "-o", "auto.tif", "--method", "auto")
    assert proc.returncode == 0, proc.stderr
    chosen = proc.stderr.split("method auto: chose '")[1].split("'")[0]
    assert chosen in ip.methods()
    assert f"{chosen}: 100%" in proc.stderr and "writing auto.tif" in proc.stderr  # progress of the long steps
    np.testing.assert_array_equal(tifffile.imread(d / "auto.tif"), ip.inpaint(_ramp(), _mask(), method=chosen))
    np.testing.assert_array_equal(tifffile.imread(d / "auto.tif"), ip.inpaint(_ramp(), _mask(), method="auto"))
    proc = cli(d, "img.tif", "mask.tif", "-o", "s.tif", "--method", "auto", "--chunks", "16")
    assert proc.returncode == 2 and "--method auto" in proc.stderr
    # inpaint is the default command and can be named
    proc = cli(d, "inpaint", "img.tif", "mask.tif", "-o", "named.tif", "--quiet")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(tifffile.imread(d / "named.tif"), ip.inpaint(_ramp(), _mask()))
    help_text = cli(d, "-h").stdout
    assert "weights" in help_text and "train" in help_text and "--allow-lossy" in help_text
    assert "--time-limit" in cli(d, "train", "-h").stdout
    assert "import" in cli(d, "weights", "-h").stdout


def _slow_run(tmp_path, **popen):
    """A criminisi run of a few seconds, started; returns once it has read its input."""
    rng = np.random.default_rng(1)
    image = (rng.random((160, 160)) * 1000).astype(np.uint16)
    mask = np.zeros(image.shape, np.uint8)
    mask[30:130, 30:130] = 1
    tifffile.imwrite(tmp_path / "big.tif", image)
    tifffile.imwrite(tmp_path / "m.tif", mask)
    proc = subprocess.Popen([str(EXE), "big.tif", "m.tif", "-o", "o.tif", "-m", "criminisi"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    assert proc.stderr.readline().startswith("reading big.tif")
    return proc


@installed
def test_sigterm_leaves_no_output_and_no_temporary_file(tmp_path):
    import signal
    import time

    proc = _slow_run(tmp_path)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "terminated" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif", "m.tif"]


@installed
def test_an_ignored_sighup_stays_ignored(tmp_path):
    """As under nohup: the run survives SIGHUP and writes its output."""
    import signal
    import time

    proc = _slow_run(tmp_path, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    time.sleep(1.0)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert (tmp_path / "o.tif").is_file()


def test_channels_and_calibration_come_from_the_tiff_and_stay(tmp_path, cli):
    """An ImageJ ZCYX hyperstack: no --channel-axis needed, a 2-D defect mask applies to every plane,
    the output keeps axes and calibration; --per-slice fills each plane on its own, as per_slice=True."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:24, :32]
    stack = np.stack([np.stack([1000 + 40 * yy + 30 * xx * (z + 1) + 300 * c for c in range(2)])
                      for z in range(3)]).astype(np.uint16)
    stack = stack + rng.integers(0, 20, stack.shape).astype(np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", stack, imagej=True, resolution=(4.0, 4.0),
                     metadata={"axes": "ZCYX", "spacing": 2.5, "unit": "um"})
    defects = np.zeros((24, 32), np.uint8)
    defects[8:12, 10:20] = 1
    defects[:, 25] = 1
    tifffile.imwrite(tmp_path / "defects.tif", defects)
    proc = cli(tmp_path, "stack.tif", "defects.tif", "-o", "out.tif")
    assert proc.returncode == 0, proc.stderr
    assert "channels on axis 1" in proc.stderr
    joint = ip.inpaint(stack, np.broadcast_to(defects != 0, (3, 24, 32)), channel_axis=1)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        np.testing.assert_array_equal(tif.asarray(), joint)
        assert tif.series[0].axes == "ZCYX"
        assert tif.imagej_metadata["spacing"] == 2.5 and tif.imagej_metadata["unit"] == "um"
        assert tif.pages[0].tags["XResolution"].value == (4, 1)
    proc = cli(tmp_path, "stack.tif", "defects.tif", "-o", "planes.tif", "--per-slice", "--quiet")
    assert proc.returncode == 0, proc.stderr
    planes = ip.inpaint(stack, defects != 0, channel_axis=1, per_slice=True)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "planes.tif"), planes)
    assert not np.array_equal(planes, joint)  # the option changes the fill


def test_a_time_series_is_filled_frame_by_frame_by_default(tmp_path, cli):
    """The file's axes decide (issue 15): ``T`` frames are independent; ``--joint`` fills the volume."""
    import inpaint_plugin as ip

    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:32, :40]
    movie = np.stack([1000 + 400 * np.sin(xx / (3 + t) + rng.uniform(0, 6)) for t in range(4)]).astype(np.uint16)
    mask = np.zeros((32, 40), bool)
    mask[:, 17:19] = True  # a dead column pair in every frame (a 2-D mask for the stack)
    tifffile.imwrite(tmp_path / "movie.tif", movie, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(tmp_path / "mask.tif", mask.astype(np.uint8))
    res = cli(tmp_path, "movie.tif", "mask.tif", "-o", "framewise.tif")
    assert res.returncode == 0, res.stderr
    assert "frame by frame" in res.stderr
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "framewise.tif"),
                                  ip.inpaint(movie, mask, per_slice=True))
    res = cli(tmp_path, "movie.tif", "mask.tif", "-o", "joint.tif", "--joint")
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "joint.tif"), ip.inpaint(movie, mask, per_slice=False))
    assert not np.array_equal(tifffile.imread(tmp_path / "joint.tif"), tifffile.imread(tmp_path / "framewise.tif"))


def test_first_use_compilation_is_announced(tmp_path, monkeypatch):
    """Without cached kernels the CLI says it is compiling (first use only); with them it says nothing."""
    from inpaint_plugin import _classical, cli

    monkeypatch.setattr(_classical, "kernels_cached", lambda module: False)
    img = np.tile(np.arange(16, dtype=np.uint8), (16, 1))
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "mask.npy", np.eye(16, dtype=np.uint8))
    messages = []
    monkeypatch.setattr(cli, "_info", lambda args, m: messages.append(m))
    assert cli.main([str(tmp_path / "img.npy"), str(tmp_path / "mask.npy"), "-o", str(tmp_path / "o.npy")]) == 0
    assert any("compiling biharmonic kernels (first use only)" in m for m in messages)
    monkeypatch.setattr(_classical, "kernels_cached", lambda module: True)
    messages.clear()
    assert cli.main([str(tmp_path / "img.npy"), str(tmp_path / "mask.npy"), "-o", str(tmp_path / "p.npy")]) == 0
    assert not any("compiling" in m for m in messages)
    monkeypatch.undo()
    assert _classical.kernels_cached("_bilaplace")  # the calls above compiled and cached the kernels
    assert not _classical.kernels_cached("_no_such_module")
