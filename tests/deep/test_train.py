"""Self-supervised training (inpaint_plugin.train, ``inpaint-plugin train``): tiny CPU runs.

The training images are synthetic fluorescence "nuclei" (blurred blobs on a dark background, uint16),
cut to 64 x 64; held-out images of the same kind measure whether training helps. Every network is
trained for a few steps (its recipe's losses, without the adversarial term so that the held-out
reconstruction loss is a fair yardstick); one torch thread, tiny crops.
"""
from __future__ import annotations

import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import inpaint_plugin as ip  # noqa: E402
from inpaint_plugin import _masks, cli  # noqa: E402
from inpaint_plugin.deep._backend import random_checkpoint  # noqa: E402
from inpaint_plugin.training import _data as _train_data  # noqa: E402
from inpaint_plugin.training import read_report, state_path  # noqa: E402
from inpaint_plugin.training._discriminator import SNPatchGAN, hinge_d_loss, hinge_g_loss  # noqa: E402
from inpaint_plugin.training._loop import CLASSICAL_BASELINES, verdict  # noqa: E402
from inpaint_plugin.training._losses import (  # noqa: E402
    VGG19Features,
    id_mrf_loss,
    load_vgg19,
    perceptual_loss,
    spatial_discount,
)

#: small runs that every test may use (quiet, CPU)
TINY = dict(crop_size=32, batch_size=1, epochs=1, steps_per_epoch=1, val_crops=1, device="cpu", progress=False)


def _no_elapsed(history):
    return [{k: v for k, v in h.items() if k != "elapsed"} for h in history]


@pytest.fixture(autouse=True)
def _quiet_verdict():
    """Untrained networks are worse than biharmonic: the warning saying so is tested on its own."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="trained .* is WORSE than biharmonic")
        warnings.filterwarnings("ignore", message="input_size=")
        yield


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a shared 2-core CI machine, oversubscribed OpenMP threads spin for seconds."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def nuclei(seed: int, n: int = 6, size: int = 64) -> list:
    """``n`` uint16 images of blurred blobs (nuclei) on a dark, noisy background."""
    from skimage import data, filters

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        blobs = data.binary_blobs(length=size, blob_size_fraction=0.15, volume_fraction=0.15,
                                  rng=int(rng.integers(1 << 31)))
        img = 100 + 1500 * filters.gaussian(blobs.astype(float), 1.5) + rng.normal(0, 20, (size, size))
        out.append(np.clip(img, 0, 65535).astype(np.uint16))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """DeepFill v2 from scratch: 2 epochs of 3 steps on 64 x 64 crops of 4 images (2 held out)."""
    out = tmp_path_factory.mktemp("train") / "nuclei.pth"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="trained .* is WORSE than biharmonic")
        result = ip.train("deepfill_v2", nuclei(0), out=out, crop_size=64, batch_size=1, epochs=2, steps_per_epoch=3,
                          lr=1e-3, adv_weight=0, val_crops=4, val_fraction=0.34, seed=0, device="cpu",
                          progress=False)
    return result


def _state_dict(path):
    return torch.load(str(path), map_location="cpu", weights_only=True)


def _assert_same_tensors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --------------------------------------------------------------------------------------------------
# training: loss, checkpoint, inference
# --------------------------------------------------------------------------------------------------
def test_training_reduces_the_loss_on_held_out_crops(trained):
    assert trained.step == 6 and not trained.stopped_early
    assert [h["step"] for h in trained.history] == [3, 6]
    assert [h["epoch"] for h in trained.history] == [1.0, 2.0]
    first, last = trained.initial, trained.history[-1]
    for h in trained.history:
        assert np.isfinite([h["loss"], h["reconstruction"], h["val_loss"], h["val_psnr"], h["val_l1"]]).all()
        assert "adversarial" not in h  # adv_weight=0: no discriminator
    # the same fixed held-out crops and masks before and after six steps
    assert last["val_loss"] < 0.8 * first["val_loss"]
    assert last["val_l1"] < first["val_l1"]
    assert last["val_psnr"] > first["val_psnr"] + 1.0


def test_checkpoint_is_the_official_format_and_improves_inpaint(trained, tmp_path):
    raw = _state_dict(trained.checkpoint)
    assert set(raw) == {"G"}  # what states_tf_*.pth hold for the generator
    from inpaint_plugin.backends.deepfill_v2 import SPEC

    assert raw["G"].keys() == SPEC.build().state_dict().keys()

    image = nuclei(99, n=1)[0]  # never seen in training
    mask = _masks.random_mask(image.shape, np.random.default_rng(5), ["strokes"])
    start = random_checkpoint("deepfill_v2", tmp_path / "start.pth", seed=0)  # the weights training began with
    errors = {}
    for name, weights in (("start", start), ("trained", trained.checkpoint)):
        out = ip.inpaint(image, mask, method="deepfill_v2", weights=str(weights), device="cpu")
        assert out.dtype == np.uint16 and np.array_equal(out[~mask], image[~mask])
        errors[name] = np.abs(out[mask].astype(float) - image[mask]).mean()
    assert errors["trained"] < 0.7 * errors["start"]


def test_validation_measures_what_inpaint_gives(trained):
    """The held-out PSNR of train() is the PSNR of inpaint() with the saved weights on that crop."""
    import math

    from inpaint_plugin.deep import model_spec
    from inpaint_plugin.training._loop import _Validator
    from inpaint_plugin.training._recipes import get_recipe

    image = nuclei(31, n=1)[0]  # uint16, 64 x 64, never seen in training
    mask = _masks.random_mask(image.shape, np.random.default_rng(2), ["strokes"])
    (plane,) = _train_data.load_sources([image])[0]
    crop = plane.crop(0, 0, 64)  # the training mapping of the whole image
    spec = model_spec("deepfill_v2")
    generator = spec.build()
    spec.load(generator, trained.checkpoint)
    validator = _Validator([(crop, mask)], get_recipe("deepfill_v2"), spec, torch.device("cpu"), 64, False, None)
    with torch.no_grad():
        sq, _, n, _ = validator.network_one(generator.eval(), 0)
    val_psnr = 10 * math.log10(n / sq)
    filled = ip.inpaint(image, mask, method="deepfill_v2", weights=str(trained.checkpoint), device="cpu")
    assert np.unique(filled[mask]).size > 20  # a real fill, not a constant clipped to the known range
    # the same error measured in the units of the training mapping
    err = (filled[mask].astype(float) - image[mask]) / (plane.scale[0])
    inpaint_psnr = 10 * math.log10(1.0 / np.mean(err**2))
    assert abs(val_psnr - inpaint_psnr) < 0.5, (val_psnr, inpaint_psnr)


def test_epochs_zero_saves_the_seeded_starting_weights(tmp_path):
    a = ip.train("deepfill_v2", nuclei(1, n=2), out=tmp_path / "a.pth", **{**TINY, "epochs": 0})
    assert a.step == 0 and len(a.history) == 1 and a.history[0]["val_loss"] == a.initial["val_loss"]
    ref = random_checkpoint("deepfill_v2", tmp_path / "ref.pth", seed=0)
    _assert_same_tensors(_state_dict(a.checkpoint)["G"], _state_dict(ref)["G"])


def test_same_seed_same_weights(tmp_path):
    images = nuclei(2, n=3)
    runs = [ip.train("deepfill_v2", images, out=tmp_path / f"{i}.pth", seed=seed, **TINY)
            for i, seed in enumerate((7, 7, 8))]
    a, b, c = (_state_dict(r.checkpoint)["G"] for r in runs)
    _assert_same_tensors(a, b)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert _no_elapsed(runs[0].history) == _no_elapsed(runs[1].history)


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    """Two epochs in one go == one epoch, then resume for the second (with the discriminator)."""
    images = nuclei(3, n=3)
    kwargs = {**TINY, "seed": 4}
    straight = ip.train("deepfill_v2", images, out=tmp_path / "straight.pth", **{**kwargs, "epochs": 2})
    first = ip.train("deepfill_v2", images, out=tmp_path / "split.pth", **kwargs)
    assert first.step == 1 and state_path(first.checkpoint).is_file()
    resumed = ip.train("deepfill_v2", images, out=tmp_path / "split.pth", resume=True, **{**kwargs, "epochs": 2})
    assert resumed.step == 2 and resumed.initial is None
    assert [h["step"] for h in resumed.history] == [1, 2]
    assert _no_elapsed(resumed.history) == _no_elapsed(straight.history)
    assert "adversarial" in resumed.history[-1] and "discriminator" in resumed.history[-1]
    _assert_same_tensors(_state_dict(resumed.checkpoint)["G"], _state_dict(straight.checkpoint)["G"])
    s1, s2 = _state_dict(resumed.state), _state_dict(straight.state)
    _assert_same_tensors(s1["discriminator"], s2["discriminator"])
    # nothing left to do: resuming again changes nothing
    again = ip.train("deepfill_v2", images, out=tmp_path / "split.pth", resume=True, **{**kwargs, "epochs": 2})
    assert again.step == 2 and _no_elapsed(again.history) == _no_elapsed(resumed.history)


def test_deepfill_v1_with_feature_losses(tmp_path):
    vgg_file = tmp_path / "vgg19.pth"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vgg_state = VGG19Features().state_dict()
    vgg_state["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision's head: ignored
    torch.save(vgg_state, vgg_file)
    result = ip.train("deepfill_v1", nuclei(4, n=3), out=tmp_path / "v1.pth", vgg_weights=vgg_file,
                      perceptual_weight=0.1, idmrf_weight=0.1, **TINY)
    entry = result.history[-1]
    assert entry["perceptual"] > 0 and entry["id_mrf"] > 0 and np.isfinite(entry["adversarial"])
    raw = _state_dict(result.checkpoint)
    assert all(k.startswith(("coarse_generator.", "fine_generator.")) for k in raw)  # bare gen_*.pt format
    image = nuclei(98, n=1)[0]
    mask = np.zeros(image.shape, bool)
    mask[20:36, 24:40] = True
    out = ip.inpaint(image, mask, method="deepfill_v1", weights=str(result.checkpoint), device="cpu")
    assert np.array_equal(out[~mask], image[~mask])


# --------------------------------------------------------------------------------------------------
# every network: its recipe trains, the held-out loss goes down
# --------------------------------------------------------------------------------------------------
#: per network: learning rate for three steps from random weights, and network input side (PEN-Net and
#: SPL are run at 64 here instead of their 256 to keep the test short; MEDFE only works at 256)
NETWORKS = {
    "deepfill_v2": dict(lr=1e-3),
    "deepfill_v1": dict(lr=1e-3),
    "pennet": dict(lr=1e-3, input_size=64),
    "gmcnn": dict(lr=1e-4),
    "spl": dict(lr=1e-3, input_size=64),
    "medfe": dict(lr=1e-3),
    "lama": dict(lr=1e-3),
}


@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.slow) if m in ("medfe", "gmcnn") else m
                                    for m in sorted(NETWORKS)])
def test_every_network_trains_and_its_held_out_loss_goes_down(method, tmp_path):
    from inpaint_plugin.deep import model_spec

    out = tmp_path / ("medfe_weights" if method == "medfe" else f"{method}.pth")
    result = ip.train(method, nuclei(20), out=out, crop_size=64, batch_size=1, epochs=1, steps_per_epoch=3,
                      adv_weight=0, val_crops=2, val_fraction=0.34, seed=0, device="cpu", progress=False,
                      **NETWORKS[method])
    assert result.step == 3 and result.stop_reason == "epochs"
    first, last = result.initial, result.history[-1]
    assert np.isfinite([last["loss"], last["reconstruction"], last["val_loss"], last["val_psnr"]]).all()
    # the same two held-out crops and masks, before and after three steps
    assert last["val_loss"] < first["val_loss"]
    assert last["val_psnr"] > first["val_psnr"]
    # the comparison with the classical methods on those crops is part of the result
    assert set(result.baseline) == set(CLASSICAL_BASELINES) and result.val_crops == 2
    assert last["vs_biharmonic"] == pytest.approx(last["val_psnr"] - result.baseline["biharmonic"])
    # the checkpoint is the official format: the method's own loader reads it
    spec = model_spec(method)
    spec.load(spec.build(), out)


@pytest.mark.slow
def test_adversarial_losses_of_every_kind_run(tmp_path):
    """The recipes' GAN variants: hinge with mask channel (deepfill_v2), hinge on RGB (pennet), nsgan on the
    prediction (lama)."""
    for method, extra in (("deepfill_v2", {}), ("pennet", {"input_size": 64}), ("lama", {})):
        result = ip.train(method, nuclei(21, n=3), out=tmp_path / f"{method}.pth", **{**TINY, "crop_size": 64},
                          **extra)
        entry = result.history[-1]
        assert np.isfinite([entry["adversarial"], entry["discriminator"]]).all(), method


# --------------------------------------------------------------------------------------------------
# time limit, baseline, memory, callback
# --------------------------------------------------------------------------------------------------
def test_time_limit_bounds_the_whole_run(tmp_path):
    # the first train() of a process imports torch's optimiser/compiler modules (seconds under load, counted
    # against the limit like everything else); warmed up here so that the limit leaves room for steps
    ip.train("deepfill_v2", nuclei(22, n=3), out=tmp_path / "warm.pth", **TINY)
    limit = 6.0
    start = time.perf_counter()
    result = ip.train("deepfill_v2", nuclei(22, n=4), out=tmp_path / "m.pth", crop_size=32, batch_size=1,
                      epochs=10_000, steps_per_epoch=4, val_crops=2, device="cpu", progress=False,
                      time_limit=limit)
    took = time.perf_counter() - start
    assert took <= limit, f"the run took {took:.2f} s with time_limit={limit}"
    assert result.elapsed <= limit and result.time_limit == limit
    assert result.stopped_early and result.stop_reason == "time_limit" and result.step >= 1
    # the run ends with a validation of the last weights, which are saved
    assert result.history[-1]["step"] == result.step and np.isfinite(result.history[-1]["val_psnr"])
    assert result.checkpoint.is_file() and _state_dict(state_path(result.checkpoint))["step"] == result.step


def test_a_tiny_time_limit_still_ends_in_time(tmp_path):
    """Too short for any step: the starting weights are validated, compared and saved, in time."""
    ip.train("deepfill_v2", nuclei(23, n=3), out=tmp_path / "warm.pth", **TINY)  # imports and JIT warmed up
    limit = 2.0
    start = time.perf_counter()
    result = ip.train("deepfill_v2", nuclei(23, n=3), out=tmp_path / "m.pth", **{**TINY, "epochs": 10_000},
                      time_limit=limit)
    assert time.perf_counter() - start <= limit
    assert result.stop_reason == "time_limit" and result.baseline and result.val_psnr is not None


def test_baseline_and_verdict_in_the_result():
    images = nuclei(24, n=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as d:
            result = ip.train("deepfill_v2", images, out=Path(d) / "m.pth", **{**TINY, "val_crops": 3})
            # the comparison travels with the checkpoint, for whoever uses these weights later
            report = read_report(result.checkpoint)
            assert report["beats_biharmonic"] is False and report["verdict"] == result.verdict
            assert report["baseline"] == pytest.approx(result.baseline) and report["step"] == result.step
            assert read_report(Path(d) / "nothing.pth") is None
    # a network trained for one step from random weights is far worse than biharmonic, and says so
    assert result.beats_biharmonic is False and result.val_psnr < result.baseline["biharmonic"]
    assert "WORSE than biharmonic" in result.verdict and result.best_classical in result.verdict
    assert any("WORSE than biharmonic" in str(w.message) for w in caught)
    assert result.best_classical == max(result.baseline, key=result.baseline.get)
    # the classical PSNRs are measured: biharmonic on smooth blobs is far above an untrained network
    assert result.baseline["biharmonic"] > result.val_psnr + 3
    # memory is reported
    assert result.peak_rss_mb is None or result.peak_rss_mb > 50
    assert result.cuda_max_allocated_mb is None  # CPU run


def test_verdict_sentences():
    base = {"biharmonic": 30.0, "telea": 31.0, "tv": 29.0}
    beats, text = verdict("lama", 35.0, base)
    assert beats and "beats biharmonic" in text and "+5.00 dB" in text
    beats, text = verdict("lama", 30.5, base)
    assert beats and "telea is better still" in text
    beats, text = verdict("lama", 20.0, base)
    assert beats is False and "WORSE" in text and "method='telea'" in text
    assert verdict("lama", None, {})[0] is None


def test_callback_sees_steps_and_validation_progress_and_can_stop(tmp_path):
    events = []

    def callback(event):
        events.append(event)
        return not (event["event"] == "step" and event["step"] == 2)  # stop after the second step

    result = ip.train("deepfill_v2", nuclei(25, n=3), out=tmp_path / "m.pth",
                      **{**TINY, "epochs": 5, "val_crops": 2}, callback=callback)
    kinds = [e["event"] for e in events]
    assert result.step == 2 and result.stop_reason == "callback" and result.stopped_early
    assert kinds.count("step") == 2
    progress = [(e["done"], e["total"]) for e in events if e["event"] == "validation"]
    assert progress[:2] == [(1, 2), (2, 2)]  # the first validation, crop by crop
    assert kinds[-1] == "validated" and events[-1]["entry"]["step"] == 2
    assert set(events[-1]["baseline"]) == set(CLASSICAL_BASELINES)


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------
def _write_images(folder):
    import imageio.v3 as iio
    import tifffile

    folder.mkdir()
    imgs = nuclei(5, n=4)
    iio.imwrite(folder / "a.png", (imgs[0] // 8).astype(np.uint8))
    tifffile.imwrite(folder / "stack.tif", np.stack(imgs[1:3]))  # a z-stack: two 2-D images
    np.save(folder / "c.npy", imgs[3].astype(np.float32))
    rgb = np.stack([imgs[0], imgs[1], imgs[2]], axis=-1) // 8
    iio.imwrite(folder / "rgb.png", rgb.astype(np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_cli_end_to_end(tmp_path, capsys):
    folder = _write_images(tmp_path / "imgs")
    out = tmp_path / "model.pth"

    def args(epochs):
        return ["train", "--method", "deepfill_v2", "--images", str(folder), "--out", str(out), "--crop-size", "32",
                "--batch-size", "1", "--epochs", str(epochs), "--steps-per-epoch", "1", "--val-crops", "1",
                "--device", "cpu", "--masks", "boxes,scratches", "--quiet"]

    assert cli.main(args(1)) == 0
    assert "wrote" in capsys.readouterr().out
    assert cli.main(args(2) + ["--resume"]) == 0
    assert _state_dict(state_path(out))["step"] == 2
    image = nuclei(97, n=1)[0]
    mask = np.zeros(image.shape, bool)
    mask[10:20, 30:50] = True
    filled = ip.inpaint(image, mask, method="deepfill_v2", weights=str(out), device="cpu")
    assert np.array_equal(filled[~mask], image[~mask])


@pytest.mark.slow
def test_cli_prints_the_comparison_with_biharmonic(tmp_path):
    """A separate process, as a user runs it: the summary names biharmonic and warns plainly."""
    folder = _write_images(tmp_path / "imgs")
    out = tmp_path / "model.pth"
    cmd = [sys.executable, "-m", "inpaint_plugin", "train", "--method", "deepfill_v2", "--images", str(folder),
           "--out", str(out), "--crop-size", "32", "--batch-size", "1", "--epochs", "1", "--steps-per-epoch", "1",
           "--val-crops", "2", "--device", "cpu", "--time-limit", "60", "--quiet"]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "held-out hole PSNR on 2 crops: trained" in text and "biharmonic" in text
    assert "WARNING: trained deepfill_v2 is WORSE than biharmonic" in text
    assert "peak RSS" in text and out.is_file()


@pytest.mark.parametrize("extra, message", [
    (["--method", "telea"], "cannot be trained"),
    (["--input-size", "60"], "input_size must be a multiple of 8"),
    (["--crop-size", "36"], "multiple of 8"),
    (["--images", "/nonexistent/dir"], "no such file"),
    (["--masks", "blobs"], "unknown mask families"),
])
def test_cli_bad_arguments(tmp_path, capsys, extra, message):
    folder = _write_images(tmp_path / "imgs")
    args = ["train", "--method", "deepfill_v2", "--images", str(folder), "--out", str(tmp_path / "m.pth"),
            "--quiet"] + extra
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.pth").exists()


def test_cli_requires_out(capsys):
    assert cli.main(["train", "--method", "deepfill_v2", "--images", "x"]) == 2
    assert "--out" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# argument errors (before any training)
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(method="biharmonic"), ValueError, r"trainable methods: \['deepfill_v1', 'deepfill_v2', 'gmcnn'"),
    (dict(method="medfe", input_size=128), ValueError, "input_size must be 256 for medfe"),
    (dict(input_size=33), ValueError, "input_size must be a multiple of 8"),
    (dict(time_limit=0), ValueError, "time_limit must be in"),
    (dict(callback=3), TypeError, "callback must be callable"),
    (dict(crop_size=36), ValueError, "crop_size must be a multiple of 8"),
    (dict(crop_size=16), ValueError, "crop_size must be >= 32"),
    (dict(crop_size=128), ValueError, "crop_size=128 is larger than every image"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(epochs=1.5), TypeError, "epochs must be an integer"),
    (dict(lr=0), ValueError, "lr must be in"),
    (dict(val_fraction=0.95), ValueError, "val_fraction"),
    (dict(masks=["blobs"]), ValueError, "unknown mask families"),
    (dict(normalize="zscore"), ValueError, "normalize must be one of"),
    (dict(channel_axis=5), ValueError, "channel_axis=5 is out of range"),
    (dict(perceptual_weight=1.0), ValueError, "need vgg_weights"),
    (dict(weights="/nonexistent.pth"), ValueError, "weights='/nonexistent.pth': no such file"),
    (dict(resume=True), ValueError, "no training state"),
    (dict(out="model.safetensors"), ValueError, "use a .pth or .pt name"),
    (dict(images=[]), ValueError, "images is empty"),
    (dict(images=[np.zeros((64, 64), bool)]), TypeError, "integer or float"),
    (dict(images=42), TypeError, "images must be"),
    (dict(device="tpu"), ValueError, "device must be one of"),
])
def test_bad_arguments(tmp_path, kwargs, error, match):
    args = dict(method="deepfill_v2", images=nuclei(6, n=2), out=tmp_path / "m.pth", progress=False)
    args.update(kwargs)
    method, images = args.pop("method"), args.pop("images")
    with pytest.raises(error, match=match):
        ip.train(method, images, **{**dict(crop_size=32), **args})
    assert not (tmp_path / "m.pth").exists()


def test_weights_and_resume_exclude_each_other(tmp_path):
    start = random_checkpoint("deepfill_v2", tmp_path / "start.pth")
    with pytest.raises(ValueError, match="either weights .* or resume"):
        ip.train("deepfill_v2", nuclei(6, n=2), out=tmp_path / "m.pth", weights=start, resume=True)


def test_resume_refuses_another_methods_state(tmp_path):
    images = nuclei(7, n=2)
    ip.train("deepfill_v2", images, out=tmp_path / "m.pth", **{**TINY, "epochs": 0})
    with pytest.raises(ValueError, match="belongs to method 'deepfill_v2'"):
        ip.train("deepfill_v1", images, out=tmp_path / "m.pth", resume=True, **TINY)


def test_starting_from_a_checkpoint_uses_its_weights(tmp_path):
    start = random_checkpoint("deepfill_v2", tmp_path / "start.pth", seed=123)
    result = ip.train("deepfill_v2", nuclei(8, n=2), out=tmp_path / "m.pth", weights=start,
                      **{**TINY, "epochs": 0})
    _assert_same_tensors(_state_dict(result.checkpoint)["G"], _state_dict(start)["G"])


# --------------------------------------------------------------------------------------------------
# data: images -> planes -> crops
# --------------------------------------------------------------------------------------------------
def test_sources_stacks_channels_and_normalisation(tmp_path):
    stack = np.stack(nuclei(9, n=3, size=40))  # (3, 40, 40): three 2-D images
    sources = _train_data.load_sources([stack])
    assert len(sources) == 3 and all(len(s) == 1 and s[0].group == (0, 0, 0) for s in sources)
    full = sources[0][0].crop(0, 0, 40)
    assert full.shape == (40, 40, 3) and full.dtype == np.float32
    assert full.min() == 0.0 and full.max() == 1.0  # 0.1/99.9 percentiles -> 0/1 and clipped, as inpaint() does
    five = np.random.default_rng(0).random((5, 40, 40)).astype(np.float32)
    groups = [p.group for p in _train_data.load_sources(five, channel_axis=0)[0]]
    assert groups == [(0, 1, 2), (3, 4, 3)]  # the API's mapping of 5 channels to RGB triples
    import imageio.v3 as iio

    rgba = np.random.default_rng(1).integers(0, 255, (40, 40, 4), dtype=np.uint8)
    iio.imwrite(tmp_path / "x.png", rgba)
    (src,) = _train_data.load_sources(str(tmp_path / "*.png"))
    assert src[0].group == (0, 1, 2) and src[0].data.shape == (40, 40, 3)  # alpha dropped


def test_range_normalisation_is_what_inpaint_feeds_the_networks():
    """uint8 data are divided by 255 (no contrast stretch), other data mapped by the 0.1/99.9 percentiles
    of the values of each RGB group, as ``inpaint()`` does for the deep methods."""
    from inpaint_plugin._engine import RANGE_PERCENTILES

    dim = (np.random.default_rng(0).random((48, 48)) * 40 + 50).astype(np.uint8)  # values 50..90 only
    crop = _train_data.load_sources([dim])[0][0].crop(0, 0, 48)
    np.testing.assert_allclose(crop[..., 0], dim / 255.0, rtol=1e-6)
    img16 = nuclei(13, n=1, size=48)[0]
    lo, hi = np.percentile(img16.astype(np.float64), RANGE_PERCENTILES)
    crop = _train_data.load_sources([img16])[0][0].crop(0, 0, 48)
    np.testing.assert_allclose(crop[..., 0], np.clip((img16 - lo) / (hi - lo), 0, 1), atol=1e-6)
    rgb = np.random.default_rng(1).random((48, 48, 3)) * [1.0, 2.0, 4.0]
    (plane,) = _train_data.load_sources([rgb], channel_axis=-1)[0]
    assert len(set(plane.lo.tolist())) == 1 and len(set(plane.scale.tolist())) == 1  # one range: colour kept
    stretched = _train_data.load_sources([dim], normalize="minmax")[0][0].crop(0, 0, 48)
    assert stretched.min() == 0.0 and stretched.max() == 1.0


def test_percentile_normalisation_clips_hot_pixels():
    img = nuclei(10, n=1, size=48)[0]
    img[5, 5] = 60000  # a hot pixel
    mm = _train_data.load_sources([img], normalize="minmax")[0][0].crop(0, 0, 48)
    pc = _train_data.load_sources([img], normalize="percentile")[0][0].crop(0, 0, 48)
    assert mm[5, 5, 0] == 1.0 and pc[5, 5, 0] == 1.0
    assert np.median(pc) > 3 * np.median(mm)  # the rest of the image keeps its contrast


def test_split_holds_out_images_or_bottom_rows():
    rng = np.random.default_rng(0)
    sources = _train_data.load_sources(nuclei(11, n=5))
    train, val = _train_data.split_sources(sources, 0.2, 32, rng)
    assert len(train) == 4 and len(val) == 1
    assert {p.name for p in train}.isdisjoint({p.name for p in val})
    single = _train_data.load_sources([nuclei(12, n=1, size=128)[0]])
    train, val = _train_data.split_sources(single, 0.25, 32, rng)
    assert train[0].shape == (96, 128) and val[0].shape == (32, 128)
    assert np.shares_memory(train[0].data, single[0][0].data)  # views, no copies
    with pytest.raises(ValueError, match="cannot be split"):
        _train_data.split_sources(_train_data.load_sources([nuclei(12, n=1, size=48)[0]]), 0.25, 32, rng)
    train, val = _train_data.split_sources(single, 0.0, 32, rng)
    assert val == []


def test_crops_with_nan_are_drawn_again():
    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    img[:, :40] = np.nan  # only columns 40..63 are finite
    planes = [p for s in _train_data.load_sources([img]) for p in s]
    weights = _train_data.plane_weights(planes)
    rng = np.random.default_rng(1)
    for _ in range(5):
        crop = _train_data.sample_crop(planes, weights, 24, rng, augment=True)
        assert np.isfinite(crop).all()
    with pytest.raises(ValueError, match="NaN"):
        _train_data.sample_crop(planes, weights, 32, rng, augment=False)


# --------------------------------------------------------------------------------------------------
# losses and discriminator
# --------------------------------------------------------------------------------------------------
def test_sn_patchgan_scores_patches_and_hinge_losses():
    d = SNPatchGAN()
    x, m = torch.rand(2, 3, 64, 64) * 2 - 1, torch.zeros(2, 1, 64, 64)
    # six stride-2 layers, 256 channels: 256 scores per 64 x 64 patch
    assert d(x, m).shape == (2, 256)
    assert d(torch.rand(1, 3, 128, 96), torch.zeros(1, 1, 128, 96)).shape == (1, 256 * 2 * 2)
    for _ in range(20):  # power iterations converge: every layer has spectral norm ~1
        d(x, m)
    conv = d.layers[0]
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert abs(float(sigma) - 1.0) < 0.05
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert float(hinge_d_loss(real, fake)) == pytest.approx(0.25 + 0.5)
    assert float(hinge_g_loss(fake)) == pytest.approx(1.0)


def test_spatial_discount():
    mask = np.zeros((12, 12), bool)
    mask[2:9, 2:9] = True  # a 7 x 7 hole
    w = spatial_discount(mask, gamma=0.9)
    assert (w[~mask] == 0).all()
    assert w[2, 5] == pytest.approx(1.0)  # next to a known pixel
    assert w[3, 5] == pytest.approx(0.9)
    assert w[5, 5] == pytest.approx(0.9**3)  # the centre, 4 px from the known border


def test_feature_losses_vanish_for_identical_images(tmp_path):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        torch.save(VGG19Features().state_dict(), tmp_path / "vgg.pth")
    vgg = load_vgg19(tmp_path / "vgg.pth")
    a = torch.rand(2, 3, 32, 32)
    b = torch.rand(2, 3, 32, 32)
    assert float(perceptual_loss(vgg, a, a)) == 0.0
    assert float(perceptual_loss(vgg, a, b)) > 0
    assert float(id_mrf_loss(vgg, a, a)) < 0.05 * float(id_mrf_loss(vgg, a, b))
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="vgg_weights"):
        load_vgg19(tmp_path / "bad.pth")
