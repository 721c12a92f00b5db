"""LaMa's folded inference path (``FFCResNetGenerator.infer``): the same function as the module
forward (BatchNorms folded, parts padded once), and with ``holes_only`` exact at every hole pixel
while the decoder skips the parts of the image that reach no hole."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inpaint_plugin.deep.nets.lama import FFCResNetGenerator, _decoder_support, _hole_regions  # noqa: E402


def _randomised(net, seed=0):
    """``net`` in eval mode with random BatchNorm statistics and affine terms (fresh ones are an
    identity, which would hide a wrong folding)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def small():
    """big-lama's layout with fewer blocks and channels (the same code paths, seconds faster)."""
    torch.manual_seed(0)
    return _randomised(FFCResNetGenerator(ngf=16, n_blocks=2))


def _input(b, h, w, holes, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 4, h, w, generator=gen)
    m = torch.zeros(b, 1, h, w)
    for item, rows, cols in holes:
        m[item, 0, rows, cols] = 1
    x[:, 3:] = m
    x[:, :3] *= 1 - m
    return x, m.expand(b, 3, h, w) > 0


@pytest.mark.parametrize("shape", [(1, 64, 64), (2, 48, 80), (1, 16, 40), (1, 128, 96)])
def test_infer_is_the_eval_forward(small, shape):
    b, h, w = shape
    x, _ = _input(b, h, w, [(0, slice(5, 12), slice(3, 30))])
    with torch.inference_mode():
        ref = small(x)
        out = small.infer(x)
    assert out.shape == ref.shape and out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=0, atol=2e-6)


HOLES = {
    "interior dots": [(0, 40, 50), (0, 70, slice(10, 13))],
    "every border and corner": [(0, 0, 0), (0, -1, -1), (0, slice(None), 0), (0, -2, slice(30, 60)), (0, 3, -1)],
    "a stroke and a block": [(0, slice(20, 24), slice(0, 90)), (0, slice(80, 100), slice(60, 76))],
}


@pytest.mark.parametrize("case", sorted(HOLES))
def test_holes_only_is_exact_at_the_holes_and_skips_the_rest(small, case):
    h, w = 112, 96
    x, hole = _input(1, h, w, HOLES[case])
    with torch.inference_mode():
        full = small(x)
        part = small.infer(x, holes_only=True)
    torch.testing.assert_close(part[hole], full[hole], rtol=0, atol=2e-6)
    # where nothing was computed the result is the input image, exactly (a sigmoid output never is)
    skipped = (part == x[:, :3]).all(dim=1)
    assert not skipped[hole[:, 0]].any()
    if case == "interior dots":
        assert skipped.float().mean() > 0.5  # two small holes: most of the decoder is skipped
        assert skipped[0, :8, :].all() and skipped[0, :, -8:].all()  # far from both holes


def test_holes_only_batch_uses_the_union_of_the_items_holes(small):
    x, hole = _input(2, 64, 64, [(0, 5, 5), (1, 50, slice(40, 60))])
    with torch.inference_mode():
        full = small(x)
        part = small.infer(x, holes_only=True)
    torch.testing.assert_close(part[hole], full[hole], rtol=0, atol=2e-6)
    for item in (0, 1):  # each item's output is computed at the other's holes too
        assert not (part[item, :, 50, 45] == x[item, :3, 50, 45]).all()
        assert not (part[item, :, 5, 5] == x[item, :3, 5, 5]).all()


