"""A tiny, randomly initialised Stable Diffusion pipeline, saved the way a user's
model would be: a diffusers folder (`save_pretrained`). Built like diffusers' own
img2img tests build theirs, with a tokenizer whose vocab.json and merges.txt are
written here (no hub access).

Used by tests/test_sd_*.py and bench/sd.py.
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
    return dict(zip(bs, map(chr, cs)))


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
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32,
        in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_DIM)
    vae = AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=TEXT_DIM, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=5, vocab_size=1000,
        max_position_embeddings=MAX_TOKENS))
    # SD v1.5's own scheduler settings.
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, skip_prk_steps=True, steps_offset=1,
                              set_alpha_to_one=False)
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "scheduler": scheduler}


def build_tiny_pipeline(folder: Path, seed: int = 0) -> Path:
    """Write a tiny SD img2img pipeline into `folder` (a diffusers folder) and return it."""
    from diffusers import StableDiffusionImg2ImgPipeline
    from transformers import CLIPTokenizer

    folder = Path(folder)
    tok_dir = folder.parent / f"{folder.name}-tokenizer-src"
    write_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"),
                              model_max_length=MAX_TOKENS)
    pipe = StableDiffusionImg2ImgPipeline(
        **build_components(seed), tokenizer=tokenizer, safety_checker=None,
        feature_extractor=None, image_encoder=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder
