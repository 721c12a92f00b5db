"""LaMa (big-lama): conformance with the reference (shared/conformance/lama), the official checkpoint forms
(Lightning best.ckpt, IOPaint's TorchScript big-lama.pt) read without running pickle code, and the backend."""
from __future__ import annotations

import json
import pickle
import zipfile
from collections import OrderedDict
from typing import Dict, List

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inpaint_plugin.backends.lama import SPEC  # noqa: E402
from inpaint_plugin.deep._torch_zip import Opaque, read_torch_zip, tensors_by_name  # noqa: E402
from inpaint_plugin.deep.nets.lama import FFCResNetGenerator  # noqa: E402


@pytest.fixture(scope="module")
def vectors(conformance_dir):
    d = conformance_dir / "lama"
    if not d.is_dir():
        pytest.skip(f"no LaMa vectors at {d}")
    return d


@pytest.fixture(scope="module")
def spec(vectors):
    return json.loads((vectors / "spec.json").read_text())


@pytest.fixture(scope="module")
def case0(vectors):
    return np.load(vectors / "case0.npz")


@pytest.fixture(scope="module")
def filled(spec, fill_state_dict):
    """The fill.py weights of the vectors (no ``generator.`` prefix)."""
    return fill_state_dict(FFCResNetGenerator().state_dict(), seed=spec["fill"]["seed"], gain=spec["fill"]["gain"])


@pytest.fixture(scope="module")
def net(filled):
    g = FFCResNetGenerator().eval()
    g.load_state_dict(filled, strict=True)
    return g


def _max_err(out, ref) -> float:
    return float(np.abs(np.asarray(out, np.float64) - ref).max())


# --------------------------------------------------------------------------------------- malicious payloads
def _make_file(path):
    """What a malicious pickle would run: it creates ``path``."""
    with open(path, "w") as f:
        f.write("code ran")
    return path


class _Payload:
    """Pickles as a call of ``_make_file(path)``: unpickling it with plain pickle creates the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (_make_file, (self.path,))


class _ConfigLike:
    """A foreign class with state, standing in for omegaconf's DictConfig when omegaconf is missing."""

    def __init__(self, content):
        self.content = content

    def __setstate__(self, state):  # must never be called by the restricted reader
        raise AssertionError("foreign __setstate__ ran")


def _config():
    try:
        from omegaconf import OmegaConf
    except ImportError:
        return _ConfigLike({"generator": {"kind": "ffc_resnet", "ngf": 64}})
    return OmegaConf.create({"generator": {"kind": "ffc_resnet", "ngf": 64, "n_blocks": 18},
                             "run_title": "b18_ffc075_batch8x15", "ngf2": "${generator.ngf}"})


def _lightning_checkpoint(state, path, payload=None):
    """``torch.save`` of a dict shaped like big-lama's best.ckpt: generator under ``generator.``, plus
    discriminator / loss / evaluator entries, Lightning's bookkeeping and an omegaconf config."""
    sd = OrderedDict((f"generator.{k}", v) for k, v in state.items())
    sd["discriminator.model0.0.weight"] = torch.zeros(64, 3, 4, 4)
    sd["loss_resnet_pl.impl.conv1.weight"] = torch.zeros(64, 3, 7, 7)
    sd["val_evaluator.scores.ssim.gaussian_window"] = torch.ones(1, 1, 11, 11)
    ckpt = {"epoch": 39, "global_step": 999, "pytorch-lightning_version": "1.2.9",
            "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(0.5), "best_model_path": "x"}},
            "lr_schedulers": [], "state_dict": sd, "hyper_parameters": _config()}
    if payload is not None:
        ckpt["callbacks"]["evil"] = payload
    torch.save(ckpt, path)
    return path


# ------------------------------------------------------------------------------------------ the network
def test_state_dict_matches_reference(spec):
    g = FFCResNetGenerator()
    sd = g.state_dict()
    assert [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sd.items()] == spec["state_dict"]
    assert sum(p.numel() for p in g.parameters()) == spec["param_count"]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules()) == spec["n_batchnorm2d"]


