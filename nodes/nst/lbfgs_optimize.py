"""LBFGSOptimize: optimize an image against loss terms with L-BFGS (a faster route)."""

from __future__ import annotations

from typing import Literal

from nodeflow.node import Input

from ._optimizer_node import OptimizerNode, optimizer_inputs


class LBFGSOptimize(OptimizerNode):
    """Optimize the pixels of an image against up to 6 loss terms with L-BFGS and a
    strong-Wolfe line search; the loss is taken on the image clipped to [0, 1]. `steps`
    counts loss evaluations (one VGG forward and backward each), the same unit as Adam's
    steps. Fast early on small images; on large ones it stalls on the TV term: there
    AdamOptimize with `tv: proximal` gets further for the same number of evaluations."""

    # 2: Gram backward in the features' own dtype (bfloat16 results change slightly).
    # 3: L-BFGS gets the gradient at the clipped image as is; the Adam finish.
    # 4: channels-last VGG (float rounding differs); the pyramid input.
    version = "4"
    route = "lbfgs"

    Inputs = optimizer_inputs(
        "LBFGSOptimizeInputs",
        steps=(int, Input(300, ge=1, le=100000, description="loss evaluations")),
        history_size=(int, Input(50, ge=1, le=1000, description="L-BFGS memory (pairs kept)")),
        tv_smoothing=(
            float,
            Input(
                0.0,
                ge=0,
                le=1,
                description="differentiate TV terms as sqrt(d^2+s^2)-s "
                "(smooth at 0, what L-BFGS needs); the history "
                "still reports the exact objective",
            ),
        ),
        pyramid=(
            int,
            Input(
                1,
                ge=1,
                le=8,
                description="optimize the image as a pyramid of this many levels "
                "(full size plus coarser images, each half the side, "
                "upsampled and summed): coarse structure settles in "
                "fewer evaluations; 1: the pixels themselves",
            ),
        ),
        adam_steps=(
            int,
            Input(
                0,
                ge=0,
                le=100000,
                description="then this many Adam steps at the last "
                "stage's size, warm-started from the L-BFGS "
                "gradients (L-BFGS stalls late, Adam does not)",
            ),
        ),
        adam_lr=(float, Input(0.05, gt=0, le=10, description="learning rate of the Adam steps")),
        adam_lr_schedule=(
            Literal["constant", "cosine"],
            Input("cosine", description="constant, or cosine decay to 10% over the Adam steps"),
        ),
    )

    def optimize(
        self,
        terms,
        start,
        stages,
        hooks,
        precision,
        framework,
        history_size,
        tv_smoothing,
        pyramid,
        adam_steps,
        adam_lr,
        adam_lr_schedule,
    ):
        from ._lbfgs import run_lbfgs

        self.route = "lbfgs" + (f" + {adam_steps} adam steps" if adam_steps else "")
        return run_lbfgs(
            terms,
            start,
            stages=stages,
            history_size=history_size,
            tv_smoothing=tv_smoothing,
            precision=precision,
            device=self.ctx.device,
            pyramid=pyramid,
            adam_steps_after=adam_steps,
            adam_lr=adam_lr,
            adam_lr_schedule=adam_lr_schedule,
            hooks=hooks,
        )
