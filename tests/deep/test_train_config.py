"""TrainConfig: the options of a training run and their rules, checked in one place.

Every rule is tested on its own (the message must name the option); the checks need no torch. The
last tests run ``train(config=...)`` and the command line's config (tiny CPU runs).
"""
from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import inpaint_plugin as ip
from inpaint_plugin._masks import FAMILIES
from inpaint_plugin.training import TrainConfig, state_path, train


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return [rng.random((64, 64)).astype(np.float32) for _ in range(2)]


@pytest.fixture
def base(tmp_path, images):
    """A valid configuration's arguments."""
    return dict(method="deepfill_v2", images=images, out=tmp_path / "m.pth")


def make(base, **changes):
    return TrainConfig(**{**base, **changes})


# --------------------------------------------------------------------------------------------------
# one rule per case: (changes, error type, the message (a regex) that names the option)
# --------------------------------------------------------------------------------------------------
RULES = [
    # method
    (dict(method="biharmonic"), ValueError, r"method='biharmonic' cannot be trained; trainable methods: \['deepfill_v1'"),
    (dict(method="nosuch"), ValueError, r"method='nosuch' cannot be trained"),
    (dict(method=3), ValueError, r"method=3 cannot be trained"),
    # images
    (dict(images=42), TypeError, r"images must be an array, a list of arrays or paths"),
    (dict(images=[]), ValueError, r"images is empty"),
    (dict(images=[3]), TypeError, r"images\[0\] must be an array or a path"),
    (dict(images="/nonexistent/tiles"), ValueError, r"images='/nonexistent/tiles': no such file or directory"),
    # out
    (dict(out=None), ValueError, r"out is required"),
    (dict(out=3), TypeError, r"out must be a path"),
    (dict(out="model.safetensors"), ValueError, r"out='model.safetensors': .*use a .pth or .pt name"),
    # weights, resume
    (dict(weights="/nonexistent.pth"), ValueError, r"weights='/nonexistent.pth': no such file"),
    (dict(weights=1.5), TypeError, r"weights must be a path"),
    (dict(resume=True), ValueError, r"resume: no training state at '.*m.pth.state.pt'"),
    (dict(resume="/nonexistent.state.pt"), ValueError, r"resume: no training state at '/nonexistent.state.pt'"),
    (dict(resume=3), TypeError, r"resume must be True, False or the path of a training state"),
    # sizes
    (dict(crop_size=1.5), TypeError, r"crop_size must be an integer, got 1.5"),
    (dict(crop_size=True), TypeError, r"crop_size must be an integer, got True"),
    (dict(crop_size=16), ValueError, r"crop_size must be >= 32, got 16"),
    (dict(crop_size=36), ValueError, r"crop_size must be a multiple of 8, got 36"),
    (dict(batch_size=0), ValueError, r"batch_size must be >= 1, got 0"),
    (dict(batch_size="4"), TypeError, r"batch_size must be an integer"),
    (dict(input_size=16), ValueError, r"input_size must be >= 32, got 16"),
    (dict(input_size=36), ValueError, r"input_size must be a multiple of 8 for deepfill_v2, got 36"),
    (dict(method="pennet", input_size=96), ValueError, r"input_size must be a multiple of 64 for pennet, got 96"),
    (dict(method="medfe", input_size=128), ValueError, r"input_size must be 256 for medfe"),
    # schedule
    (dict(epochs=-1), ValueError, r"epochs must be >= 0, got -1"),
    (dict(epochs=1.5), TypeError, r"epochs must be an integer"),
    (dict(steps_per_epoch=0), ValueError, r"steps_per_epoch must be >= 1"),
    (dict(lr=0), ValueError, r"lr must be in \(0.0, 1.0\], got 0.0"),
    (dict(lr=2.0), ValueError, r"lr must be in \(0.0, 1.0\], got 2.0"),
    (dict(lr=float("nan")), ValueError, r"lr must be a finite number"),
    (dict(lr="1e-4"), TypeError, r"lr must be a number"),
    (dict(seed=-1), ValueError, r"seed must be >= 0"),
    (dict(seed=None), TypeError, r"seed must be an integer"),
    (dict(val_fraction=0.95), ValueError, r"val_fraction must be in \[0.0, 0.9\], got 0.95"),
    (dict(val_fraction=-0.1), ValueError, r"val_fraction must be in \[0.0, 0.9\]"),
    (dict(val_crops=0), ValueError, r"val_crops must be >= 1"),
    # data
    (dict(masks="blobs"), ValueError, r"masks: unknown mask families \['blobs'\]"),
    (dict(masks=[]), ValueError, r"masks must be a non-empty list of mask families"),
    (dict(normalize="zscore"), ValueError, r"normalize must be one of \['range', 'minmax', 'percentile'\]"),
    (dict(channel_axis=1.5), TypeError, r"channel_axis must be an int or None"),
    (dict(channel_axis=True), TypeError, r"channel_axis must be an int or None"),
    (dict(augment="yes"), TypeError, r"augment must be True or False"),
    # losses
    (dict(adv_weight=-1), ValueError, r"adv_weight must be in \[0.0, inf\]"),
    (dict(perceptual_weight=-0.5), ValueError, r"perceptual_weight must be in \[0.0, inf\]"),
    (dict(idmrf_weight=float("inf")), ValueError, r"idmrf_weight must be a finite number"),
    (dict(perceptual_weight=1.0), ValueError, r"perceptual_weight and idmrf_weight need vgg_weights"),
    (dict(method="gmcnn", idmrf_weight=0.05), ValueError, r"need vgg_weights"),
    (dict(vgg_weights="/nonexistent/vgg19.pth"), ValueError, r"vgg_weights='/nonexistent/vgg19.pth': no such file"),
    # device, time
    (dict(device="tpu"), ValueError, r"device must be one of \['auto', 'cpu', 'cuda', 'mps'\] \(or 'cuda:N'\), got 'tpu'"),
    (dict(device="cuda:x"), ValueError, r"device must be one of"),
    (dict(device=0), TypeError, r"device must be a string"),
    (dict(time_limit=0), ValueError, r"time_limit must be in \(0.0, inf\], got 0.0"),
    (dict(time_limit=-5), ValueError, r"time_limit must be in"),
    (dict(time_limit=float("inf")), ValueError, r"time_limit must be a finite number"),
]


