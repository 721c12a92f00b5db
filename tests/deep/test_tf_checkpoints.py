"""Official TensorFlow 1 checkpoints, written here by real TensorFlow, load without TensorFlow.

TensorFlow (``tensorflow-cpu``, a test-only dependency) runs in a subprocess that writes checkpoint
folders with ``tf.compat.v1.train.Saver`` (the saver of the official DeepFill / GMCNN training code):
``checkpoint``, ``<prefix>.index``, ``<prefix>.data-00000-of-00001``, ``<prefix>.meta``. The variables
carry the official names and HWIO shapes (the ``tf_to_port_mapping`` tables of
``shared/conformance/deepfill_v*/spec.json``, read from the official variable scopes) plus the
discriminator and optimiser variables a training run saves. Their values are ``fill.py``'s for our
keys, mapped to the official layout (OIHW -> HWIO, and RGB -> BGR on the layers that read or write the
image, since the official networks work on ``cv2.imread``'s BGR). Loading them through the backends must
give exactly ``fill.py``'s state_dict and reproduce the conformance vectors, through ``run()`` and through
``inpaint_plugin.inpaint(..., weights=folder)``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inpaint_plugin.deep import _tf_checkpoint as tfc  # noqa: E402

_MANY = 9000  # variables in the many-blocks checkpoint
#: written by tensorflow-cpu 2.21.0 (tf.compat.v1.train.Saver) from _small_variables(); the .meta is left out
SMALL = Path(__file__).parent / "data" / "tf_small"


def _needs_tensorflow():
    """Skip without TensorFlow (importorskip's check, without importing TF next to torch here)."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed (test-only dependency: pip install tensorflow-cpu)")


def _small_variables():
    """Every dtype the reader converts, a scalar and an empty tensor."""
    rng = np.random.default_rng(0)
    return [
        ("a/float32", rng.standard_normal((3, 4, 2, 5)).astype(np.float32)),
        ("a/float64", rng.standard_normal(7)),
        ("a/int32", np.arange(-5, 5, dtype=np.int32).reshape(2, 5)),
        ("a/int64", np.array([2**40, -3], dtype=np.int64)),
        ("a/uint8", np.arange(250, 256, dtype=np.uint8)),
        ("a/bool", np.array([True, False, True])),
        ("a/float16", np.array([0.5, -2.0, 65504.0], dtype=np.float16)),
        ("a/bfloat16", np.array([1.0, -0.5, 3.0], dtype=np.float32), "bfloat16"),
        ("a/scalar", np.float32(3.25)),
        ("a/empty", np.zeros((0, 3), np.float32)),
    ]

#: Writes one checkpoint folder per job with real TensorFlow (graph mode, tf.compat.v1.train.Saver).
_WRITER = textwrap.dedent(
    """
    import json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    exec(open(sys.argv[2]).read())  # the GMCNN (TF) graph: defines gmcnn(var, x_w_mask, cnum)
    for job in json.load(open(sys.argv[1])):
        arrays = np.load(job["arrays"])
        if job.get("raw"):  # the SaveV2 op alone (what Saver runs), eagerly: fast for thousands of names
            names = [name for name, _ in job["variables"]]
            tf.raw_ops.SaveV2(prefix=os.path.join(job["folder"], job["name"]), tensor_names=names,
                              shape_and_slices=[""] * len(names),
                              tensors=[tf.constant(arrays[f"a{i}"]) for i in range(len(names))])
            print("wrote", job["folder"], flush=True)
            continue
        graph = tf.Graph()
        with graph.as_default():
            var = {}
            for i, (name, dtype) in enumerate(job["variables"]):
                value = tf.constant(arrays[f"a{i}"])
                if dtype == "bfloat16":
                    value = tf.cast(value, tf.bfloat16)
                var[name] = tf.compat.v1.get_variable(name, initializer=value)
            output = gmcnn(var, tf.constant(arrays["input"]), job["cnum"]) if job.get("oracle") else None
            saver = tf.compat.v1.train.Saver()
            with tf.compat.v1.Session() as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                saver.save(sess, os.path.join(job["folder"], job.get("name", "snap")), global_step=job.get("step"))
                if output is not None:
                    np.save(job["oracle"], sess.run(output))
        print("wrote", job["folder"], flush=True)
    """
)

#: The generator of shepnerd/inpainting_gmcnn tensorflow/net/network.py (build_generator), transcribed
#: with tf.nn ops (tf.layers is gone from TF 2.16+): the oracle for the network of method 'gmcnn_tf'.
_GMCNN_TF = textwrap.dedent(
    """
    def conv(var, x, name, stride=1, rate=1, act=True):
        kernel, bias = var[f"inpaint_net/{name}/kernel"], var[f"inpaint_net/{name}/bias"]
        y = tf.nn.conv2d(x, kernel, strides=stride, padding="SAME", dilations=rate) + bias
        return tf.nn.elu(y) if act else y

    def gmcnn(var, x_w_mask, cnum):
        h, w = x_w_mask.shape[1], x_w_mask.shape[2]
        def encoder(col, x):
            x = conv(var, x, col + "conv1")
            x = conv(var, x, col + "conv2_downsample", stride=2)
            x = conv(var, x, col + "conv3")
            x = conv(var, x, col + "conv4_downsample", stride=2)
            x = conv(var, x, col + "conv5")
            x = conv(var, x, col + "conv6")
            for i, rate in enumerate((2, 4, 8, 16)):
                x = conv(var, x, col + f"conv{7 + i}_atrous", rate=rate)
            if cnum > 32:
                x = conv(var, x, col + "conv11_atrous", rate=32)
            x = conv(var, x, col + "conv11")
            return conv(var, x, col + "conv12")
        x_b1 = tf.compat.v1.image.resize_bilinear(encoder("b1", x_w_mask), [h, w], align_corners=True)
        x = tf.compat.v1.image.resize_nearest_neighbor(encoder("b2", x_w_mask), [h // 2, w // 2], align_corners=True)
        x = conv(var, x, "b2conv13_upsample/b2conv13_upsample_conv")
        x = conv(var, x, "b2conv14")
        x_b2 = tf.compat.v1.image.resize_bilinear(x, [h, w], align_corners=True)
        x = tf.compat.v1.image.resize_nearest_neighbor(encoder("b3", x_w_mask), [h // 2, w // 2], align_corners=True)
        x = conv(var, x, "b3conv13_upsample/b3conv13_upsample_conv")
        x = conv(var, x, "b3conv14")
        x = tf.compat.v1.image.resize_nearest_neighbor(x, [h, w], align_corners=True)
        x = conv(var, x, "b3conv15_upsample/b3conv15_upsample_conv")
        x_b3 = conv(var, x, "b3conv16")
        x = conv(var, tf.concat([x_b1, x_b2, x_b3], axis=3), "mergeconv17")
        x = conv(var, x, "mergeconv18", act=False)
        return tf.clip_by_value(x, -1.0, 1.0)
    """
)


def _write_with_tensorflow(jobs, tmp_path):
    """``jobs``: dicts ``folder``, ``variables`` ``[(name, array)]`` (bfloat16 given as float32 with the
    name in ``bfloat16``), optional ``name``/``step``. One TF subprocess writes them all."""
    spec = []
    for n, job in enumerate(jobs):
        arrays = {f"a{i}": np.asarray(a) for i, (_, a, *_) in enumerate(job["variables"])}
        if "input" in job:
            arrays["input"] = job["input"]
        npz = tmp_path / f"job{n}.npz"
        np.savez(npz, **arrays)
        spec.append({"folder": str(job["folder"]), "arrays": str(npz), "name": job.get("name", "snap"),
                     "step": job.get("step", 0), "raw": job.get("raw", False), "oracle": str(job.get("oracle", "")),
                     "cnum": job.get("cnum", 32),
                     "variables": [(v[0], v[2] if len(v) > 2 else str(np.asarray(v[1]).dtype)) for v in job["variables"]]})
    jobs_file = tmp_path / "jobs.json"
    jobs_file.write_text(json.dumps(spec))
    script = tmp_path / "write_tf.py"
    script.write_text(_WRITER)
    graph = tmp_path / "gmcnn_tf_graph.py"
    graph.write_text(_GMCNN_TF)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="-1", OMP_NUM_THREADS="1", TF_NUM_INTEROP_THREADS="1",
               TF_NUM_INTRAOP_THREADS="1")
    proc = subprocess.run([sys.executable, str(script), str(jobs_file), str(graph)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]


def _official(model, conformance_dir, fill_state_dict, module):
    """The official variables ``[(tf_name, HWIO array)]`` holding ``fill.py``'s weights for ``module``,
    from the conformance spec's TF -> port table, with the image channels in BGR order."""
    spec = json.loads((conformance_dir / model / "spec.json").read_text())
    filled = fill_state_dict(module.state_dict(), seed=spec["fill"]["seed"], gain=spec["fill"]["gain"])
    prefix = "coarse_generator." if model == "deepfill_v1" else ""
    fine = "fine_generator." if model == "deepfill_v1" else ""
    image_in = {f"{prefix}conv1.conv.weight", f"{fine}{'conv1' if fine else 'xconv1'}.conv.weight",
                f"{fine}pmconv1.conv.weight"}
    image_out = {f"{prefix}conv17.conv.weight", f"{prefix}conv17.conv.bias", f"{fine}allconv17.conv.weight",
                 f"{fine}allconv17.conv.bias"}
    out = []
    for tf_name, key, _ in spec["tf_to_port_mapping"]["rows"]:
        t = filled[key].numpy().copy()
        if key in image_in:
            t[:, :3] = t[:, 2::-1].copy()
        if key in image_out:
            t[:3] = t[2::-1].copy()
        out.append((tf_name, t.transpose(2, 3, 1, 0) if t.ndim == 4 else t))
    assert len(out) == len(filled)
    return out, filled, spec


def _training_extras(variables):
    """What a training run saves beside the generator: optimiser slots, discriminator, counters."""
    first = variables[0]
    return [
        (first[0] + "/Adam", np.zeros_like(first[1])),
        (first[0] + "/Adam_1", np.ones_like(first[1])),
        ("discriminator/sn_patch_gan/conv1/kernel", np.full((5, 5, 3, 64), 0.5, np.float32)),
        ("discriminator/sn_patch_gan/conv1/bias", np.zeros(64, np.float32)),
        ("beta1_power", np.float32(0.5)),
        ("global_step", np.int64(12345)),
    ]


@pytest.fixture(scope="module")
def written(tmp_path_factory, conformance_dir, fill_state_dict):
    """Checkpoint folders written by TensorFlow once for this module."""
    from inpaint_plugin.backends import deepfill_v1, deepfill_v2

    _needs_tensorflow()
    tmp = tmp_path_factory.mktemp("tf")
    v1, v1_filled, v1_spec = _official("deepfill_v1", conformance_dir, fill_state_dict, deepfill_v1.SPEC.build())
    v2, v2_filled, v2_spec = _official("deepfill_v2", conformance_dir, fill_state_dict, deepfill_v2.SPEC.build())
    small = _small_variables()
    # thousands of names sharing long prefixes: several table blocks, restarts, prefix-compressed keys
    many = [(f"inpaint_net/block{i // 100:03d}/a_layer_with_quite_a_long_name_{i:05d}/kernel", np.full(2, i, np.float32))
            for i in range(_MANY)]
    gmcnn_like = [("inpaint_net/b1conv1/kernel", np.zeros((7, 7, 5, 32), np.float32)),
                  ("inpaint_net/b1conv1/bias", np.zeros(32, np.float32)),
                  ("inpaint_net/mergeconv18/kernel", np.zeros((3, 3, 16, 3), np.float32))]
    gm_vars, gm_input = _gmcnn_tf_case()
    folders = {k: tmp / k for k in ("v1", "v2", "v1_missing", "small", "many", "gmcnn_tf", "gmcnn_tf_full")}
    _write_with_tensorflow([
        {"folder": folders["v1"], "variables": v1 + _training_extras(v1), "step": 0},
        {"folder": folders["v2"], "variables": v2 + _training_extras(v2), "name": "model.ckpt", "step": 100},
        {"folder": folders["v1_missing"], "variables": [v for v in v1 if v[0] != "inpaint_net/pmconv9/bias"]},
        {"folder": folders["small"], "variables": small},
        {"folder": folders["many"], "variables": many, "raw": True, "name": "snap-0"},
        {"folder": folders["gmcnn_tf"], "variables": gmcnn_like},
        {"folder": folders["gmcnn_tf_full"], "variables": gm_vars + _training_extras(gm_vars), "input": gm_input,
         "oracle": tmp / "gmcnn_tf_output.npy"},
    ], tmp)
    return dict(folders=folders, v1=(v1, v1_filled, v1_spec), v2=(v2, v2_filled, v2_spec), small=small, many=many,
                gmcnn_tf=(gm_vars, gm_input, np.load(tmp / "gmcnn_tf_output.npy")))


def _gmcnn_tf_case(h=60, w=76):
    """Official-named random variables of the TF GMCNN (cnum 32) and a BGR input ``cat[x, ones, mask]``
    (NHWC, x in [-1, 1] with holes 0, as GMCNNModel.evaluate and build_generator make it)."""
    from inpaint_plugin.deep.nets.gmcnn_tf import layer_table

    rng = np.random.default_rng(7)
    variables = []
    for name, cin, cout, k, _, _ in layer_table(32):
        scope = f"{name}/{name}_conv" if name.endswith("_upsample") else name
        std = np.float32(1.0 / np.sqrt(k * k * cin))
        variables.append((f"inpaint_net/{scope}/kernel", (rng.standard_normal((k, k, cin, cout)) * std).astype(np.float32)))
        variables.append((f"inpaint_net/{scope}/bias", (rng.standard_normal(cout) * 0.05).astype(np.float32)))
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w], dtype=np.float64).reshape(2, 1, 1)
    bgr = np.stack([np.sin(6 * xx) * yy, np.cos(4 * yy), xx - yy], axis=-1).clip(-1, 1).astype(np.float32)
    mask = np.zeros((h, w, 1), np.float32)
    mask[20:44, 30:60] = 1
    x = np.concatenate([bgr * (1 - mask), np.ones_like(mask), mask], axis=-1)[None]
    return variables, x


