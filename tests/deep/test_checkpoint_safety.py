"""Checkpoint safety (issue 20): what a plain pickle of tensors can still hold is refused at load time
with a ValueError naming the file, never a RuntimeError later, a hang or a RecursionError; every network
loads strictly (unexpected and missing keys listed).

The per-network checks run each network's own loader and saver on its tiny-width variant
(``tests/_tiny_deep.py``: same spec, narrow network, same state_dict key names)."""
from __future__ import annotations

import time
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _tiny_deep import tiny  # noqa: E402
from inpaint_plugin import deep  # noqa: E402
from inpaint_plugin.deep._checkpoint import MAX_WRAPPER_DEPTH, load_checked, load_state_dict_file  # noqa: E402

pytestmark = pytest.mark.usefixtures("tiny_deep_methods")

#: the deep methods and the file (or folder) name their save_random writes
NETWORKS = {"deepfill_v1": "gen.pt", "deepfill_v2": "states.pth", "gmcnn": "net_GM.pth", "pennet": "G.pth",
            "spl": "spl.pt", "medfe": "medfe"}


class _Net(torch.nn.Module):
    """A conv with a BatchNorm (float weights plus the integer ``num_batches_tracked`` buffer)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)


def _state():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return {k: v.clone() for k, v in _Net().state_dict().items()}


def _first_float(obj):
    """(mapping, key) of the first floating-point tensor in a nested checkpoint."""
    for k, v in obj.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel():
            return obj, k
        if isinstance(v, dict):
            found = _first_float(v)
            if found:
                return found
    return None


def _damage(path, how):
    """Rewrite the first float tensor of the checkpoint file (or of the first file of a folder)."""
    target = sorted(p for p in path.iterdir() if p.is_file())[0] if path.is_dir() else path
    obj = torch.load(target, map_location="cpu", weights_only=True)
    holder, key = _first_float(obj)
    t = holder[key].clone()
    if how == "nan":
        t.view(-1)[t.numel() // 2] = float("nan")
    elif how == "inf":
        t.view(-1)[0] = float("-inf")
    elif how == "sparse":
        t = t.to_sparse()
    elif how == "int":
        t = t.round().to(torch.int32)
    holder[key] = t
    torch.save(obj, target)
    return target, key


# ------------------------------------------------------------------------------------------------ values
@pytest.mark.parametrize("method", [tiny(m) for m in sorted(NETWORKS)])
def test_nan_weights_are_refused_at_load_for_every_network(method, tmp_path):
    spec = deep.model_spec(method)
    path = tmp_path / NETWORKS[method.removesuffix("_tiny")]
    spec.save_random(path)
    module = spec.build()
    spec.load(module, path)  # the intact checkpoint loads
    target, key = _damage(path, "nan")
    with pytest.raises(ValueError, match=rf"weights='{path}.*NaN or infinite values in .*{key.rsplit('.', 1)[-1]}"):
        spec.load(spec.build(), path)


@pytest.mark.parametrize("how, message", [
    ("nan", r"NaN or infinite values in conv\.weight"),
    ("inf", r"NaN or infinite values in conv\.weight"),
    ("sparse", r"sparse or other non-dense tensors \(conv\.weight\)"),
    ("int", r"tensors of the wrong kind of type \(conv\.weight \(int32, network float32\)\)"),
])
def test_bad_tensors_are_refused_naming_the_file(how, message, tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": _state()}, path)
    _damage(path, how)
    with pytest.raises(ValueError, match=rf"weights='{path}': refused: {message}"):
        load_checked(_Net(), load_state_dict_file(path), path=path)


def test_integer_buffers_and_half_precision_weights_load(tmp_path):
    state = _state()
    assert state["bn.num_batches_tracked"].dtype == torch.int64
    state["bn.num_batches_tracked"] = torch.tensor(7)
    state["conv.weight"] = state["conv.weight"].half()  # fp16 weights: floating point, accepted
    path = tmp_path / "ckpt.pth"
    torch.save(state, path)
    net = _Net()
    load_checked(net, load_state_dict_file(path), path=path)
    assert int(net.bn.num_batches_tracked) == 7
    torch.testing.assert_close(net.conv.weight, state["conv.weight"].float(), rtol=0, atol=0)
    state["bn.num_batches_tracked"] = torch.tensor(7.0)  # a float where the network counts
    with pytest.raises(ValueError, match=r"bn\.num_batches_tracked \(float32, network int64\)"):
        load_checked(_Net(), state, path=path)


def test_nan_checkpoint_through_inpaint_is_a_value_error(tmp_path):
    import inpaint_plugin

    path = tmp_path / "states.pth"
    deep.model_spec(tiny("deepfill_v2")).save_random(path)
    _damage(path, "nan")
    image = np.zeros((32, 32, 3), np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[8:16, 8:16] = True
    deep.clear_model_cache()
    with pytest.raises(ValueError, match=r"weights=.*states\.pth.*NaN"):
        inpaint_plugin.inpaint(image, mask, method=tiny("deepfill_v2"), channel_axis=-1, weights=str(path),
                               device="cpu")


# ------------------------------------------------------------------------------------------------ nesting
def test_self_referencing_checkpoint_is_refused_not_a_hang(tmp_path):
    loop: dict = {}
    loop["state_dict"] = loop  # pickles (memo), loads with weights_only=True
    path = tmp_path / "loop.pth"
    torch.save(loop, path)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"weights='{path}': refused: .*nest without end \(a mapping contains itself"):
        load_state_dict_file(path)
    assert time.perf_counter() - start < 10


def _deep_checkpoint(path, depth):
    """A torch zip checkpoint whose pickle is ``{'state_dict': {'state_dict': ...}}`` ``depth`` levels deep,
    written opcode by opcode (torch.save itself would hit the recursion limit)."""
    template = path.with_name("template.pt")
    torch.save({"a": 1}, template)
    key = b"X" + len(b"state_dict").to_bytes(4, "little") + b"state_dict"  # BINUNICODE
    pickle = b"\x80\x02" + (b"}" + key) * depth + b"}" + b"s" * depth + b"."  # EMPTY_DICT ... SETITEM ... STOP
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(path, "w") as out:
        for name in src.namelist():
            out.writestr(name, pickle if name.endswith("/data.pkl") else src.read(name))
    template.unlink()


@pytest.mark.parametrize("depth", [MAX_WRAPPER_DEPTH + 1, 100_000])
def test_checkpoint_nested_without_end_is_refused(depth, tmp_path):
    path = tmp_path / "deep.pth"
    _deep_checkpoint(path, depth)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"weights='{path}': refused: .*more than {MAX_WRAPPER_DEPTH} levels"):
        load_state_dict_file(path)
    assert time.perf_counter() - start < 30


def test_a_few_wrapper_levels_still_load(tmp_path):
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {"model": {"net": _state()}}}, path)
    assert set(load_state_dict_file(path)) == set(_state())


# ------------------------------------------------------------------------------------------------ strict keys
def test_spl_extra_keys_are_unexpected(tmp_path):
    spec = deep.model_spec(tiny("spl"))
    path = tmp_path / "spl.pt"
    spec.save_random(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    # the reference training model's other parts are expected beside the generator and ignored
    ckpt["discriminator.module.conv1.0.weight"] = torch.zeros(64, 3, 4, 4)
    ckpt["tresnet_xL_hold.body.0.weight"] = torch.zeros(1)
    torch.save(ckpt, path)
    spec.load(spec.build(), path)
    for extra in ("extra_weight", "generator.module.extra_weight"):
        bad = dict(ckpt)
        bad[extra] = torch.zeros(3)
        torch.save(bad, path)
        with pytest.raises(ValueError, match=rf"weights='{path}'.*unexpected keys: extra_weight"):
            spec.load(spec.build(), path)


def test_deepfill_v1_wrapper_extra_keys_are_unexpected(tmp_path):
    spec = deep.model_spec(tiny("deepfill_v1"))
    state = deep.random_state_dict(spec.build)
    flat = {f"netG.{k}": v for k, v in state.items()}
    flat["localD.dis_conv_module.conv1.conv.weight"] = torch.zeros(1)  # the port's Trainer: ignored
    path = tmp_path / "torch_model.p"
    torch.save(flat, path)
    spec.load(spec.build(), path)
    flat["optimizer_state"] = torch.zeros(1)
    torch.save(flat, path)
    with pytest.raises(ValueError, match=r"unexpected keys: optimizer_state"):
        spec.load(spec.build(), path)


@pytest.mark.parametrize("method", [tiny(m) for m in sorted(NETWORKS)])
def test_every_network_lists_unexpected_and_missing_keys(method, tmp_path):
    spec = deep.model_spec(method)
    path = tmp_path / NETWORKS[method.removesuffix("_tiny")]
    spec.save_random(path)
    target = sorted(p for p in path.iterdir() if p.is_file())[0] if path.is_dir() else path
    obj = torch.load(target, map_location="cpu", weights_only=True)
    holder, key = _first_float(obj)
    holder["surplus_key"] = torch.zeros(2)
    del holder[key]
    torch.save(obj, target)
    with pytest.raises(ValueError, match=rf"missing keys: .*{key.rsplit('.', 2)[-2]}.*unexpected keys: surplus_key"):
        spec.load(spec.build(), path)


def test_a_tensorflow_checkpoint_given_to_a_pytorch_loader_is_named(tmp_path):
    """The committed TF-written fixture (tests/deep/data/tf_small) where a .pth is expected."""
    from pathlib import Path

    small = Path(__file__).parent / "data" / "tf_small"
    for form in (small, small / "snap-0.index"):
        with pytest.raises(ValueError, match=r"a TensorFlow checkpoint, where this method reads a PyTorch"):
            load_state_dict_file(form)
        with pytest.raises(ValueError, match=r"a TensorFlow checkpoint"):
            deep.model_spec("pennet").load(deep.model_spec("pennet").build(), form)