@pytest.mark.slow
def test_case0_network_and_intermediates(spec, case0, net):
    """Output and the recorded bottleneck arrays (model.4, model.5, model.22) at 256x256."""
    tol = spec["tolerance"]["per_array"]
    seen = {}

    def keep(name):
        def hook(module, inputs, output):
            seen[name] = output

        return hook

    handles = [net.model[i].register_forward_hook(keep(n)) for i, n in ((4, "down"), (5, "block0"), (22, "block17"))]
    try:
        with torch.inference_mode():
            out = net(torch.from_numpy(case0["x"]))
    finally:
        for h in handles:
            h.remove()
    assert _max_err(out, case0["output"]) <= tol["output"]
    for name, (x_l, x_g) in seen.items():
        assert _max_err(x_l[:, :8], case0[f"{name}_l_first8"]) <= tol[f"{name}_l_first8"]
        assert _max_err(x_g[:, :8], case0[f"{name}_g_first8"]) <= tol[f"{name}_g_first8"]
    composite = case0["mask"] * out.numpy() + (1 - case0["mask"]) * case0["image"]
    assert _max_err(composite, case0["composite"]) <= tol["composite"]


def test_case0_folded_inference(spec, case0, net):
    """``infer`` (BatchNorms folded, the decoder near the holes only with ``holes_only``) reproduces the
    reference's output: everywhere, and at the hole pixels."""
    tol = spec["tolerance"]["per_array"]["output"]
    x = torch.from_numpy(case0["x"])
    hole = np.broadcast_to(case0["x"][:, 3:4] > 0, case0["output"].shape)
    with torch.inference_mode():
        out = net.infer(x)
        part = net.infer(x, holes_only=True)
    assert _max_err(out, case0["output"]) <= tol
    assert _max_err(part.numpy()[hole], case0["output"][hole]) <= tol


@pytest.mark.slow
def test_case0_512_network(spec, case0, net):
    tol = spec["tolerance"]["per_array"]["case0_512_output"]
    x = torch.from_numpy(case0["case0_512_x"])
    with torch.inference_mode():
        out = net(x)
        folded = net.infer(x)
    assert _max_err(out, case0["case0_512_output"]) <= tol
    assert _max_err(folded, case0["case0_512_output"]) <= tol


def test_fourier_unit_vector(vectors, spec, net):
    """model.5.conv1.ffc.convg2g.fu alone, and its interleaved spectra (in: rfftn; out: after conv+BN+ReLU)."""
    z = np.load(vectors / "case0_fourier_unit.npz")
    tol = spec["layer_tests"]["case0_fourier_unit.npz"]["tolerance"]["max_abs"]
    fu = net.model[5].conv1.ffc.convg2g.fu
    seen = {}
    h1 = fu.conv_layer.register_forward_pre_hook(lambda m, inputs: seen.__setitem__("in", inputs[0].clone()))
    h2 = fu.relu.register_forward_hook(lambda m, inputs, output: seen.__setitem__("out", output.clone()))
    try:
        with torch.inference_mode():
            out = fu(torch.from_numpy(z["fu_in"]))
    finally:
        h1.remove()
        h2.remove()
    assert _max_err(out, z["fu_out"]) <= tol
    assert _max_err(seen["in"][:, :8], z["fu_spec_in_first8"]) <= tol
    assert _max_err(seen["out"][:, :8], z["fu_spec_out_first8"]) <= tol


def test_size_rules_and_batch_independence(net):
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.zeros(1, 4, 20, 24))
    with pytest.raises(ValueError, match="at least 16"):
        net(torch.zeros(1, 4, 8, 16))
    x = torch.rand(2, 4, 16, 40, generator=torch.Generator().manual_seed(0))  # non-square, smallest height
    with torch.inference_mode():
        both = net(x)
        first = net(x[:1])
    assert both.shape == (2, 3, 16, 40)
    torch.testing.assert_close(both[:1], first, rtol=0, atol=1e-6)  # eval-mode BN: items independent


