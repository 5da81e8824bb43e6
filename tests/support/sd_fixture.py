"""A tiny, randomly initialised Stable Diffusion pipeline, saved the way a user's
model would be: a diffusers folder (`save_pretrained`). Built like diffusers' own
img2img tests build theirs, with a tokenizer whose vocab.json and merges.txt are
written here (no hub access).

Used by tests/nodes/sd, tests/nodes/shared/test_interruptible.py and bench/sd.py.
"""

from __future__ import annotations

import json
from pathlib import Path

# Tiny sizes: a 64x64 image is an 8x8 latent.
TEXT_DIM = 32
MAX_TOKENS = 77


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=False))


def write_tokenizer_files(folder: Path) -> None:
    """A byte-level BPE vocabulary: every byte alone and at a word's end, a few merges."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    merges = [("v", "a"), ("g", "o"), ("g", "h</w>"), ("s", "t"), ("y", "l"), ("l", "e</w>"), ("n", "g")]
    tokens = ["<|startoftext|>", "<|endoftext|>"] + chars + [c + "</w>" for c in chars]
    tokens += ["".join(m) for m in merges]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


def build_components(seed: int = 0) -> dict:
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_DIM,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=TEXT_DIM,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=5,
            vocab_size=1000,
            max_position_embeddings=MAX_TOKENS,
        )
    )
    # SD v1.5's own scheduler settings.
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        steps_offset=1,
        set_alpha_to_one=False,
    )
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "scheduler": scheduler}


def build_tiny_pipeline(folder: Path, seed: int = 0) -> Path:
    """Write a tiny SD img2img pipeline into `folder` (a diffusers folder) and return it."""
    from diffusers import StableDiffusionImg2ImgPipeline
    from transformers import CLIPTokenizer

    folder = Path(folder)
    tok_dir = folder.parent / f"{folder.name}-tokenizer-src"
    write_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=MAX_TOKENS)
    pipe = StableDiffusionImg2ImgPipeline(
        **build_components(seed),
        tokenizer=tokenizer,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


# ------------------------------------------------------------------ single file
# The original (LDM / CompVis) layout that ComfyUI and A1111 checkpoints use, written
# from the tiny diffusers folder: the inverse of diffusers' own single-file conversion.

_RESNET = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
]
_UNET_DIRECT = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_ATTN = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def _swap(rest: str, pairs: list[tuple[str, str]]) -> str:
    head, _, leaf = rest.rpartition(".")
    for new, old in pairs:
        if head == new or head.startswith(new + "."):
            head = old + head[len(new) :]
            break
    return f"{head}.{leaf}"


def _unet_to_ldm(sd: dict, config: dict) -> dict:
    per = config["layers_per_block"] + 1
    has_attn = {int(k.split(".")[1]) for k in sd if k.startswith("up_blocks.") and ".attentions." in k}
    out = {}
    for key, value in sd.items():
        p = key.split(".")
        if p[0] == "down_blocks":
            b = int(p[1])
            if p[2] == "resnets":
                new = f"input_blocks.{1 + b * per + int(p[3])}.0." + _swap(".".join(p[4:]), _RESNET)
            elif p[2] == "attentions":
                new = f"input_blocks.{1 + b * per + int(p[3])}.1." + ".".join(p[4:])
            else:  # downsamplers.0.conv.*
                new = f"input_blocks.{(b + 1) * per}.0.op." + p[-1]
        elif p[0] == "mid_block":
            if p[1] == "resnets":
                new = f"middle_block.{2 * int(p[2])}." + _swap(".".join(p[3:]), _RESNET)
            else:
                new = "middle_block.1." + ".".join(p[3:])
        elif p[0] == "up_blocks":
            b = int(p[1])
            if p[2] == "resnets":
                new = f"output_blocks.{b * per + int(p[3])}.0." + _swap(".".join(p[4:]), _RESNET)
            elif p[2] == "attentions":
                new = f"output_blocks.{b * per + int(p[3])}.1." + ".".join(p[4:])
            else:  # upsamplers.0.conv.*
                new = f"output_blocks.{b * per + per - 1}.{2 if b in has_attn else 1}.conv." + p[-1]
        else:
            head, _, leaf = key.rpartition(".")
            new = f"{_UNET_DIRECT[head]}.{leaf}"
        out["model.diffusion_model." + new] = value
    return out


def _vae_to_ldm(sd: dict, config: dict) -> dict:
    n = len(config["up_block_types"])
    shortcut = [("conv_shortcut", "nin_shortcut")]
    out = {}
    for key, value in sd.items():
        p = key.split(".")
        if len(p) > 2 and p[1] == "down_blocks":
            if p[3] == "resnets":
                new = f"encoder.down.{p[2]}.block.{p[4]}." + _swap(".".join(p[5:]), shortcut)
            else:
                new = f"encoder.down.{p[2]}.downsample.conv.{p[-1]}"
        elif len(p) > 2 and p[1] == "up_blocks":
            block = n - 1 - int(p[2])
            if p[3] == "resnets":
                new = f"decoder.up.{block}.block.{p[4]}." + _swap(".".join(p[5:]), shortcut)
            else:
                new = f"decoder.up.{block}.upsample.conv.{p[-1]}"
        elif len(p) > 2 and p[1] == "mid_block":
            if p[2] == "resnets":
                new = f"{p[0]}.mid.block_{int(p[3]) + 1}." + _swap(".".join(p[4:]), shortcut)
            else:
                new = f"{p[0]}.mid.attn_1." + _swap(".".join(p[4:]), _VAE_ATTN)
        else:
            new = key.replace("conv_norm_out", "norm_out")
        out["first_stage_model." + new] = value
    return out


def write_single_file(folder: Path, target: Path) -> Path:
    """Save the diffusers pipeline in `folder` as one original-layout .safetensors file."""
    from safetensors.torch import load_file, save_file

    folder = Path(folder)
    unet_cfg = json.loads((folder / "unet" / "config.json").read_text())
    vae_cfg = json.loads((folder / "vae" / "config.json").read_text())
    state = _unet_to_ldm(load_file(folder / "unet" / "diffusion_pytorch_model.safetensors"), unet_cfg)
    state.update(_vae_to_ldm(load_file(folder / "vae" / "diffusion_pytorch_model.safetensors"), vae_cfg))
    for key, value in load_file(folder / "text_encoder" / "model.safetensors").items():
        # transformers >= 5.6 saves CLIPTextModel flat; checkpoints keep the text_model. level
        inner = key if key.startswith("text_model.") else "text_model." + key
        state["cond_stage_model.transformer." + inner] = value
    save_file({k: v.contiguous() for k, v in state.items()}, str(target))
    return target
