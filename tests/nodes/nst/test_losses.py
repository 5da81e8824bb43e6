"""Style transfer losses against values computed by hand on tiny tensors."""

from __future__ import annotations

import math

import pytest
from support.extras import import_extra

torch = import_extra("nst", "torch")

from nodes.nst._keras_adam import KerasAdam  # noqa: E402
from nodes.nst._losses import LossTerm, gram, term_names, total_variation  # noqa: E402
from nodes.nst._schedules import parse_schedule  # noqa: E402


def test_gram_is_divided_by_the_number_of_locations():
    # 2 channels over 2x2 locations: a = [1,2,3,4], b = [0,1,0,1].
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
    g = gram(f)
    # a.a = 30, a.b = 6, b.b = 2; divided by H*W = 4.
    assert torch.allclose(g, torch.tensor([[7.5, 1.5], [1.5, 0.5]]))


def test_gram_gradient_matches_autograd_of_the_plain_formula():
    f = torch.randn(1, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randn(4, 4, dtype=torch.float64)
    # gram() computes in float32; compare against the textbook formula in float32 too.
    (mine,) = torch.autograd.grad(((gram(f) - target.float()) ** 2).sum(), f)
    f32 = f.detach().float().reshape(4, 15).requires_grad_(True)
    (plain,) = torch.autograd.grad((((f32 @ f32.t()) / 15 - target.float()) ** 2).sum(), f32)
    assert torch.allclose(mine.reshape(4, 15).float(), plain, rtol=1e-5, atol=1e-6)


def test_gram_takes_channels_last_features_as_they_are():
    f = torch.randn(1, 4, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    nhwc = f.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    nchw = f.clone().requires_grad_(True)
    # Gram sums in float32 in either layout's order: equal to rounding.
    assert torch.allclose(gram(nhwc), gram(nchw), atol=1e-6)
    target = torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
    (g_nhwc,) = torch.autograd.grad(((gram(nhwc) - target) ** 2).sum(), nhwc)
    (g_nchw,) = torch.autograd.grad(((gram(nchw) - target) ** 2).sum(), nchw)
    assert torch.allclose(g_nhwc, g_nchw, atol=1e-5)
    # The gradient keeps the features' layout: no reorder on the way back into the network.
    assert g_nhwc.is_contiguous(memory_format=torch.channels_last)


def test_gram_of_bfloat16_features_is_float32_with_a_bfloat16_gradient():
    f = torch.randn(1, 8, 6, 6).bfloat16().requires_grad_(True)
    g = gram(f)
    assert g.dtype == torch.float32
    ref = gram(f.detach().float())
    assert torch.allclose(g, ref)
    (grad,) = torch.autograd.grad(g.sum(), f)
    assert grad.dtype == torch.bfloat16
    # d(sum G)/dF = 2 * (column sums broadcast) F / N = 2 * 1 1^T F / N
    expected = (2 * torch.ones(8, 8) @ f.detach().float().reshape(8, 36) / 36).reshape(1, 8, 6, 6)
    assert torch.allclose(grad.float(), expected, rtol=2e-2, atol=2e-2)


def test_total_variation_is_the_summed_absolute_differences():
    img = torch.tensor([[[[0.0, 1.0], [0.5, 0.25]]]])  # 1 channel, 2x2
    # x: |1-0| + |0.25-0.5| = 1.25; y: |0.5-0| + |0.25-1| = 1.25
    assert total_variation(img).item() == pytest.approx(2.5)


def test_tv_term_applies_its_weight():
    img = torch.tensor([[[[0.0, 1.0], [0.5, 0.25]]]]).repeat(1, 3, 1, 1)
    assert LossTerm("tv", 30.0).value({}, img, {}).item() == pytest.approx(30 * 3 * 2.5)


def test_style_term_is_the_weighted_mean_over_layers_of_the_gram_mse():
    f1 = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])  # gram [[7.5,1.5],[1.5,.5]]
    f2 = torch.tensor([[[[2.0]]]])  # gram [[4]]
    targets = {"a": torch.zeros(2, 2), "b": torch.tensor([[1.0]])}
    term = LossTerm("style", 0.01, ["a", "b"])
    got = term.value({"a": f1, "b": f2}, None, targets).item()
    mse_a = (7.5**2 + 1.5**2 + 1.5**2 + 0.5**2) / 4  # 15.25
    mse_b = (4 - 1) ** 2  # 9
    assert got == pytest.approx(0.01 * (mse_a + mse_b) / 2)


