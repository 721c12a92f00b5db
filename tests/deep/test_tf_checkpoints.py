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
            for i, (name, dtype) in enumerate(job["variables"]):
                value = tf.constant(arrays[f"a{i}"])
                if dtype == "bfloat16":
                    value = tf.cast(value, tf.bfloat16)
                tf.compat.v1.get_variable(name, initializer=value)
            saver = tf.compat.v1.train.Saver()
            with tf.compat.v1.Session() as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                saver.save(sess, os.path.join(job["folder"], job.get("name", "snap")), global_step=job.get("step"))
        print("wrote", job["folder"], flush=True)
    """
)


def _write_with_tensorflow(jobs, tmp_path):
    """``jobs``: dicts ``folder``, ``variables`` ``[(name, array)]`` (bfloat16 given as float32 with the
    name in ``bfloat16``), optional ``name``/``step``. One TF subprocess writes them all."""
    spec = []
    for n, job in enumerate(jobs):
        arrays = {f"a{i}": np.asarray(a) for i, (_, a, *_) in enumerate(job["variables"])}
        npz = tmp_path / f"job{n}.npz"
        np.savez(npz, **arrays)
        spec.append({"folder": str(job["folder"]), "arrays": str(npz), "name": job.get("name", "snap"),
                     "step": job.get("step", 0), "raw": job.get("raw", False),
                     "variables": [(v[0], v[2] if len(v) > 2 else str(np.asarray(v[1]).dtype)) for v in job["variables"]]})
    jobs_file = tmp_path / "jobs.json"
    jobs_file.write_text(json.dumps(spec))
    script = tmp_path / "write_tf.py"
    script.write_text(_WRITER)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="-1", OMP_NUM_THREADS="1", TF_NUM_INTEROP_THREADS="1",
               TF_NUM_INTRAOP_THREADS="1")
    proc = subprocess.run([sys.executable, str(script), str(jobs_file)], capture_output=True, text=True, env=env,
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
    folders = {k: tmp / k for k in ("v1", "v2", "v1_missing", "small", "many", "gmcnn_tf")}
    _write_with_tensorflow([
        {"folder": folders["v1"], "variables": v1 + _training_extras(v1), "step": 0},
        {"folder": folders["v2"], "variables": v2 + _training_extras(v2), "name": "model.ckpt", "step": 100},
        {"folder": folders["v1_missing"], "variables": [v for v in v1 if v[0] != "inpaint_net/pmconv9/bias"]},
        {"folder": folders["small"], "variables": small},
        {"folder": folders["many"], "variables": many, "raw": True, "name": "snap-0"},
        {"folder": folders["gmcnn_tf"], "variables": gmcnn_like},
    ], tmp)
    return dict(folders=folders, v1=(v1, v1_filled, v1_spec), v2=(v2, v2_filled, v2_spec), small=small, many=many)


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
    with pytest.raises(ValueError, match=r"looks like GMCNN, TensorFlow version"):
        deepfill_v2.SPEC.load(deepfill_v2.SPEC.build(), folders["gmcnn_tf"])
    with pytest.raises(ValueError, match=r"GMCNN, TensorFlow version.*different network"):
        gmcnn.SPEC.load(gmcnn.SPEC.build(), folders["gmcnn_tf"])
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