@pytest.mark.parametrize("changes, error, match", RULES,
                         ids=[",".join(f"{k}={v!r}" for k, v in c.items())[:50] for c, _, _ in RULES])
def test_each_rule_names_the_option(base, changes, error, match):
    with pytest.raises(error, match=match) as excinfo:
        make(base, **changes)
    option = [k for k in changes if k != "method"] or ["method"]
    assert str(excinfo.value).startswith(option[-1]) or f" {option[-1]}" in str(excinfo.value)


def test_paths_that_must_exist(base, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"images='.*empty': the directory holds no image files"):
        make(base, images=str(folder))
    with pytest.raises(ValueError, match=r"images='.*\*.png': the pattern matches no file"):
        make(base, images=str(folder / "*.png"))
    np.save(folder / "a.npy", np.zeros((64, 64), np.float32))
    assert make(base, images=folder).images == str(folder)  # a PathLike is kept as its string
    assert make(base, images=[str(folder / "*.npy")]).images == (str(folder / "*.npy"),)
    weights = tmp_path / "start.pth"
    weights.write_bytes(b"")
    assert make(base, weights=str(weights)).weights == weights


def test_out_directory_only_for_medfe(base, tmp_path):
    with pytest.raises(ValueError, match=r"out='.*' is a directory; give a checkpoint file name"):
        make(base, out=tmp_path)
    assert make(base, method="medfe", out=tmp_path).out == tmp_path


def test_weights_and_resume_exclude_each_other(base, tmp_path):
    weights = tmp_path / "start.pth"
    weights.write_bytes(b"")
    with pytest.raises(ValueError, match=r"either weights .* or resume .*, not both"):
        make(base, weights=weights, resume=True)


