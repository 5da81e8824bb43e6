"""The TV proximal step: exact on cases with a closed form, optimal against perturbations,
inside the box; and AdamOptimize's proximal route on the real offline VGG16 weights."""

from __future__ import annotations

import json

import pytest
from support.extras import import_extra

torch = import_extra("nst", "torch")

from nodes.nst._losses import total_variation  # noqa: E402
from nodes.nst._tv_prox import TVProx  # noqa: E402


def _prox_objective(x, y, scale, weight):
    return float(((x - y) ** 2 / scale).sum() / 2 + weight * total_variation(x))


def test_two_pixels_meet_in_the_middle_or_shrink_by_the_weight():
    # min (x1-a)^2/2 + (x2-b)^2/2 + w|x1-x2|: equal at the mean when |a-b| <= 2w, else each moves w.
    prox = TVProx(weight=0.1, iterations=300)
    close = prox(torch.tensor([[[[0.40, 0.55]]]]), torch.ones(1, 1, 1, 2))
    assert torch.allclose(close, torch.tensor([[[[0.475, 0.475]]]]), atol=1e-4)
    far = TVProx(weight=0.1, iterations=300)(torch.tensor([[[[0.2, 0.9]]]]), torch.ones(1, 1, 1, 2))
    assert torch.allclose(far, torch.tensor([[[[0.3, 0.8]]]]), atol=1e-4)


def test_the_result_stays_in_the_box_and_a_flat_image_stays_put():
    prox = TVProx(weight=0.05)
    out = prox(torch.tensor([[[[-0.5, 1.7], [0.3, 0.3]]]]), torch.ones(1, 1, 2, 2))
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    flat = torch.full((1, 3, 5, 7), 0.25)
    assert torch.allclose(TVProx(weight=2.0)(flat, torch.ones_like(flat)), flat)
    # A zero step size (an lr scheduled down to 0) moves nothing but still clips to the box.
    still = TVProx(weight=0.05)(torch.tensor([[[[-0.5, 0.7], [0.3, 0.2]]]]), torch.zeros(1, 1, 2, 2))
    assert torch.equal(still, torch.tensor([[[[0.0, 0.7], [0.3, 0.2]]]]))