def test_content_term_is_the_weighted_feature_mse():
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.tensor([[[[1.0, 0.0], [3.0, 0.0]]]])
    term = LossTerm("content", 1e4, ["c"])
    assert term.value({"c": f}, None, {"c": target}).item() == pytest.approx(1e4 * (4 + 16) / 4)


def test_keras_adam_first_step_matches_the_keras_formula():
    p = torch.zeros(3)
    g = torch.tensor([1.0, -2.0, 0.5])
    opt = KerasAdam(p, lr=0.02, beta1=0.99, beta2=0.999, eps=0.1)
    opt.step(g)
    alpha = 0.02 * math.sqrt(1 - 0.999) / (1 - 0.99)
    m, v = 0.01 * g, 0.001 * g * g
    assert torch.allclose(p, -alpha * m / (v.sqrt() + 0.1))


def test_schedules_and_term_names():
    assert parse_schedule("", (512, 400), 10) == [((512, 400), 10)]
    assert parse_schedule("128:5, full:3", (512, 400), 99) == [((128, 100), 5), ((512, 400), 3)]
    with pytest.raises(ValueError):
        parse_schedule("128", (512, 512), 1)
    kinds = [LossTerm("style", 1), LossTerm("style", 1), LossTerm("tv", 1)]
    assert term_names(kinds) == ["style_1", "style_2", "tv"]


def test_smoothed_tv_is_close_to_exact_and_reported_exactly():
    from nodes.nst._objective import Objective

    img = torch.tensor([[[[0.0, 1.0], [0.5, 0.25]]]])
    # sqrt(d^2 + s^2) - s for d in (1, .25, .5, .75) with s = 0.1
    s = 0.1
    want = sum(math.sqrt(d * d + s * s) - s for d in (1.0, 0.25, 0.5, 0.75))
    assert total_variation(img, s).item() == pytest.approx(want, rel=1e-5)
    assert abs(total_variation(img, s).item() - 2.5) <= 4 * s
    term = LossTerm("tv", 30.0)
    objective = Objective([term], (2, 2), "cpu", tv_smoothing=s)
    total, report = objective(img)
    assert total.item() == pytest.approx(30 * want, rel=1e-5)
    assert report == {"tv": pytest.approx(30 * 2.5)}


def test_image_tensor_is_a_contiguous_copy_the_optimizers_may_write_into():
    import numpy as np

    from nodes.nst._tensors import image_tensor

    img = np.random.default_rng(0).random((5, 7, 3), dtype=np.float32)
    x = image_tensor(img, "cpu")
    assert x.shape == (1, 3, 5, 7) and x.is_contiguous()
    assert torch.equal(x[0].permute(1, 2, 0), torch.from_numpy(img))
    x.add_(1.0)
    assert img.max() < 1.0  # the IMAGE value (maybe cached) is untouched


def test_precision_auto_picks_bfloat16_only_where_it_is_fast(monkeypatch):
    from nodes.nst import _precision

    monkeypatch.setattr(_precision, "fast_bfloat16", lambda device: device == "cuda")
    assert _precision.resolve_precision("auto", "cuda") == ("bfloat16", "")
    assert _precision.resolve_precision("auto", "cpu") == ("float32", "")
    assert _precision.resolve_precision("float32", "cuda") == ("float32", "")
    precision, note = _precision.resolve_precision("bfloat16", "cpu")
    assert precision == "bfloat16" and "emulated" in note and "auto" in note
    assert _precision.resolve_precision("bfloat16", "cuda") == ("bfloat16", "")


def test_the_cpu_probe_answers_without_raising():
    from nodes.nst._precision import fast_bfloat16

    assert fast_bfloat16("cpu") in (True, False)
    assert fast_bfloat16("mps") is False
