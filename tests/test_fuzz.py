"""Fuzzing the command line tool and the checkpoint loader with bad files.

Whatever the input, the CLI must either succeed with the right result or fail with exit code 2 (bad
input) or 1 (failure while filling), a one-line message naming the offending file or argument, no
traceback, and nothing written at the output path (no partial file, no leftover temporary file, an
existing output kept as it was). The checkpoint loader must turn every bad file into a ``ValueError``
naming the argument and the path, and must refuse pickles that would run code without running them.
"""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inpaint_plugin as ip
from _tiny_deep import contract_methods
from inpaint_plugin import Backend, hookimpl
from inpaint_plugin._io import read_image
from inpaint_plugin.cli import main

FUZZ = settings(max_examples=15, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _cli(argv, capsys):
    """Run the CLI in-process; returns ``(exit code, stderr)``."""
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    return rc, capsys.readouterr().err


def _assert_clean_failure(rc, err, folder, before, output, *names):
    assert rc in (1, 2), f"exit code {rc}, stderr: {err}"
    assert "Traceback" not in err
    assert any(str(n) in err for n in names), f"the message names none of {names}: {err!r}"
    assert sorted(p.name for p in folder.iterdir()) == before, "something was written on failure"
    assert not output.exists()


def _float_image(shape=(24, 28), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[-2], : shape[-1]]
    img = np.broadcast_to(np.sin(yy / 5.0) + np.cos(xx / 7.0), shape) + rng.normal(0, 0.01, shape)
    img = img.astype(np.float32)
    img[..., 8:12, 10:15] = np.nan  # holes: the CLI fills the NaNs when no mask is given
    return img


def _uint16_stack(shape=(5, 30, 40)):
    img = (np.arange(int(np.prod(shape))).reshape(shape) % 60000 + 1).astype(np.uint16)
    img[..., 5:9, 6:11] = 0  # holes, filled with --nodata 0
    return img


TIFF_LAYOUTS = {
    "strips-2d": (lambda: _float_image(), {}),
    "strips-stack": (lambda: _float_image((4, 24, 28)), {}),
    "tiled-2d-zlib": (lambda: _float_image((40, 48)), {"tile": (16, 16), "compression": "zlib"}),
    "tiled-stack-zlib": (lambda: _float_image((4, 40, 48)), {"tile": (16, 16), "compression": "zlib"}),
    "tiled-stack-uint16": (_uint16_stack, {"tile": (16, 16), "compression": "zlib"}),
}


def _tiff_cases():
    for layout in TIFF_LAYOUTS:
        for mode in ("memory", "chunks"):
            yield pytest.param(layout, mode, id=f"{layout}-{mode}")


def _nodata_args(image):
    return ["--nodata", "0"] if image.dtype.kind in "iu" else []


# --- CLI: truncated and corrupt inputs ------------------------------------------------------------
@pytest.mark.parametrize("layout, mode", list(_tiff_cases()))
def test_truncated_tiff_fails_cleanly_or_reads_everything(layout, mode, tmp_path_factory, capsys):
    make, kwargs = TIFF_LAYOUTS[layout]
    image = make()
    expected = ip.inpaint(image, nodata=0 if image.dtype.kind in "iu" else None)
    folder = tmp_path_factory.mktemp(layout)
    tifffile.imwrite(folder / "full.tif", image, **kwargs)
    data = (folder / "full.tif").read_bytes()
    extra = _nodata_args(image) + (["--chunks", "16"] if mode == "chunks" else [])

    @FUZZ
    @given(cut=st.integers(1, len(data) - 1))
    def check(cut):
        src = folder / "cut.tif"
        src.write_bytes(data[:cut])
        out = folder / "out.npy"
        before = sorted(p.name for p in folder.iterdir())
        rc, err = _cli([src, "-o", out, "--quiet", *extra], capsys)
        if rc == 0:  # only acceptable when every pixel was really there
            result = np.load(out)
            out.unlink()
            assert result.shape == image.shape, f"cut at {cut}/{len(data)} bytes read as shape {result.shape}"
            np.testing.assert_allclose(result, expected, atol=1e-5)
        else:
            assert rc == 2
            _assert_clean_failure(rc, err, folder, before, out, src)
        src.unlink()

    check()


def test_truncated_tiled_stack_is_refused(tmp_path, capsys):
    """Regression: tifffile read such a file as its first page only."""
    tifffile.imwrite(tmp_path / "full.tif", _uint16_stack(), tile=(16, 16), compression="zlib")
    (tmp_path / "cut.tif").write_bytes((tmp_path / "full.tif").read_bytes()[:2369])
    rc, err = _cli([tmp_path / "cut.tif", "-o", tmp_path / "out.npy", "--nodata", "0", "--quiet"], capsys)
    assert rc == 2 and "cut.tif" in err and not (tmp_path / "out.npy").exists()


def test_lazy_truncated_tiff_is_refused(tmp_path, capsys):
    """Regression: the lazy reader took a TIFF cut in its first IFD for a bool image."""
    tifffile.imwrite(tmp_path / "full.tif", _float_image((4, 24, 28)))
    (tmp_path / "cut.tif").write_bytes((tmp_path / "full.tif").read_bytes()[:220])
    rc, err = _cli([tmp_path / "cut.tif", "-o", tmp_path / "out.npy", "--chunks", "16", "--quiet"], capsys)
    assert rc == 2 and "cut.tif" in err and not (tmp_path / "out.npy").exists()


def test_truncated_tiff_is_refused_when_tifffile_logging_is_silenced(tmp_path, capsys):
    """Damage is still detected when the application raised the 'tifffile' logger's level."""
    import logging

    tifffile.imwrite(tmp_path / "full.tif", _uint16_stack(), tile=(16, 16), compression="zlib")
    (tmp_path / "cut.tif").write_bytes((tmp_path / "full.tif").read_bytes()[:2369])
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        rc, err = _cli([tmp_path / "cut.tif", "-o", tmp_path / "out.npy", "--nodata", "0", "--quiet"], capsys)
    finally:
        assert logger.level == logging.CRITICAL  # the reader restored the application's setting
        logger.setLevel(level)
    assert rc == 2 and "cut.tif" in err and not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("suffix", [".tif", ".tiff", ".png", ".jpg", ".npy"])
def test_random_bytes_fail_cleanly(suffix, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("junk" + suffix.strip("."))

    @FUZZ
    @given(blob=st.binary(min_size=0, max_size=600), as_mask=st.booleans())
    def check(blob, as_mask):
        good = folder / "good.npy"
        np.save(good, _float_image())
        junk = folder / f"junk{suffix}"
        junk.write_bytes(blob)
        out = folder / "out.tif"
        before = sorted(p.name for p in folder.iterdir())
        argv = [good, junk] if as_mask else [junk]
        rc, err = _cli([*argv, "-o", out, "--quiet"], capsys)
        _assert_clean_failure(rc, err, folder, before, out, junk)
        assert rc == 2

    check()


def test_pickled_npy_is_refused_without_running_it(tmp_path, capsys):
    marker = tmp_path / "pwned"
    np.save(tmp_path / "evil.npy", np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, err = _cli([tmp_path / "evil.npy", "-o", tmp_path / "out.npy"], capsys)
    _assert_clean_failure(rc, err, tmp_path, before, tmp_path / "out.npy", "evil.npy")
    assert not marker.exists()


@pytest.mark.parametrize("name, content", [
    ("image.xyz", b"\x00" * 64),
    ("image.txt", b"1 2 3\n4 5 6\n"),
    ("image", b"II*\x00"),
])
def test_unsupported_files_fail_cleanly(name, content, tmp_path, capsys):
    src = tmp_path / name
    src.write_bytes(content)
    out = tmp_path / "out.tif"
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, err = _cli([src, "-o", out, "--quiet"], capsys)
    assert rc == 2
    _assert_clean_failure(rc, err, tmp_path, before, out, name)


def test_a_folder_as_input_or_output_fails_cleanly(tmp_path, capsys):
    (tmp_path / "dir.tif").mkdir()
    np.save(tmp_path / "img.npy", _float_image())
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, err = _cli([tmp_path / "dir.tif", "-o", tmp_path / "out.npy"], capsys)
    _assert_clean_failure(rc, err, tmp_path, before, tmp_path / "out.npy", "dir.tif")
    rc, err = _cli([tmp_path / "img.npy", "-o", tmp_path / "out.xyz"], capsys)
    _assert_clean_failure(rc, err, tmp_path, before, tmp_path / "out.xyz", "out.xyz")
    rc, err = _cli([tmp_path / "img.npy", "-o", tmp_path / "missing" / "out.npy"], capsys)
    _assert_clean_failure(rc, err, tmp_path, before, tmp_path / "missing" / "out.npy", "missing")


@FUZZ
@given(shape=st.lists(st.integers(1, 40), min_size=1, max_size=4).map(tuple),
       suffix=st.sampled_from([".npy", ".tif"]))
def test_wrong_shape_mask_fails_cleanly(tmp_path_factory, capsys, shape, suffix):
    image = np.arange(24 * 28, dtype=np.uint16).reshape(24, 28)
    folder = tmp_path_factory.mktemp("mask")
    np.save(folder / "img.npy", image)
    mask = np.ones(shape, np.uint8)
    if suffix == ".npy":
        np.save(folder / f"mask{suffix}", mask)
    else:
        tifffile.imwrite(folder / f"mask{suffix}", mask)
    read = read_image(folder / f"mask{suffix}").shape  # TIFF drops some length-1 axes
    if read == (24, 28) or (len(read) == 3 and read[:2] == (24, 28) and read[2] in (3, 4)):
        return  # a valid mask (same shape, or an RGB(A) mask image)
    out = folder / "out.tif"
    before = sorted(p.name for p in folder.iterdir())
    rc, err = _cli([folder / "img.npy", folder / f"mask{suffix}", "-o", out, "--quiet"], capsys)
    assert rc == 2
    _assert_clean_failure(rc, err, folder, before, out, "mask")


# --- CLI: failures while filling or writing ------------------------------------------------------
def _explode(image, mask):
    raise RuntimeError("method exploded")


class _ExplodingPlugin:
    @hookimpl
    def inpaint_plugin_backends(self):
        return [Backend("t_explode", _explode, "always raises")]


@pytest.fixture
def exploding_method():
    plugin = _ExplodingPlugin()
    ip.register(plugin, name="fuzz-exploding")
    try:
        yield "t_explode"
    finally:
        ip.unregister(plugin)


@pytest.mark.parametrize("out_name", ["out.tif", "out.npy", "out.zarr", "out.png"])
@pytest.mark.parametrize("chunks", [False, True])
def test_method_failure_writes_nothing_and_keeps_the_old_output(out_name, chunks, exploding_method, tmp_path,
                                                              capsys):
    image = (np.arange(32 * 32) % 251).astype(np.uint8).reshape(32, 32)
    mask = np.zeros(image.shape, np.uint8)
    mask[10:14, 10:14] = 1
    np.save(tmp_path / "img.npy", image)
    np.save(tmp_path / "mask.npy", mask)
    out = tmp_path / out_name
    extra = ["--chunks", "16"] if chunks else []
    assert _cli([tmp_path / "img.npy", "-o", out, "--quiet", "--nodata", "255"], capsys)[0] == 0  # an old output
    old = read_image(out)
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, err = _cli([tmp_path / "img.npy", tmp_path / "mask.npy", "-o", out, "--method", exploding_method,
                    "--quiet", "--overwrite", *extra], capsys)  # replacing a zarr store needs --overwrite
    assert rc == 1, err
    assert "method exploded" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    np.testing.assert_array_equal(read_image(out), old)


def test_output_that_cannot_hold_the_result_writes_nothing(tmp_path, capsys):
    image = _float_image()
    np.save(tmp_path / "img.npy", image)
    out = tmp_path / "out.png"  # PNG cannot hold float32 data
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, err = _cli([tmp_path / "img.npy", "-o", out, "--quiet"], capsys)
    if rc == 0:  # a writer may convert; then the file must be a complete, readable image
        assert read_image(out).shape == image.shape
    else:
        _assert_clean_failure(rc, err, tmp_path, before, out, "out.png", "png", "PNG")


# --- checkpoint loader ---------------------------------------------------------------------------
class _Evil:
    """Unpickling this object creates the folder ``marker`` (a harmless stand-in for running code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def load_state_dict_file():
    pytest.importorskip("torch")
    from inpaint_plugin.deep._checkpoint import load_state_dict_file as load

    return load


def _state(torch):
    g = torch.Generator().manual_seed(0)
    return {"conv.weight": torch.randn(4, 3, 3, 3, generator=g), "conv.bias": torch.randn(4, generator=g)}


def test_the_malicious_payload_is_live(tmp_path):
    """Sanity check of the fixture below: plain pickle *would* run it."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Evil(marker)))
    assert marker.is_dir()


@pytest.mark.parametrize("how", ["raw-pickle", "torch-zip", "wrapped-in-state-dict", "legacy-torch"])
def test_code_running_pickles_are_refused_and_not_run(how, tmp_path, torch, load_state_dict_file):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    evil = _Evil(marker)
    if how == "raw-pickle":
        path.write_bytes(pickle.dumps(evil, protocol=2))
    elif how == "torch-zip":
        torch.save(evil, path)
    elif how == "wrapped-in-state-dict":
        torch.save({"state_dict": {**_state(torch), "extra": evil}}, path)
    else:
        torch.save({"w": evil}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="weights=.*evil.pt") as info:
        load_state_dict_file(path)
    assert "refused" in str(info.value) or "not a" in str(info.value)
    assert not marker.exists(), "the pickle's code was run"


def test_valid_checkpoints_load(tmp_path, torch, load_state_dict_file):
    from safetensors.torch import save_file

    state = _state(torch)
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "a.pth")
    save_file(state, str(tmp_path / "b.safetensors"))
    for name in ("a.pth", "b.safetensors"):
        loaded = load_state_dict_file(tmp_path / name)
        assert set(loaded) == set(state)
        assert all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt", ".safetensors"])
def test_truncated_checkpoints_are_refused(suffix, tmp_path_factory, torch, load_state_dict_file):
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("ckpt")
    full = folder / f"full{suffix}"
    if suffix == ".safetensors":
        save_file(_state(torch), str(full))
    else:
        torch.save(_state(torch), full)
    data = full.read_bytes()

    @FUZZ
    @given(cut=st.integers(0, len(data) - 1))
    def check(cut):
        path = folder / f"cut{suffix}"
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"weights=.*cut{suffix}"):
            load_state_dict_file(path)

    check()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_random_bytes_checkpoints_are_refused(suffix, tmp_path_factory, load_state_dict_file):
    folder = tmp_path_factory.mktemp("junkckpt")

    @FUZZ
    @given(blob=st.one_of(st.binary(max_size=400), st.binary(max_size=400).map(lambda b: b"PK\x03\x04" + b),
                          st.binary(max_size=400).map(lambda b: b"\x80\x02" + b)))
    def check(blob):
        path = folder / f"junk{suffix}"
        path.write_bytes(blob)
        with pytest.raises(ValueError, match=f"checkpoint=.*junk{suffix}"):
            load_state_dict_file(path, argument="checkpoint")

    check()


@pytest.mark.parametrize("content", [
    {"a": "not a tensor"},
    [1, 2, 3],
    {"state_dict": {"w": 3}},
    {},
])
def test_non_state_dicts_are_refused(content, tmp_path, torch, load_state_dict_file):
    torch.save(content, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="odd.pt"):
        load_state_dict_file(tmp_path / "odd.pt")


def test_missing_checkpoint_and_folder(tmp_path, load_state_dict_file):
    with pytest.raises(ValueError, match="no such checkpoint"):
        load_state_dict_file(tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="weights="):
        load_state_dict_file(tmp_path)


def test_bad_weights_through_inpaint_name_the_argument(tmp_path, torch, tiny_deep_methods):
    """Every deep method's loader, run on its tiny-width variant (``_tiny_deep.py``) where it has one."""
    deep = [n for n, b in contract_methods().items() if b.needs_weights]
    if not deep:
        pytest.skip("no deep method registered")
    marker = tmp_path / "pwned"
    torch.save(_Evil(marker), tmp_path / "evil.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    image = np.zeros((16, 16), np.float32)
    image[4:8, 4:8] = np.nan
    for name in deep:
        for bad in ("evil.pt", "junk.pt"):
            with pytest.raises(ValueError, match=f"weights.*{bad}"):
                ip.inpaint(image, method=name, weights=str(tmp_path / bad), device="cpu")
    assert not marker.exists()