def test_the_weighted_prox_beats_every_nearby_image():
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(1, 3, 9, 11, generator=gen) * 1.2 - 0.1
    scale = 0.02 + torch.rand(1, 3, 9, 11, generator=gen) * 0.1  # Adam's per-pixel step sizes
    x = TVProx(weight=0.7, iterations=2000)(y, scale)
    best = _prox_objective(x, y, scale, 0.7)
    for _ in range(200):
        other = (x + 0.01 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
        assert best <= _prox_objective(other, y, scale, 0.7) + 1e-5
    # Warm-started from its last dual, a short run lands on the same point.
    again = TVProx(weight=0.7, iterations=2000)
    again(y, scale)
    again.iterations = 5
    assert torch.allclose(again(y, scale), x, atol=1e-3)


def test_the_dual_restarts_when_the_image_size_changes():
    prox = TVProx(weight=0.1)
    prox(torch.rand(1, 3, 6, 6), torch.ones(1, 3, 6, 6))
    out = prox(torch.rand(1, 3, 4, 8), torch.ones(1, 3, 4, 8))
    assert out.shape == (1, 3, 4, 8)


def test_the_evened_metric_takes_the_square_root_of_the_spread_of_adams_step_sizes():
    from nodes.nst._tv_prox import adams_share, tv_step_sizes

    scale = torch.tensor([[[[0.01, 0.04], [0.09, 0.16]]]])
    out = tv_step_sizes(scale.clone(), adams_share("evened", 0.9))
    assert float(out.max() / out.min()) == pytest.approx(4.0)  # from 16x to 4x
    assert torch.allclose(out, (scale * 0.075).sqrt())  # each pixel's step times the mean's


def test_evened_then_adam_turns_into_adams_own_metric_over_the_second_half():
    from nodes.nst._tv_prox import adams_share, tv_step_sizes

    scale = torch.tensor([[[[0.01, 0.04], [0.09, 0.16]]]])
    shares = [adams_share("evened_then_adam", p) for p in (0.0, 0.5, 0.75, 1.0)]
    assert shares == [0.5, 0.5, 0.75, 1.0]
    late = tv_step_sizes(scale.clone(), shares[2])
    assert float(late.max() / late.min()) == pytest.approx(16**0.75)
    assert torch.allclose(tv_step_sizes(scale.clone(), 1.0), scale)


def test_proximal_adam_lowers_the_objective_and_the_tv_below_the_gradient_route():
    from support.nst_graphs import history, run, tiny

    gradient, _ = run(tiny(steps=8, lr=0.04, beta1=0.9, preview_every=0))
    proximal, _ = run(tiny(steps=8, lr=0.04, beta1=0.9, tv="proximal", preview_every=0))
    assert proximal.status == "succeeded", proximal.error
    g, p = history(gradient), history(proximal)
    # The same start, then the TV term (still reported exactly) is held lower all the way.
    assert p["total"][0] == pytest.approx(g["total"][0], rel=1e-6)
    assert p["total"][-1] < 0.7 * p["total"][0]
    assert p["terms"]["tv"][-1] < g["terms"]["tv"][-1]
    assert p["total"][3] == pytest.approx(sum(v[3] for v in p["terms"].values()), rel=1e-4)
    assert json.loads(proximal.values["opt"]["info"])["route"] == "adam, proximal tv (evened metric)"


def test_evened_then_adam_runs_as_evened_through_the_first_half_only():
    from support.nst_graphs import history, run, tiny

    evened, _ = run(tiny(steps=8, lr=0.04, beta1=0.9, tv="proximal", preview_every=0))
    ramped, _ = run(tiny(steps=8, lr=0.04, beta1=0.9, tv="proximal", tv_metric="evened_then_adam", preview_every=0))
    assert ramped.status == "succeeded", ramped.error
    e, r = history(evened)["total"], history(ramped)["total"]
    # Steps 0-3 (progress <= 3/7) take the same TV steps; after that the metrics part.
    assert r[:5] == pytest.approx(e[:5], rel=1e-6)
    assert r[-1] != pytest.approx(e[-1], rel=1e-6)
    assert json.loads(ramped.values["opt"]["info"])["route"] == "adam, proximal tv (evened_then_adam metric)"


@pytest.mark.parametrize("name, value", [("tv_metric", "evened_then_adam"), ("tv_iterations", 5)])
def test_proximal_step_settings_without_the_proximal_step_are_refused_naming_the_input(name, value):
    from support.nst_graphs import tiny

    from nodeflow.errors import GraphInvalid
    from nodeflow.graph import parse_graph
    from nodeflow.plan import build_plan

    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph(tiny(**{name: value})))
    assert ("opt", name) in {(i.node, i.input) for i in info.value.issues}


def test_tv_iterations_reach_the_proximal_step():
    from support.nst_graphs import history, run, tiny

    runs = [run(tiny(steps=4, lr=0.04, beta1=0.9, tv="proximal", tv_iterations=n, preview_every=0))[0] for n in (1, 20)]
    assert all(r.status == "succeeded" for r in runs), [r.error for r in runs]
    one, twenty = (history(r)["total"] for r in runs)
    assert one[0] == pytest.approx(twenty[0], rel=1e-6)  # the same start
    assert one[-1] != pytest.approx(twenty[-1], rel=1e-6)  # a different TV step after it


def test_proximal_tv_on_tensorflow_terms_is_refused_naming_the_input():
    from nodeflow.node import InputError
    from nodes.nst.adam_optimize import AdamOptimize

    with pytest.raises(InputError) as info:
        AdamOptimize.check_framework("tensorflow", {"tv": "proximal"})
    assert info.value.input == "tv"
    AdamOptimize.check_framework("torch", {"tv": "proximal"})


def test_an_unknown_tv_mode_is_refused_naming_the_node_and_input():
    from support.nst_graphs import tiny

    from nodeflow.errors import GraphInvalid
    from nodeflow.graph import parse_graph
    from nodeflow.plan import build_plan

    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph(tiny(tv="smooth")))
    assert ("opt", "tv") in {(i.node, i.input) for i in info.value.issues}


@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (1, 3, 1, 6), (1, 3, 6, 1), (1, 1, 2, 2)])
def test_adjoint_is_the_transpose_of_the_differences(shape):
    # <D x, (p, q)> = <x, D^T (p, q)> for every x, p, q: the in-place adjoint is exact,
    # edges and one-pixel-wide images included.
    from nodes.nst._losses import differences
    from nodes.nst._tv_prox import _adjoint

    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    dx, dy = differences(x)
    p, q = torch.randn_like(dx), torch.randn_like(dy)
    lhs = (dx * p).sum() + (dy * q).sum()
    rhs = (x * _adjoint(p, q, torch.full_like(x, float("nan")))).sum()
    assert torch.isclose(lhs, rhs, rtol=1e-12, atol=1e-12)
