"""The style-transfer step's hot operations as autograd functions that fuse what eager torch
runs as separate passes over the feature maps (at 512 px, block1's maps are 64 MB each in
float32, and these passes are memory-bound):
- conv_relu: the convolution with its ReLU fused in (oneDNN on CPUs); the backward pass takes
  the input's gradient only, the weights being frozen.
- gram_tap: a layer's Gram matrix taken off the forward pass; on the way back, its gradient
  is added to the one coming from deeper layers in the same matmul (addmm), not in a pass of
  its own.
- gram_matrix: G = F^T F / N in float32, converting bfloat16 features chunk by chunk (in
  cache) instead of the whole map at once.
bench/nst.py's step table measures the step they make up. torch is imported inside functions."""

from __future__ import annotations

import functools

# Rows of a bfloat16 feature map converted to float32 at a time (1 MB at 64 channels).
GRAM_CHUNK_ROWS = 8192


def gram_matrix(f):
    """N x C features -> float32 C x C F^T F / N."""
    import torch

    if f.dtype == torch.float32:
        return (f.t() @ f) / f.shape[0]
    g = torch.zeros(f.shape[1], f.shape[1], device=f.device)
    for rows in f.split(GRAM_CHUNK_ROWS):
        r = rows.float()
        g.addmm_(r.t(), r)
    return g / f.shape[0]


def locations(x):
    """1 x C x H x W -> the H*W x C matrix of its locations; a view for channels-last maps."""
    _, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(h * w, c)


def from_locations(m, shape):
    """The inverse of locations: an H*W x C matrix -> a channels-last 1 x C x H x W map."""
    _, c, h, w = shape
    return m.reshape(1, h, w, c).permute(0, 3, 1, 2)


def gram_gradient(f, grad_gram, into=None):
    """dL/dF for G = F^T F / N given dL/dG, added to `into` when given (in the same addmm), in
    the features' dtype. Autograd would spend two matmuls; G is symmetric, so
    dF = F (dG + dG^T) / N takes one."""
    import torch

    sym = ((grad_gram + grad_gram.t()) / f.shape[0]).to(f.dtype)
    return f @ sym if into is None else torch.addmm(into, f, sym)


def conv_relu(x, conv):
    """relu(conv(x)) for a frozen Conv2d (3x3, stride 1, padding 1)."""
    import torch

    if x.device.type == "cpu" and _fused_conv_available():
        return _conv_relu_function().apply(x, conv.weight, conv.bias)
    return torch.relu(conv(x))


def gram_tap(x):
    """(x, its Gram matrix): pass the first on to the next layer, compare the second."""
    return _gram_tap_function().apply(x)


@functools.cache
def _fused_conv_available() -> bool:
    import torch

    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


@functools.cache
def _conv_relu_function():
    import torch

    class ConvReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, bias):
            y = torch.ops.mkldnn._convolution_pointwise(x, weight, bias, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
            ctx.save_for_backward(x, weight, y)
            return y

        @staticmethod
        def backward(ctx, grad):
            x, weight, y = ctx.saved_tensors
            grad = torch.ops.aten.threshold_backward(grad, y, 0)
            dx, _, _ = torch.ops.aten.convolution_backward(
                grad,
                x,
                weight,
                [weight.shape[0]],
                [1, 1],
                [1, 1],
                [1, 1],
                False,
                [0, 0],
                1,
                [ctx.needs_input_grad[0], False, False],
            )
            return dx, None, None

    return ConvReLU


@functools.cache
def _gram_tap_function():
    import torch

    class GramTap(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)  # an unused output's gradient stays None, not zeros
            ctx.save_for_backward(x)
            return x.view_as(x), gram_matrix(locations(x))

        @staticmethod
        def backward(ctx, grad_x, grad_gram):
            (x,) = ctx.saved_tensors
            if grad_gram is None:
                return grad_x
            into = None if grad_x is None else locations(grad_x)
            return from_locations(gram_gradient(locations(x), grad_gram, into), x.shape)

    return GramTap