# ------------------------------------------------------------------------------------------------ reader
def _check_small(folder):
    got = tfc.read_variables(folder)
    small = _small_variables()
    assert list(got) == sorted(v[0] for v in small)  # the table's (sorted) order
    for name, value, *_ in small:
        want = np.asarray(value)
        assert got[name].shape == want.shape, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)
        if name != "a/bfloat16":
            assert got[name].dtype == want.dtype, name
    assert got["a/bfloat16"].dtype == np.float32
    info = tfc.list_variables(folder)
    assert info["a/bfloat16"].dtype == "bfloat16" and info["a/scalar"].shape == ()


def test_reader_reads_every_dtype_shape_and_scalar():
    """On the committed fixture TensorFlow wrote (runs without TensorFlow)."""
    _check_small(SMALL)


def test_reader_reads_what_this_tensorflow_writes(written):
    _check_small(written["folders"]["small"])


def _data_blocks(index_file):
    """Number of data blocks of a table (the entries of its index block)."""
    raw = index_file.read_bytes()
    footer = raw[-48:]
    _, p = tfc._varint(footer, 0, 40)
    _, p = tfc._varint(footer, p, 40)
    offset, p = tfc._varint(footer, p, 40)
    size, _ = tfc._varint(footer, p, 40)
    return len(list(tfc._block_entries(tfc._read_block(raw, offset, size))))


