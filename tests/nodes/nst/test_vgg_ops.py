"""The fused style-transfer operations against the plain torch formulas they replace."""

from __future__ import annotations

from support.extras import import_extra

torch = import_extra("nst", "torch")

from nodes.nst import _vgg_net  # noqa: E402
from nodes.nst._vgg_ops import conv_relu, gram_matrix, gram_tap  # noqa: E402


def _channels_last(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).contiguous(memory_format=torch.channels_last)


def test_conv_relu_matches_relu_of_conv_with_the_same_input_gradient():
    conv = torch.nn.Conv2d(8, 16, 3, padding=1).requires_grad_(False).to(memory_format=torch.channels_last)
    x = _channels_last(1, 8, 12, 10).requires_grad_(True)
    upstream = _channels_last(1, 16, 12, 10, seed=1)
    fused = conv_relu(x, conv)
    plain = torch.relu(conv(x))
    assert torch.allclose(fused, plain, atol=1e-5)
    assert (fused == 0).any()  # the ReLU did cut something
    (g_fused,) = torch.autograd.grad(fused, x, upstream)
    (g_plain,) = torch.autograd.grad(plain, x, upstream)
    assert torch.allclose(g_fused, g_plain, atol=1e-4)


def test_gram_tap_adds_the_gram_gradient_to_the_one_from_deeper_layers():
    x = _channels_last(1, 6, 5, 7).requires_grad_(True)
    target = torch.randn(6, 6, generator=torch.Generator().manual_seed(2))
    deeper = torch.randn(1, 6, 5, 7, generator=torch.Generator().manual_seed(3))

    def loss(passed, g):
        return ((g - target) ** 2).sum() + (passed * deeper).sum()

    passed, g = gram_tap(x)
    (mine,) = torch.autograd.grad(loss(passed, g), x)
    f = x.permute(0, 2, 3, 1).reshape(35, 6)
    (plain,) = torch.autograd.grad(loss(x, f.t() @ f / 35), x)
    assert torch.allclose(mine, plain, atol=1e-4)
    assert mine.is_contiguous(memory_format=torch.channels_last)
    # Only the Gram used downstream: its gradient alone.
    _, g = gram_tap(x)
    (only,) = torch.autograd.grad(((g - target) ** 2).sum(), x)
    (plain,) = torch.autograd.grad(((f.t() @ f / 35 - target) ** 2).sum(), x)
    assert torch.allclose(only, plain, atol=1e-4)


def test_gram_of_bfloat16_features_sums_in_float32_across_chunks(monkeypatch):
    from nodes.nst import _vgg_ops

    monkeypatch.setattr(_vgg_ops, "GRAM_CHUNK_ROWS", 7)  # several chunks and a ragged last one
    f = torch.rand(50, 4, generator=torch.Generator().manual_seed(4)).bfloat16()
    g = gram_matrix(f)
    assert g.dtype == torch.float32
    exact = (f.double().t() @ f.double()) / 50
    assert torch.allclose(g.double(), exact, rtol=1e-6)


def test_bfloat16_features_come_from_a_bfloat16_copy_of_the_weights_kept_once():
    gen = torch.Generator().manual_seed(5)
    state = {
        f"{n}.{p}": torch.randn(shape if p == "weight" else shape[:1], generator=gen) * 0.1
        for n, (cout, cin) in _vgg_net.conv_shapes("vgg16").items()
        for p, shape in (("weight", (cout, cin, 3, 3)), ("bias", (cout,)))
    }
    vgg = _vgg_net.VGG(_vgg_net.SOURCES["vgg16"], _vgg_net.build_stack("vgg16", state), "test", "cpu", "vgg16")
    image = torch.rand(1, 3, 32, 32, generator=gen)
    layers, grams = ["block2_conv2"], ["block1_conv1", "block2_conv1"]
    full = vgg.features(image, layers, grams)
    half = vgg.features(image, layers, grams, "bfloat16")
    assert half["block2_conv2"].dtype == torch.bfloat16
    assert vgg.module.convs["block1_conv1"].weight.dtype == torch.float32  # the original untouched
    for key in ["block2_conv2"] + [_vgg_net.gram_key(n) for n in grams]:
        a, b = full[key].float(), half[key].float()
        assert (a - b).norm() / a.norm() < 2e-2, key
    assert vgg._bfloat16_module() is vgg._bfloat16_module()