# ------------------------------------------------------------------------------- the restricted reader
def test_restricted_reader_takes_tensors_and_never_runs_pickle_code(tmp_path):
    marker = tmp_path / "created_by_pickle"
    state = OrderedDict(a=torch.randn(3, 4), b=torch.arange(10)[2:7], c=torch.ones(2, dtype=torch.bfloat16),
                        d=torch.randn(4, 6).t())
    state["n"] = torch.tensor(7)
    path = _lightning_checkpoint(state, tmp_path / "best.ckpt", payload=_Payload(marker))

    obj = read_torch_zip(path)
    assert not marker.exists()
    flat = tensors_by_name(obj)
    for k, v in state.items():
        got = flat[f"state_dict.generator.{k}"]
        assert got.dtype == v.dtype and got.shape == v.shape and torch.equal(got, v)
    assert obj["epoch"] == 39 and obj["pytorch-lightning_version"] == "1.2.9"
    assert isinstance(obj["hyper_parameters"], Opaque)  # the config class was never imported or run
    assert isinstance(obj["callbacks"]["evil"], Opaque)
    assert obj["callbacks"]["evil"]._pickle_global[1] == "_make_file"

    # the payload is live: torch.load with weights_only=True refuses the file (the config class), and a
    # plain unpickling runs the payload
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_restricted_reader_errors(tmp_path):
    path = _lightning_checkpoint(OrderedDict(a=torch.randn(64, 64)), tmp_path / "best.ckpt")
    data = path.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.ckpt"):
        read_torch_zip(tmp_path / "cut.ckpt")
    (tmp_path / "plain.zip").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as zf:
        zf.writestr("a/readme.txt", "no pickle")
    with pytest.raises(ValueError, match="data.pkl"):
        read_torch_zip(tmp_path / "plain.zip")
    # a storage record shorter than the tensor needs
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "short.ckpt", "w") as dst:
        for info in src.infolist():
            raw = src.read(info)
            dst.writestr(info, raw[:100] if "/data/" in info.filename and len(raw) > 1000 else raw)
    with pytest.raises(ValueError, match="bytes"):
        read_torch_zip(tmp_path / "short.ckpt")


def test_restricted_reader_big_endian_archive(tmp_path):
    """An archive whose ``byteorder`` record says ``big`` (written on a big-endian machine): the storage
    bytes are swapped back. Made here by swapping the records of a little-endian file."""
    state = OrderedDict(a=torch.randn(3, 5), n=torch.arange(-3, 4), h=torch.randn(6).half(),
                        u=torch.arange(4, dtype=torch.uint8))
    path = tmp_path / "little.pt"
    torch.save(state, path)
    itemsize = {}  # storage key -> element size, from the tensors' storages in save order
    with zipfile.ZipFile(path) as src:
        keys = sorted(n for n in src.namelist() if "/data/" in n)
    assert len(keys) == len(state)
    for record, t in zip(keys, state.values()):  # torch.save numbers the storages in the order it meets them
        itemsize[record] = t.element_size()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "big.pt", "w") as dst:
        for info in src.infolist():
            raw = src.read(info)
            if info.filename in itemsize:
                raw = np.frombuffer(raw, np.uint8).reshape(-1, itemsize[info.filename])[:, ::-1].tobytes()
            elif info.filename.endswith("/byteorder"):
                raw = b"big"
            dst.writestr(info, raw)
    got = tensors_by_name(read_torch_zip(tmp_path / "big.pt"))
    for k, v in state.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k


class _TypedAttributes(torch.nn.Module):
    """A module whose TorchScript pickle holds typed lists and dicts (``torch.jit._pickle`` globals)."""

    def __init__(self):
        super().__init__()
        self.sizes: List[int] = [3, 4]
        self.extra: List[torch.Tensor] = [torch.arange(3.0), torch.full((2, 2), 5.0)]
        self.named: Dict[str, torch.Tensor] = {"a": torch.full((2,), 7.0)}
        self.lin = torch.nn.Linear(2, 3)

    def forward(self, x):
        return self.lin(x) + self.extra[0].sum() + self.named["a"].sum() + self.sizes[0]


def test_restricted_reader_scripted_module_with_typed_containers(tmp_path):
    module = _TypedAttributes()
    torch.jit.save(torch.jit.script(module), str(tmp_path / "typed.pt"))
    obj = read_torch_zip(tmp_path / "typed.pt")
    assert isinstance(obj, Opaque) and obj.state["sizes"] == [3, 4]
    flat = tensors_by_name(obj)
    assert sorted(flat) == ["extra.0", "extra.1", "lin.bias", "lin.weight", "named.a"]
    for name, want in (("extra.0", module.extra[0]), ("extra.1", module.extra[1]), ("named.a", module.named["a"]),
                       ("lin.weight", module.lin.weight), ("lin.bias", module.lin.bias)):
        assert torch.equal(flat[name], want.detach()), name


def test_restricted_reader_damaged_archives_give_value_errors(tmp_path):
    """Random byte changes anywhere in an archive: a ValueError naming the file, or the right tensors
    when the bytes changed were ones that do not matter; never another exception."""
    state = OrderedDict(a=torch.randn(5, 3), b=torch.arange(4)[1:])
    torch.save({"state_dict": state, "x": b"by", "y": {1, 2}}, tmp_path / "base.pt")
    base = (tmp_path / "base.pt").read_bytes()
    rng = np.random.default_rng(0)
    failures = 0
    for i in range(300):
        data = bytearray(base)
        for j in rng.integers(0, len(data), rng.integers(1, 6)):
            data[j] = rng.integers(0, 256)
        path = tmp_path / "damaged.pt"
        path.write_bytes(bytes(data))
        try:
            flat = tensors_by_name(read_torch_zip(path))
        except ValueError as e:
            assert "damaged.pt" in str(e)
            failures += 1
            continue
        for k, v in state.items():  # what did load must be right (zip CRCs guard the tensor bytes)
            if f"state_dict.{k}" in flat:
                assert torch.equal(flat[f"state_dict.{k}"], v)
    assert failures > 100