def test_reader_many_blocks_and_prefix_compressed_keys(written):
    folder = written["folders"]["many"]
    assert _data_blocks(folder / "snap-0.index") >= 2  # TF's tables cut blocks at 256 KiB
    names = list(tfc.list_variables(folder))
    assert names == sorted(v[0] for v in written["many"])  # all of them, in the table's order
    last = f"_{_MANY - 1:05d}/kernel"
    got = tfc.read_variables(folder, select=lambda n: n.endswith(last) or "_00000/" in n)
    assert sorted(got) == [written["many"][0][0], written["many"][-1][0]]
    np.testing.assert_array_equal(got[written["many"][-1][0]], [_MANY - 1] * 2)


def test_every_form_of_the_path_finds_the_prefix(written):
    folder = written["folders"]["v2"]
    prefix = folder / "model.ckpt-100"
    forms = [folder, prefix, folder / "checkpoint", folder / "model.ckpt-100.index", folder / "model.ckpt-100.meta",
             folder / "model.ckpt-100.data-00000-of-00001"]
    for form in forms:
        assert tfc.find_prefix(form) == prefix, form
    assert tfc.find_prefix(folder / "nothing") is None
    assert not tfc.is_tf_checkpoint(folder.parent)


def test_checkpoint_file_naming_an_absolute_foreign_path(tmp_path):
    """The official folders' ``checkpoint`` files name paths on the authors' machines."""
    import shutil

    copy = tmp_path / "release_places2_256"
    shutil.copytree(SMALL, copy)
    (copy / "checkpoint").write_text('model_checkpoint_path: "/home/author/model_logs/release/snap-0"\n'
                                     'all_model_checkpoint_paths: "/home/author/model_logs/release/snap-0"\n')
    assert tfc.find_prefix(copy) == copy / "snap-0"
    (copy / "checkpoint").rename(copy / "checkpoint.txt")  # as downloaded from Google Drive
    assert tfc.find_prefix(copy) == copy / "snap-0"
    (copy / "checkpoint.txt").unlink()
    assert tfc.find_prefix(copy) == copy / "snap-0"  # the only .index


def test_corrupt_files_are_refused_naming_the_file(tmp_path):
    import shutil

    expected = {"data": r"checksum mismatch for variable .* in snap-0\.data-00000-of-00001",
                "index": r"not a readable TensorFlow checkpoint index \(snap-0\.index\): block checksum mismatch",
                "truncated_index": r"not a readable TensorFlow checkpoint index \(snap-0\.index\)",
                "truncated_data": r"the data file snap-0\.data-00000-of-00001 is truncated"}
    for what, message in expected.items():
        copy = tmp_path / what
        shutil.copytree(SMALL, copy)
        target = copy / ("snap-0.index" if "index" in what else "snap-0.data-00000-of-00001")
        raw = bytearray(target.read_bytes())
        if what.startswith("truncated"):
            raw = raw[: len(raw) // 2]
        else:
            raw[len(raw) // 3] ^= 0x40
        target.write_bytes(bytes(raw))
        with pytest.raises(ValueError, match=f"weights=.{copy}.: {message}"):
            tfc.read_variables(copy)


@pytest.mark.slow
def test_every_damaged_index_or_data_byte_gives_a_value_error_or_the_same_values(tmp_path):
    """Each single-bit flip and each truncation of the fixture's files: a ValueError naming the path, or
    (a flip in padding or in an unused field) the right values; never another exception."""
    import shutil

    copy = tmp_path / "ckpt"
    shutil.copytree(SMALL, copy)
    want = tfc.read_variables(SMALL)
    for name in ("snap-0.index", "snap-0.data-00000-of-00001"):
        original = (SMALL / name).read_bytes()
        step = 1 if name.endswith(".index") else 3  # every index byte; a third of the data bytes
        variants = [original[:n] for n in range(0, len(original), step * step)]
        variants += [original[:i] + bytes([original[i] ^ (1 << (i % 8))]) + original[i + 1:]
                     for i in range(0, len(original), step)]
        for damaged in variants:
            (copy / name).write_bytes(damaged)
            try:
                got = tfc.read_variables(copy)
            except ValueError as e:
                assert f"weights='{copy}'" in str(e)
            else:
                assert list(got) == list(want)
                for k in want:
                    np.testing.assert_array_equal(got[k], want[k])
        (copy / name).write_bytes(original)


def test_crc32c_known_values():
    assert tfc.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert tfc.crc32c(b"") == 0
    data = np.random.default_rng(1).integers(0, 256, 300_001, dtype=np.uint8).tobytes()
    assert tfc.crc32c(data) == tfc._crc_register(data, 0xFFFFFFFF) ^ 0xFFFFFFFF  # chunked == byte by byte


# ------------------------------------------------------------------------------------------------ networks
@pytest.mark.parametrize("model", ["deepfill_v1", "deepfill_v2"])
def test_official_names_load_to_the_filled_state_dict(written, model):
    import importlib

    spec = importlib.import_module(f"inpaint_plugin.backends.{model}").SPEC
    _, filled, _ = written["v1" if model == "deepfill_v1" else "v2"]
    module = spec.build()
    spec.load(module, written["folders"]["v1" if model == "deepfill_v1" else "v2"])
    state = module.state_dict()
    assert list(state) == list(filled)
    for k, v in state.items():
        torch.testing.assert_close(v, filled[k], rtol=0, atol=0, msg=k)


@pytest.mark.slow
def test_deepfill_v1_tf_checkpoint_reproduces_the_vectors(written, conformance_dir):
    import inpaint_plugin
    from inpaint_plugin import deep
    from inpaint_plugin.backends.deepfill_v1 import SPEC

    _, _, spec = written["v1"]
    z = np.load(conformance_dir / "deepfill_v1" / "case0.npz")
    v = np.load(conformance_dir / "deepfill_v1" / "case0_variant_tfnorm.npz")
    folder = written["folders"]["v1"]
    image = z["image_uint8"].astype(np.float32) / np.float32(255)
    mask = z["mask_uint8"] > 127
    deep.clear_model_cache()
    out = deep.run(SPEC, image, mask, weights=folder, device="cpu")
    expected = (v["x_stage2_tfnorm"][0].transpose(1, 2, 0) + 1) / 2  # the backend's max(||w||, 1e-4) norm
    tol = spec["extra_files"]["case0_variant_tfnorm.npz"]["tolerance"]["x_stage2_tfnorm"]
    assert np.abs(out[mask] - expected[mask]).max() <= tol
    # the public path, given the folder's .index file this time
    got = inpaint_plugin.inpaint(z["image_uint8"], mask, method="deepfill_v1", channel_axis=-1,
                                 weights=str(next(folder.glob("*.index"))), device="cpu")
    np.testing.assert_array_equal(got[~mask], z["image_uint8"][~mask])
    assert np.abs(got[mask].astype(int) - z["output_uint8"][mask].astype(int)).max() <= 1


@pytest.mark.slow
def test_deepfill_v2_tf_checkpoint_reproduces_the_vectors(written, conformance_dir):
    import inpaint_plugin
    from inpaint_plugin import deep
    from inpaint_plugin.backends.deepfill_v2 import SPEC

    _, _, spec = written["v2"]
    z = np.load(conformance_dir / "deepfill_v2" / "case0.npz")
    folder = written["folders"]["v2"]
    image = z["image_uint8"].astype(np.float32) / np.float32(255)
    mask = z["mask_uint8"] > 127
    deep.clear_model_cache()
    out = deep.run(SPEC, image, mask, weights=folder, device="cpu")
    expected = (z["x_stage2"][0].transpose(1, 2, 0) + 1) / 2
    assert np.abs(out[mask] - expected[mask]).max() <= spec["tolerance"]["per_array"]["x_stage2"]
    got = inpaint_plugin.inpaint(z["image_uint8"], mask, method="deepfill_v2", channel_axis=-1,
                                 weights=str(folder), device="cpu")
    np.testing.assert_array_equal(got[~mask], z["image_uint8"][~mask])
    assert np.abs(got[mask].astype(int) - z["output_uint8"][mask].astype(int)).max() <= 1


def test_the_bgr_channels_are_reversed_on_the_image_layers_only(written):
    """The official graph works on BGR: ours on RGB computes the same function."""
    from inpaint_plugin.backends.deepfill_v2 import SPEC

    official, _, _ = written["v2"]
    raw = dict(official)
    module = SPEC.build()
    SPEC.load(module, written["folders"]["v2"])
    state = module.state_dict()
    conv1 = torch.from_numpy(raw["inpaint_net/conv1/kernel"]).permute(3, 2, 0, 1)
    torch.testing.assert_close(state["conv1.conv.weight"][:, :3], conv1[:, [2, 1, 0]], rtol=0, atol=0)
    torch.testing.assert_close(state["conv1.conv.weight"][:, 3:], conv1[:, 3:], rtol=0, atol=0)
    out = torch.from_numpy(raw["inpaint_net/allconv17/bias"])
    torch.testing.assert_close(state["allconv17.conv.bias"], out[[2, 1, 0]], rtol=0, atol=0)
    conv3 = torch.from_numpy(raw["inpaint_net/conv3/kernel"]).permute(3, 2, 0, 1)
    torch.testing.assert_close(state["conv3.conv.weight"], conv3, rtol=0, atol=0)


def test_wrong_network_is_refused_saying_which_it_looks_like(written):
    from inpaint_plugin.backends import deepfill_v1, deepfill_v2, gmcnn

    folders = written["folders"]
    with pytest.raises(ValueError, match=r"looks like DeepFill v2.*method='deepfill_v2'"):
        deepfill_v1.SPEC.load(deepfill_v1.SPEC.build(), folders["v2"])
    with pytest.raises(ValueError, match=r"looks like DeepFill v1.*method='deepfill_v1'"):
        deepfill_v2.SPEC.load(deepfill_v2.SPEC.build(), folders["v1"])
    with pytest.raises(ValueError, match=r"looks like GMCNN, TensorFlow version.*method='gmcnn_tf'"):
        deepfill_v2.SPEC.load(deepfill_v2.SPEC.build(), folders["gmcnn_tf"])
    with pytest.raises(ValueError, match=r"GMCNN, TensorFlow version.*different network.*method='gmcnn_tf'"):
        gmcnn.SPEC.load(gmcnn.SPEC.build(), folders["gmcnn_tf"])
    from inpaint_plugin.backends import gmcnn_tf

    with pytest.raises(ValueError, match=r"looks like DeepFill v2.*method='deepfill_v2'"):
        gmcnn_tf.SPEC.load(gmcnn_tf.SPEC.build(), folders["v2"])
    with pytest.raises(ValueError, match=r"looks like DeepFill v1.*method='deepfill_v1'"):
        gmcnn.SPEC.load(gmcnn.SPEC.build(), folders["v1"])
    with pytest.raises(ValueError, match=r"not a DeepFill v1"):
        deepfill_v1.SPEC.load(deepfill_v1.SPEC.build(), folders["small"])
    from inpaint_plugin.backends import pennet  # a PyTorch-only loader

    with pytest.raises(ValueError, match=r"a TensorFlow checkpoint.*looks like DeepFill v2.*method='deepfill_v2'"):
        pennet.SPEC.load(pennet.SPEC.build(), folders["v2"])


def test_missing_generator_variable_is_named(written):
    from inpaint_plugin.backends.deepfill_v1 import SPEC

    with pytest.raises(ValueError, match=r"missing variables: inpaint_net/pmconv9/bias"):
        SPEC.load(SPEC.build(), written["folders"]["v1_missing"])


# ------------------------------------------------------------------------------------------------ GMCNN (TF)
def test_gmcnn_tf_layer_shapes_are_the_official_ones():
    """Shapes read in tensorflow/net/network.py (cnum 32): conv_7/conv_5/conv_3 partials, b3conv1 is conv_5,
    the *conv13_upsample convs are conv_3, b3conv16 has cnum // 2 filters, the merge takes 128 + 64 + 16."""
    from inpaint_plugin.deep.nets.gmcnn_tf import GMCNNTF

    state = GMCNNTF().state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert shapes["b1conv1.weight"] == (32, 5, 7, 7) and shapes["b2conv1.weight"] == (32, 5, 5, 5)
    assert shapes["b3conv1.weight"] == (32, 5, 5, 5) and shapes["b3conv2_downsample.weight"] == (64, 32, 3, 3)
    assert shapes["b2conv13_upsample.weight"] == (64, 128, 3, 3) and shapes["b2conv14.weight"] == (64, 64, 5, 5)
    assert shapes["b3conv16.weight"] == (16, 32, 3, 3) and shapes["mergeconv17.weight"] == (16, 208, 3, 3)
    assert shapes["mergeconv18.weight"] == (3, 16, 3, 3) and shapes["b1conv10_atrous.weight"] == (128, 128, 7, 7)
    assert len(state) == 2 * (12 + 14 + 16 + 2)  # 12 encoder convs per column, 2 / 4 more in b2 / b3, 2 merge


@pytest.mark.slow
def test_gmcnn_tf_matches_tensorflow_running_the_official_graph(written):
    """Our network on the RGB image = TensorFlow's graph (official names, BGR) on the BGR image."""
    from inpaint_plugin.backends.gmcnn_tf import SPEC

    _, x_bgr, tf_out = written["gmcnn_tf"]
    module = SPEC.build().eval()
    SPEC.load(module, written["folders"]["gmcnn_tf_full"])
    x = torch.from_numpy(x_bgr).permute(0, 3, 1, 2).clone()
    x[:, :3] = x[:, [2, 1, 0]]  # RGB
    with torch.no_grad():
        out = module(x)
    want = torch.from_numpy(tf_out).permute(0, 3, 1, 2)[:, [2, 1, 0]]
    assert float(want.std()) > 0.05 and float((want.abs() == 1).float().mean()) < 0.5  # a non-trivial output
    torch.testing.assert_close(out, want, rtol=0, atol=5e-5)


@pytest.mark.slow
def test_gmcnn_tf_through_inpaint(written):
    import inpaint_plugin
    from inpaint_plugin import deep

    _, x_bgr, tf_out = written["gmcnn_tf"]
    mask = x_bgr[0, :, :, 4] > 0.5
    rgb = x_bgr[0, :, :, 2::-1]
    image = np.round((rgb + 1) * 127.5).astype(np.uint8)  # x was built in [-1, 1]; holes are replaced anyway
    image[0, 0], image[0, 1] = 0, 255  # every channel spans 0..255: the API's input scaling is then x / 255
    deep.clear_model_cache()
    got = inpaint_plugin.inpaint(image, mask, method="gmcnn_tf", channel_axis=-1,
                                 weights=str(written["folders"]["gmcnn_tf_full"]), device="cpu")
    np.testing.assert_array_equal(got[~mask], image[~mask])
    # the network at the same input through the module: the API adds only the scaling and the composite
    from inpaint_plugin.backends.gmcnn_tf import SPEC

    module = SPEC.build().eval()
    SPEC.load(module, written["folders"]["gmcnn_tf_full"])
    with torch.no_grad():
        ref = SPEC.predict(module, torch.from_numpy(image / np.float32(255)).permute(2, 0, 1)[None].float(),
                           torch.from_numpy(mask)[None, None].float())
    ref = np.clip(np.round(ref[0].permute(1, 2, 0).numpy() * 255), 0, 255)
    assert np.abs(got[mask].astype(int) - ref[mask].astype(int)).max() <= 1


@pytest.mark.slow
def test_gmcnn_tf_save_writes_what_tensorflow_reads(written, tmp_path):
    """save() writes the official TF format with our own writer; TensorFlow reads it back."""
    from inpaint_plugin.backends.gmcnn_tf import SPEC

    module = SPEC.build()
    SPEC.load(module, written["folders"]["gmcnn_tf_full"])
    SPEC.save(module, tmp_path / "saved")
    code = ("import sys, numpy as np, tensorflow as tf; r = tf.train.load_checkpoint(sys.argv[1]); "
            "np.savez(sys.argv[2], **{n.replace('/', '|'): r.get_tensor(n) for n in r.get_variable_to_shape_map()})")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "saved"), str(tmp_path / "back.npz")],
                          capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    back = {k.replace("|", "/"): v for k, v in np.load(tmp_path / "back.npz").items()}
    gm_vars, _, _ = written["gmcnn_tf"]
    assert set(back) == {n for n, _ in gm_vars}  # the generator, official names (no training extras)
    for name, value in gm_vars:
        np.testing.assert_array_equal(back[name], value, err_msg=name)
