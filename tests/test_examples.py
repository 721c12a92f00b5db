"""The example scripts in examples/ run and do what their docstrings say (small sizes)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tifffile

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_repair_microscopy_stack(tmp_path, capsys):
    example = _load("repair_microscopy_stack")
    out = tmp_path / "repaired.tif"
    report = example.main(["-o", str(out), "--slices", "4"])
    assert report["recall"] > 0.95 and report["false_pixels"] <= 5
    assert report["rmse_after"] < 0.15 * report["rmse_before"]
    assert report["known_pixels_unchanged"] and report["dtype"] == "uint16"
    written = tifffile.imread(out)
    assert written.shape == (4, 660, 550) and written.dtype == np.uint16
    # the same script on a file: the written stack has nothing left to repair
    again = example.main([str(out), "-o", str(tmp_path / "again.tif")])
    assert again["flagged"] < 0.05 * report["flagged"]
    assert '"recall"' in capsys.readouterr().out


def test_fill_satellite_nodata(tmp_path):
    example = _load("fill_satellite_nodata")
    out = tmp_path / "filled.tif"
    report = example.main(["-o", str(out), "--size", "128"])
    true = report["true_rmse"]
    assert true[report["chosen"]] <= 1.1 * min(true.values())  # the estimate picks (nearly) the best
    bands = tifffile.imread(out)
    assert bands.shape == (4, 128, 128) and np.isfinite(bands).all()


def test_larger_than_memory(tmp_path):
    pytest.importorskip("dask.array")
    pytest.importorskip("zarr")
    example = _load("larger_than_memory")
    report = example.main(["--size", "2500", "--workdir", str(tmp_path)])
    assert report["dead_pixels_left"] == 0 and report["column_filled"]
    assert report["chunks"] == [3, 3]


def test_repair_camera_stack(tmp_path):
    example = _load("repair_camera_stack")
    out = tmp_path / "repaired.tif"
    report = example.main(["-o", str(out), "--frames", "12"])
    assert report["recall"] > 0.8 and report["false_alarm_pixels"] <= 2
    assert report["rmse_after"] < 0.2 * report["rmse_before"]
    assert report["known_pixels_unchanged"] and report["dtype"] == "uint16"
    # the calibration of the ImageJ file is kept: axes, pixel size, unit, frame interval
    assert report["axes"] == "TYX"
    assert report["spacing"]["X"] == pytest.approx(0.65) and report["spacing"]["T"] == pytest.approx(0.5)
    assert report["units"]["X"] in ("micron", "µm", "um")
    with tifffile.TiffFile(out) as tif:
        assert tif.is_imagej and tif.imagej_metadata["finterval"] == pytest.approx(0.5)