def test_resume_path(base, tmp_path):
    state = state_path(base["out"])
    state.write_bytes(b"")
    assert make(base, resume=True).resume_path == state
    assert make(base, resume=None).resume is False
    assert make(base).resume_path is None
    other = tmp_path / "other.state.pt"
    other.write_bytes(b"")
    config = make(base, resume=str(other))
    assert config.resume == other and config.resume_path == other


def test_vgg_weights_only_with_a_vgg_loss(base, tmp_path):
    vgg = tmp_path / "vgg19.pth"
    vgg.write_bytes(b"")
    with pytest.raises(ValueError, match=r"vgg_weights is only used with perceptual_weight > 0 or idmrf_weight > 0"):
        make(base, vgg_weights=vgg)  # deepfill_v2's paper has neither loss
    assert make(base, vgg_weights=vgg, perceptual_weight=0.1).perceptual_weight == 0.1
    make(base, method="gmcnn", vgg_weights=vgg)  # the paper's ID-MRF weight
    make(base, method="medfe", vgg_weights=vgg)  # the paper's perceptual weight


def test_values_are_stored_normalised(base, tmp_path):
    config = make(base, crop_size=np.int64(32), lr=np.float32(0.5), seed=np.uint8(3), time_limit=10,
                  masks="boxes, scratches,boxes", out=str(tmp_path / "x.pth"), device="CUDA:1")
    assert type(config.crop_size) is int and config.crop_size == 32
    assert type(config.lr) is float and type(config.seed) is int and config.time_limit == 10.0
    assert config.masks == ("boxes", "scratches")
    assert config.out == tmp_path / "x.pth"
    assert config.device == "CUDA:1"  # spelling only: whether the device exists is known when training starts
    assert isinstance(config.images, tuple) and len(config.images) == 2
    assert make(base).masks == tuple(FAMILIES)  # None: all families
    assert make(base, out="~/m.pth").out == Path("~/m.pth").expanduser()


def test_frozen_and_replace_checks_again(base):
    config = make(base)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3  # type: ignore[misc]
    assert dataclasses.replace(config, epochs=3).epochs == 3
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        dataclasses.replace(config, epochs=-3)


def test_resolved_fills_in_the_recipe_defaults(base, tmp_path):
    from inpaint_plugin.training._recipes import RECIPES

    cpu = make(base).resolved("cpu")
    assert (cpu["crop_size"], cpu["batch_size"], cpu["input_size"]) == RECIPES["deepfill_v2"].cpu + (64,)
    gpu = make(base).resolved("cuda")
    assert (gpu["crop_size"], gpu["batch_size"]) == RECIPES["deepfill_v2"].gpu
    assert cpu["lr"] == RECIPES["deepfill_v2"].lr and cpu["adv_weight"] == RECIPES["deepfill_v2"].adv_weight
    assert cpu["perceptual_weight"] == 0.0 and cpu["idmrf_weight"] == 0.0  # no vgg_weights
    mine = make(base, crop_size=48, batch_size=2, lr=1e-3, adv_weight=0).resolved("cuda")
    assert (mine["crop_size"], mine["batch_size"], mine["input_size"], mine["adv_weight"]) == (48, 2, 48, 0.0)
    assert mine["lr"] == 1e-3 and mine["d_lr"] == pytest.approx(1e-3)
    lama = make(base, method="lama", lr=1e-2).resolved()
    assert lama["d_lr"] == pytest.approx(1e-3)  # LaMa's discriminator: a tenth of the generator's rate
    pennet = make(base, method="pennet", crop_size=64).resolved()
    assert pennet["input_size"] == 256  # the network's fixed size
    vgg = tmp_path / "vgg19.pth"
    vgg.write_bytes(b"")
    gm = make(base, method="gmcnn", vgg_weights=vgg).resolved()
    assert gm["idmrf_weight"] == RECIPES["gmcnn"].idmrf_weight > 0


def test_train_takes_the_same_options_with_the_same_defaults():
    params = inspect.signature(train).parameters
    for f in dataclasses.fields(TrainConfig):
        assert f.name in params, f.name
        if f.default is not dataclasses.MISSING:
            assert params[f.name].default == f.default, f.name
    assert set(params) - {f.name for f in dataclasses.fields(TrainConfig)} == {"progress", "callback", "config"}
    assert ip.train is train and ip.TrainConfig is TrainConfig