def test_folded_weights_follow_the_parameters(small):
    """The folded weights are cached: a load_state_dict, a dtype change or an in-place update must be
    seen by the next call (no stale cache)."""
    net = _randomised(FFCResNetGenerator(ngf=16, n_blocks=1), seed=2)
    other = _randomised(FFCResNetGenerator(ngf=16, n_blocks=1), seed=3)
    x, _ = _input(1, 32, 32, [(0, 4, 4)])
    with torch.inference_mode():
        first = net.infer(x)
        assert torch.equal(net.infer(x), first)  # cached: the same values
    net.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(net.infer(x), other(x), rtol=0, atol=2e-6)
        net.model[1].bn_l.running_mean.add_(0.5)  # an in-place change of one buffer
        torch.testing.assert_close(net.infer(x), net(x), rtol=0, atol=2e-6)
    net64 = net.double()
    with torch.no_grad():
        out = net64.infer(x.double())
        assert out.dtype == torch.float64
        # (the Fourier units run their FFTs in float32 in both paths, as the module does)
        torch.testing.assert_close(out, net64(x.double()), rtol=0, atol=1e-6)


def test_infer_needs_eval_mode_and_never_records_gradients(small):
    x, _ = _input(1, 32, 32, [(0, 4, 4)])
    out = small.infer(x.requires_grad_())  # grad mode on: infer still runs without a graph
    assert not out.requires_grad
    small.train()
    try:
        with pytest.raises(RuntimeError, match=r"eval\(\)"):
            small.infer(x)
    finally:
        small.eval()
    with pytest.raises(ValueError, match="multiples of 8"):
        small.infer(torch.zeros(1, 4, 20, 24))


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_decoder_support_is_what_the_layers_need(levels):
    """Brute force: perturbing one input row of a decoder (``levels`` transposed convolutions, then
    reflection pad 3 and a 7x7 convolution) changes exactly rows whose support holds it."""
    gen = torch.Generator().manual_seed(0)
    size = 12
    ups = [torch.randn(2, 2, 3, 3, generator=gen) for _ in range(levels)]
    head = torch.randn(1, 2, 7, 7, generator=gen)

    def decode(z):
        for wt in ups:
            z = torch.nn.functional.conv_transpose2d(z, wt, stride=2, padding=1, output_padding=1)
        return torch.nn.functional.conv2d(torch.nn.functional.pad(z, (3, 3, 3, 3), mode="reflect"), head)

    z = torch.randn(1, 2, size, 4, generator=gen)
    base = decode(z)
    cell = 2 ** levels
    for row in range(size):
        bumped = z.clone()
        bumped[:, :, row] += 1
        changed = (decode(bumped) - base).abs().amax(dim=(0, 1, 3)) > 1e-9  # per output pixel row
        for lo in range(size):
            a, b = _decoder_support(lo, lo + 1, levels, size)
            if changed[lo * cell:(lo + 1) * cell].any():
                assert a <= row < b, (levels, lo, row)


def test_hole_regions_cover_every_hole_cell():
    rng = np.random.default_rng(0)
    for _ in range(50):
        cells = torch.from_numpy(rng.random((int(rng.integers(2, 40)), int(rng.integers(2, 40)))) < 0.05)
        covered = torch.zeros_like(cells)
        for r0, r1, c0, c1 in _hole_regions(cells):
            assert 0 <= r0 < r1 <= cells.shape[0] and 0 <= c0 < c1 <= cells.shape[1]
            covered[r0:r1, c0:c1] = True
        assert covered[cells].all()
    assert _hole_regions(torch.zeros(5, 5, dtype=torch.bool)) == []


def test_steps_are_reported_and_a_raising_step_stops_the_forward(small):
    x, _ = _input(1, 32, 32, [(0, 4, 4)])
    for holes_only in (False, True):
        seen = []
        with torch.inference_mode():
            small.infer(x, holes_only=holes_only, step=lambda d, t: seen.append((d, t)))
        assert seen == [(k, 4) for k in range(1, 5)]  # encoder, 2 blocks, decoder

    class Stop(Exception):
        pass

    def stop(done, total):
        seen.append(done)
        if done == 2:
            raise Stop

    seen = []
    with pytest.raises(Stop), torch.inference_mode():
        small.infer(x, holes_only=True, step=stop)
    assert seen == [1, 2]
