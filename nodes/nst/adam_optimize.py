"""AdamOptimize: optimize an image against loss terms with Adam (the TF tutorial's recipe)."""

from __future__ import annotations

from typing import Literal

from nodeflow.node import Input, InputError

from ._optimizer_node import OptimizerNode, optimizer_inputs


class AdamOptimize(OptimizerNode):
    """Optimize the pixels of an image against up to 6 loss terms with Keras-style Adam,
    clipping them to [0, 1] after each step. Defaults are the TensorFlow NST tutorial's
    (lr 0.02, beta1 0.99, epsilon 0.1, 1000 steps, start from the content image).
    Faster: a coarse-to-fine `schedule` and a cosine `lr_schedule`. Emits progress every
    step and a preview every `preview_every` steps; stops cleanly when cancelled. With
    TensorFlow loss terms it runs the tutorial's train step as a tf.function (Keras Adam).
    tv "proximal" takes TV terms out of the gradient and ends each step with their exact
    proximal step: the route graphs/nst_starry.json takes, which reaches a given objective in
    far fewer steps on large images."""

    # 2: Gram backward in the features' own dtype (bfloat16 results change slightly);
    # 3: the proximal TV step's metric and iterations are inputs (results change by rounding)
    version = "3"
    route = "adam"
    frameworks = ("torch", "tensorflow")  # its loss terms'

    Inputs = optimizer_inputs(
        "AdamOptimizeInputs",
        steps=(int, Input(1000, ge=1, le=100000, description="optimization steps")),
        lr=(float, Input(0.02, gt=0, le=10, description="learning rate")),
        beta1=(float, Input(0.99, ge=0, lt=1, description="Adam beta1")),
        beta2=(float, Input(0.999, ge=0, lt=1, description="Adam beta2")),
        epsilon=(float, Input(0.1, gt=0, description="Adam epsilon (Keras form: added to sqrt(v))")),
        lr_schedule=(
            Literal["constant", "cosine"],
            Input("constant", description="constant, or cosine decay to 10% within each stage"),
        ),
        tv=(
            Literal["gradient", "proximal"],
            Input(
                "gradient",
                description="TV terms: in the gradient (the "
                "tutorial), or as an exact proximal step after each update, "
                "which flattens regions at once instead of a pixel nudge at "
                "a time (torch loss terms only)",
            ),
        ),
        tv_metric=(
            Literal["evened", "evened_then_adam"],
            Input(
                "evened",
                description="the proximal TV step's per-pixel step sizes: Adam's with "
                "their spread evened out (cleaner faces), or that through "
                "each stage's first half, then turning into Adam's own, so "
                "the run settles at the objective's own minimum (a lower "
                "objective; graphs/nst_starry_hq.json)",
            ),
        ),
        tv_iterations=(
            int,
            Input(
                20,
                ge=1,
                le=1000,
                description="dual iterations of the proximal TV step per "
                "Adam step, each starting from the last step's answer: fewer make every step "
                "cheaper at little cost to the objective, more leave faces smoother",
            ),
        ),
    )

    @classmethod
    def check_framework(cls, framework, inputs):
        super().check_framework(framework, inputs)
        if framework == "tensorflow" and inputs.get("tv") == "proximal":
            raise InputError(
                "tv", "the proximal TV step is on the torch route only; TensorFlow loss terms take TV in the gradient"
            )

    @classmethod
    def check(cls, inputs, settings):
        super().check(inputs, settings)
        if inputs.get("tv") != "proximal":  # the planner fills in defaults
            for name in ("tv_metric", "tv_iterations"):
                default = cls.Inputs.model_fields[name].default  # as declared above, not restated
                if inputs.get(name, default) != default:
                    raise InputError(name, "sets up the proximal TV step; it needs tv: proximal")

    def optimize(
        self,
        terms,
        start,
        stages,
        hooks,
        precision,
        framework,
        lr,
        beta1,
        beta2,
        epsilon,
        lr_schedule,
        tv,
        tv_metric,
        tv_iterations,
    ):
        self.route = (
            "adam"
            + (f" ({lr_schedule} lr)" if lr_schedule != "constant" else "")
            + (f", proximal tv ({tv_metric} metric)" if tv == "proximal" else "")
        )
        if framework == "tensorflow":
            from ._tf_optimize import run_adam_tf

            return run_adam_tf(
                terms,
                start,
                stages=stages,
                lr=lr,
                beta1=beta1,
                beta2=beta2,
                eps=epsilon,
                lr_schedule=lr_schedule,
                device=self.ctx.device,
                hooks=hooks,
            )
        from ._adam import run_adam

        return run_adam(
            terms,
            start,
            stages=stages,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=epsilon,
            lr_schedule=lr_schedule,
            tv=tv,
            tv_metric=tv_metric,
            tv_iterations=tv_iterations,
            precision=precision,
            device=self.ctx.device,
            hooks=hooks,
        )
