"""PlotLoss: the loss history as a chart (log axis, one line per term)."""

from __future__ import annotations

from typing import Any, Literal

from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE
from nodes._shared.ports import LOSS_HISTORY

# Unlike the rest of its family, it needs matplotlib, which comes with nodeflow[nst] (where its
# loss histories come from).
EXTRA = "nst"


class PlotLoss(Node):
    """Draw a loss history with matplotlib: log y axis, the total and one line per term,
    against the step or the elapsed seconds. Coarse-to-fine stage changes are marked.
    Link the image to Save to write the PNG."""

    version = "1"
    category = "style transfer"
    plot = True  # a chart: a job's thumbnail is its result, not this

    class Inputs(NodeInputs):
        history: Any = Input(port=LOSS_HISTORY, description="from AdamOptimize / LBFGSOptimize")
        title: str = Input("style transfer loss", description="chart title")
        x_axis: Literal["step", "seconds"] = Input("step", description="what the x axis counts")
        width: int = Input(800, ge=200, le=4000, description="width in pixels")
        height: int = Input(500, ge=150, le=4000, description="height in pixels")

    class Outputs(NodeOutputs):
        image: Any = Output(IMAGE, "the chart")

    def run(self, history: Any, title: str, x_axis: str, width: int, height: int) -> dict:
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from PIL import Image

        from nodes._shared.pixels import from_pil

        total = history.get("total") or []
        if not total:
            raise InputError("history", "the history is empty: nothing to plot")
        xs = history["seconds"] if x_axis == "seconds" else list(range(1, len(total) + 1))
        dpi = 100
        fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
        try:
            ax.plot(xs, total, label="total", color="black", linewidth=2)
            for name, values in history.get("terms", {}).items():
                # A log axis can't show zeros (a content term at its first step).
                ax.plot(xs, [v if v > 0 else float("nan") for v in values], label=name, linewidth=1.2)
            sizes = history.get("size") or []
            for i in range(1, len(sizes)):
                if sizes[i] != sizes[i - 1]:
                    ax.axvline(xs[i], color="grey", linestyle=":", linewidth=1)
                    ax.text(
                        xs[i],
                        1,
                        f" {sizes[i][1]}x{sizes[i][0]}",
                        transform=ax.get_xaxis_transform(),
                        va="top",
                        fontsize=8,
                        color="grey",
                    )
            ax.set_yscale("log")
            ax.set_xlabel("seconds" if x_axis == "seconds" else "step")
            ax.set_ylabel("loss")
            ax.set_title(title)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi)
        finally:
            plt.close(fig)
        buf.seek(0)
        with Image.open(buf) as im:
            return {"image": from_pil(im.convert("RGB"))}
