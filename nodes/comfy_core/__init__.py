"""ComfyUI's core image nodes, with ComfyUI's names, inputs and outputs (in ComfyUI's order), so
prompts written for ComfyUI run unchanged: LoadImage (here `ComfyLoadImage`; the ComfyUI layer
shows it as LoadImage), SaveImage, PreviewImage, SaveImageWebsocket, ImageScale, ImageScaleBy,
ImageInvert, ImageBlend. numpy and Pillow only. Images are nodeflow IMAGEs (one image, not a
batch)."""

# The pip extra this family needs: None, the base install (numpy and Pillow) is enough.
EXTRA: str | None = None