# --------------------------------------------------------------------------------- the checkpoint forms
class _Holder(torch.nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.generator = generator


class _JITWrapperLike(torch.nn.Module):
    """Shaped like the reference's bin/to_jit.py wrapper (IOPaint's big-lama.pt is a trace of it):
    ``forward(image, mask)`` returns the composite; the generator sits at ``model.generator``."""

    def __init__(self, generator):
        super().__init__()
        self.model = _Holder(generator)

    def forward(self, image, mask):
        pred = self.model.generator(torch.cat([image * (1 - mask), mask], dim=1))
        return mask * pred + (1 - mask) * image


@pytest.mark.slow
def test_torchscript_big_lama_pt_is_read_without_running_its_code(tmp_path):
    gen = FFCResNetGenerator()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        for m in gen.modules():  # non-trivial BN statistics, so that the buffers are checked too
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(3)
    wrapper = _JITWrapperLike(gen).eval()
    gen_state = {k: v.clone() for k, v in gen.state_dict().items()}
    image, mask = torch.rand(1, 3, 32, 40), torch.zeros(1, 1, 32, 40)
    mask[..., 8:20, 10:30] = 1
    with torch.inference_mode():
        expected = wrapper(image, mask)
    traced = torch.jit.trace(wrapper, (image, mask), check_trace=False)
    path = tmp_path / "big-lama.pt"
    torch.jit.save(traced, str(path))
    with zipfile.ZipFile(path) as zf:
        assert any(n.endswith("/constants.pkl") for n in zf.namelist())

    # the archive's TorchScript code replaced by code that cannot run: the reader does not need it
    broken = tmp_path / "broken-code.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            code = "/code/" in info.filename and info.filename.endswith(".py")
            dst.writestr(info, b"raise SystemExit('TorchScript code ran')\n" if code else src.read(info))
    with pytest.raises(Exception):
        torch.jit.load(str(broken))

    for p in (path, broken):
        net = SPEC.build()
        SPEC.load(net, p)
        for k, v in net.state_dict().items():
            assert torch.equal(v, gen_state[k]), k
        net.eval()
        with torch.inference_mode():
            got = mask * SPEC.predict(net, image, mask) + (1 - mask) * image
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_load_errors(tmp_path):
    net = SPEC.build()
    wrong = tmp_path / "wrong.ckpt"
    _lightning_checkpoint(OrderedDict([("model.1.ffc.convl2l.weight", torch.zeros(64, 4, 7, 7))]), wrong)
    with pytest.raises(ValueError, match="missing keys"):
        SPEC.load(net, wrong)
    with zipfile.ZipFile(tmp_path / "big-lama.zip", "w", zipfile.ZIP_DEFLATED) as zf:  # the download itself
        zf.write(wrong, "big-lama/models/best.ckpt")
        zf.writestr("big-lama/config.yaml", "generator: {}\n")
    with pytest.raises(ValueError, match="big-lama.zip.*missing keys"):  # read from inside the zip
        SPEC.load(net, tmp_path / "big-lama.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.write(wrong, "lama/last.ckpt")
    with pytest.raises(ValueError, match="lama/last.ckpt: extract"):
        SPEC.load(net, tmp_path / "other.zip")
    with zipfile.ZipFile(tmp_path / "cut.zip", "w") as zf:
        zf.writestr("big-lama/models/best.ckpt", wrong.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"cut.zip.*\(big-lama/models/best.ckpt\): not a PyTorch zip archive"):
        SPEC.load(net, tmp_path / "cut.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="models/best.ckpt"):
        SPEC.load(net, tmp_path / "empty")
    import inpaint_plugin

    image = np.zeros((16, 16, 3), np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[4:8, 4:8] = True
    with pytest.raises(ValueError, match="best.ckpt"):
        inpaint_plugin.inpaint(image, mask, method="lama", channel_axis=-1)


# ----------------------------------------------------------------------------------------- the backend
@pytest.mark.slow
def test_inpaint_reproduces_case0_from_best_ckpt(tmp_path, spec, case0, filled):
    """Official best.ckpt form (Lightning dict + omegaconf config), given as the unzipped big-lama folder,
    through the public inpaint(): the reference's composite within one grey level."""
    import inpaint_plugin
    from inpaint_plugin import deep

    (tmp_path / "big-lama" / "models").mkdir(parents=True)
    _lightning_checkpoint(filled, tmp_path / "big-lama" / "models" / "best.ckpt")
    image, mask = case0["image_uint8"], case0["mask_uint8"] > 0
    image_before = image.copy()
    deep.clear_model_cache()
    out = inpaint_plugin.inpaint(image, mask, method="lama", channel_axis=-1,
                                 weights=str(tmp_path / "big-lama"), device="cpu")
    np.testing.assert_array_equal(image, image_before)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], image[~mask])
    composite = case0["composite"][0].transpose(1, 2, 0) * 255
    assert np.abs(out.astype(np.float64) - composite).max() <= 1.0
    assert np.abs(out.astype(int) - case0["output_uint8"]).max() <= 1


@pytest.mark.slow
def test_case0_512_through_run_and_inpaint_from_safetensors(tmp_path, spec, case0, filled):
    """512x512 (same weights) from a .safetensors file with the generator. prefix: the float composite
    through deep.run within the vectors' tolerance, the uint8 one through inpaint() within a grey level."""
    from safetensors.torch import save_file

    import inpaint_plugin
    from inpaint_plugin import deep

    path = tmp_path / "big-lama.safetensors"
    save_file({f"generator.{k}": v.contiguous() for k, v in filled.items()}, str(path))
    image, mask = case0["case0_512_image_uint8"], case0["case0_512_mask_uint8"] > 0
    composite = case0["case0_512_composite"][0].transpose(1, 2, 0)
    deep.clear_model_cache()
    got = deep.run(SPEC, image.astype(np.float32) / np.float32(255), mask, weights=path, device="cpu")
    assert _max_err(got, composite) <= spec["tolerance"]["per_array"]["case0_512_composite"]
    out = inpaint_plugin.inpaint(image, mask, method="lama", channel_axis=-1, weights=str(path), device="cpu")
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert np.abs(out.astype(np.float64) - composite * 255).max() <= 1.0


@pytest.mark.slow
def test_random_checkpoint_is_official_format_and_inpaint_runs(spec, tmp_path):
    import inpaint_plugin
    from inpaint_plugin import deep

    path = deep.random_checkpoint("lama", tmp_path / "best.ckpt", seed=3)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert list(ckpt) == ["state_dict"]
    assert [(k, list(v.shape)) for k, v in ckpt["state_dict"].items()] == [
        (f"generator.{k}", s) for k, s, _ in spec["state_dict"]]

    with zipfile.ZipFile(tmp_path / "big-lama.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("big-lama/config.yaml", "generator: {}\n")
        zf.write(path, "big-lama/models/best.ckpt")
    net = SPEC.build()
    SPEC.load(net, tmp_path / "big-lama.zip")  # the download as it is (deflated), best.ckpt inside
    for k, v in net.state_dict().items():
        assert torch.equal(v, ckpt["state_dict"][f"generator.{k}"]), k

    backend = inpaint_plugin.methods()["lama"]
    assert backend.needs_weights and backend.channels == "rgb"
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)  # not a multiple of 8: padded inside
    mask = np.zeros((45, 61), bool)
    mask[10:30, 20:50] = True
    seen = []
    out = inpaint_plugin.inpaint(image, mask, method="lama", channel_axis=-1, weights=str(path), device="cpu",
                                 progress=lambda done, total: seen.append((done, total)))
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], image[~mask])
    # one full-resolution forward reports its steps (encoder, 18 blocks, decoder), then the slice is done
    assert seen == [(k, 20) for k in range(1, 21)] + [(1, 1)]

    class Cancelled(Exception):
        pass

    calls = []

    def cancel(done, total):
        calls.append(done)
        if done == 5:
            raise Cancelled

    with pytest.raises(Cancelled):  # a raising callback stops the forward between two blocks
        inpaint_plugin.inpaint(image, mask, method="lama", channel_axis=-1, weights=str(path), device="cpu",
                               progress=cancel)
    assert calls == [1, 2, 3, 4, 5]
    tiny = inpaint_plugin.inpaint(image[:9, :12], np.eye(9, 12, dtype=bool),
                                  method="lama", channel_axis=-1, weights=str(path), device="cpu")
    assert tiny.shape == (9, 12, 3)  # below the network's 16-pixel minimum: padded inside predict