def test_checking_a_config_imports_no_torch(tmp_path):
    code = ("import sys, numpy as np\n"
            "from inpaint_plugin.training import TrainConfig\n"
            f"c = TrainConfig('lama', [np.zeros((64, 64))], out={str(tmp_path / 'm.pth')!r}, crop_size=64)\n"
            "c.resolved('cuda')\n"
            "try:\n"
            "    TrainConfig('lama', [np.zeros((64, 64))], out='m.pth', lr=0)\n"
            "except ValueError:\n"
            "    pass\n"
            "print('torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------------
# train(config=...)
# --------------------------------------------------------------------------------------------------
def test_train_with_a_config_and_its_misuses(base, images, tmp_path):
    torch = pytest.importorskip("torch")
    config = make(base, crop_size=32, batch_size=1, epochs=1, steps_per_epoch=1, val_crops=1, device="cpu",
                  adv_weight=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        events = []
        result = train(config=config, progress=False, callback=events.append)
        again = ip.train("deepfill_v2", images, out=tmp_path / "kw.pth", crop_size=32, batch_size=1, epochs=1,
                         steps_per_epoch=1, val_crops=1, device="cpu", adv_weight=0, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert result.step == 1 and result.checkpoint == config.out and config.out.is_file()
    assert any(e["event"] == "step" for e in events)
    assert result.val_psnr == again.val_psnr  # the same options as keywords: the same run
    with pytest.raises(TypeError, match=r"either as arguments or as config, not both \(config= with epochs\)"):
        train(config=config, epochs=3)
    with pytest.raises(TypeError, match=r"config= with method, images"):
        train("deepfill_v2", images, config=config)
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        train(config=dict(base))
    with pytest.raises(TypeError, match=r"train\(\) needs method and images"):
        train(out=tmp_path / "x.pth")
    with pytest.raises(TypeError, match="callback must be callable"):
        train(config=config, callback=3)


# --------------------------------------------------------------------------------------------------
# the command line: one parser, the train subcommand builds a TrainConfig
# --------------------------------------------------------------------------------------------------
def test_the_command_line_builds_the_config(tmp_path):
    from inpaint_plugin.cli import COMMANDS, build_parser
    from inpaint_plugin.training._cli import config_from_args

    folder = tmp_path / "tiles"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((64, 64), np.float32))
    out = tmp_path / "lama.pth"
    parser = build_parser()
    args = parser.parse_args(["train", "--method", "lama", "--images", str(folder), str(folder / "*.npy"),
                              "--out", str(out), "--crop-size", "64", "--no-augment", "--masks", "boxes,stripes",
                              "--time-limit", "30", "--device", "cpu", "--lr", "0.001", "--epochs", "0"])
    assert args.command == "train"
    assert config_from_args(args) == TrainConfig("lama", [str(folder), str(folder / "*.npy")], out=out, crop_size=64,
                                                 augment=False, masks=["boxes", "stripes"], time_limit=30.0,
                                                 device="cpu", lr=1e-3, epochs=0)
    assert config_from_args(parser.parse_args(["train", "--method", "lama", "--images", str(folder), "--out",
                                               str(out)])) == TrainConfig("lama", [str(folder)], out=out)
    text = parser.format_help()
    assert all(command in text for command in COMMANDS)


@pytest.mark.parametrize("extra, message", [
    (["--val-fraction", "0.95"], "val_fraction must be in [0.0, 0.9]"),
    (["--seed", "-1"], "seed must be >= 0"),
    (["--device", "tpu"], "device must be one of"),
    (["--perceptual-weight", "1"], "need vgg_weights"),
    (["--resume"], "resume: no training state at"),
])
def test_the_command_line_reports_the_config_rules(tmp_path, capsys, extra, message):
    from inpaint_plugin import cli

    folder = tmp_path / "tiles"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((64, 64), np.float32))
    argv = ["train", "--method", "deepfill_v2", "--images", str(folder), "--out", str(tmp_path / "m.pth"), "--quiet"]
    assert cli.main(argv + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("inpaint-plugin train: error: ") and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiles"]
