"""Plain-PyTorch re-implementation of diffusers' UNet2DModel (diffusers 0.27.2).

Written from the math in shared/fixtures/diffusers/README.md (sections 3 and 6),
not from diffusers' code.  Module attribute names are chosen so that
`state_dict()` keys are exactly diffusers' names (`down_blocks.0.resnets.0.norm1.weight`,
`mid_block.attentions.0.to_out.0.weight`, ...): a folder written by
`save_pretrained` loads in diffusers and in fusediff's C++ engine, and a
diffusers folder loads here with `load_pretrained`.

Supported: DownBlock2D, AttnDownBlock2D, ResnetDownsampleBlock2D, UpBlock2D,
AttnUpBlock2D, ResnetUpsampleBlock2D, the mid block with or without attention,
positional (sinusoidal) and Gaussian-Fourier time embeddings,
resnet_time_scale_shift "default" and "scale_shift", and class conditioning via
num_class_embeds.
"""

import json
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

import safetensors_io

DIFFUSERS_VERSION = "0.27.2"

# Every UNet2DModel constructor argument with diffusers' default value; config.json
# written by diffusers lists all of them, so we do too.
DEFAULT_CONFIG = {
    "sample_size": None,
    "in_channels": 3,
    "out_channels": 3,
    "center_input_sample": False,
    "time_embedding_type": "positional",
    "freq_shift": 0,
    "flip_sin_to_cos": True,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [224, 448, 672, 896],
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "downsample_padding": 1,
    "downsample_type": "conv",
    "upsample_type": "conv",
    "dropout": 0.0,
    "act_fn": "silu",
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "attn_norm_num_groups": None,
    "norm_eps": 1e-5,
    "resnet_time_scale_shift": "default",
    "add_attention": True,
    "class_embed_type": None,
    "num_class_embeds": None,
    "num_train_timesteps": None,
}


def full_config(config):
    """Merge a (possibly partial) config with the defaults; reject what we do not implement."""
    cfg = dict(DEFAULT_CONFIG)
    cfg.update({k: v for k, v in config.items() if not k.startswith("_")})
    unknown = set(cfg) - set(DEFAULT_CONFIG)
    if unknown:
        raise ValueError(f"unknown UNet2DModel config keys: {sorted(unknown)}")
    if cfg["act_fn"] != "silu":
        raise ValueError("only act_fn 'silu' is supported")
    if cfg["time_embedding_type"] not in ("positional", "fourier"):
        raise ValueError(f"time_embedding_type {cfg['time_embedding_type']!r} is not supported")
    if cfg["class_embed_type"] is not None:
        raise ValueError("only class_embed_type null (a plain class table) is supported")
    if cfg["resnet_time_scale_shift"] not in ("default", "scale_shift"):
        raise ValueError(f"resnet_time_scale_shift {cfg['resnet_time_scale_shift']!r} is not supported")
    if cfg["norm_num_groups"] is None:
        raise ValueError("norm_num_groups must be set")
    n = len(cfg["block_out_channels"])
    if len(cfg["down_block_types"]) != n or len(cfg["up_block_types"]) != n:
        raise ValueError("down_block_types, up_block_types and block_out_channels must have equal length")
    return cfg


# --------------------------------------------------------------------------- embeddings


def sinusoidal_embedding(t, dim, flip_sin_to_cos, freq_shift, max_period=10000.0):
    """Transformer-style timestep embedding (README 6.2), in t's dtype.

    f_j = exp(-ln(P) * j / (h - freq_shift)), a_j = t * f_j, emb = [sin a, cos a]
    (or [cos a, sin a] when flip_sin_to_cos).
    """
    half = dim // 2
    j = torch.arange(half, dtype=t.dtype, device=t.device)
    freqs = torch.exp(-math.log(max_period) * j / (half - freq_shift))
    angles = t[:, None] * freqs[None, :]
    sin, cos = torch.sin(angles), torch.cos(angles)
    emb = torch.cat([cos, sin] if flip_sin_to_cos else [sin, cos], dim=1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


class GaussianFourierProjection(nn.Module):
    """Random Fourier features of ln(sigma) (README 6.3; Song et al. 2021, NCSN++).

    diffusers registers one fixed vector under two names, `weight` and `W`; both
    appear in its state dict, so both are registered here (sharing storage).
    """

    def __init__(self, size):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(size), requires_grad=False)
        self.register_parameter("W", self.weight)

    def forward(self, sigma):
        u = torch.log(sigma)[:, None] * self.weight[None, :] * (2 * math.pi)
        return torch.cat([torch.sin(u), torch.cos(u)], dim=1)


class TimestepEmbedding(nn.Module):
    """temb = linear_2(silu(linear_1(emb)))  (README 6.4)."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, out_dim)
        self.linear_2 = nn.Linear(out_dim, out_dim)

    def forward(self, emb):
        return self.linear_2(F.silu(self.linear_1(emb)))


# --------------------------------------------------------------------------- building blocks


class ResnetBlock2D(nn.Module):
    """ResnetBlock2D of README 6.6, optionally resampling (6.7: resnet up/down).

    'default' adds the time projection before norm2; 'scale_shift' (FiLM, as in
    Dhariwal & Nichol 2021) applies h * (1 + scale) + shift after norm2.
    """

    def __init__(self, in_ch, out_ch, temb_ch, groups, eps, dropout, time_scale_shift,
                 output_scale_factor=1.0, resample=None):
        super().__init__()
        self.time_scale_shift = time_scale_shift
        self.output_scale_factor = output_scale_factor
        self.resample = resample  # None, "up" or "down"
        self.norm1 = nn.GroupNorm(groups, in_ch, eps=eps)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        proj_out = 2 * out_ch if time_scale_shift == "scale_shift" else out_ch
        self.time_emb_proj = nn.Linear(temb_ch, proj_out)
        self.norm2 = nn.GroupNorm(groups, out_ch, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        if in_ch != out_ch:
            self.conv_shortcut = nn.Conv2d(in_ch, out_ch, 1)
        else:
            self.conv_shortcut = None

    def _resample(self, x):
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        if self.resample == "down":
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return x

    def forward(self, x, temb):
        h = F.silu(self.norm1(x))
        h, x = self._resample(h), self._resample(x)
        h = self.conv1(h)
        p = self.time_emb_proj(F.silu(temb))[:, :, None, None]
        if self.time_scale_shift == "scale_shift":
            scale, shift = p.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + p)
        h = self.conv2(self.dropout(F.silu(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return (x + h) / self.output_scale_factor


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions (README 6.8)."""

    def __init__(self, channels, head_dim, norm_groups, eps, rescale_output_factor=1.0):
        super().__init__()
        self.heads = channels // head_dim
        self.head_dim = head_dim
        inner = self.heads * head_dim
        self.rescale_output_factor = rescale_output_factor
        if norm_groups is not None:
            self.group_norm = nn.GroupNorm(norm_groups, channels, eps=eps)
        else:
            self.group_norm = None
        self.to_q = nn.Linear(channels, inner)
        self.to_k = nn.Linear(channels, inner)
        self.to_v = nn.Linear(channels, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, channels)])

    def forward(self, x):
        b, c, h, w = x.shape
        z = self.group_norm(x) if self.group_norm is not None else x
        tokens = z.reshape(b, c, h * w).transpose(1, 2)  # [B, HW, C], token = row * W + col

        def split_heads(t):
            return t.reshape(b, h * w, self.heads, self.head_dim).transpose(1, 2)

        q = split_heads(self.to_q(tokens))
        k = split_heads(self.to_k(tokens))
        v = split_heads(self.to_v(tokens))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.head_dim), dim=-1)
        o = (weights @ v).transpose(1, 2).reshape(b, h * w, self.heads * self.head_dim)
        y = self.to_out[0](o).transpose(1, 2).reshape(b, c, h, w)
        return (y + x) / self.rescale_output_factor


class ConvDownsample(nn.Module):
    """3x3 stride-2 conv; padding 0 means 'pad right/bottom by one, then convolve'."""

    def __init__(self, channels, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x, temb):
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class ConvUpsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, temb):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


# --------------------------------------------------------------------------- UNet levels


class DownBlock(nn.Module):
    """DownBlock2D / AttnDownBlock2D / ResnetDownsampleBlock2D: resnets [+ attentions] [+ downsampler]."""

    def __init__(self, kind, in_ch, out_ch, num_layers, add_downsample, cfg, temb_ch, head_dim):
        super().__init__()
        if kind not in ("DownBlock2D", "AttnDownBlock2D", "ResnetDownsampleBlock2D"):
            raise ValueError(f"down block type {kind!r} is not supported")
        groups, eps = cfg["norm_num_groups"], cfg["norm_eps"]
        shift, dropout = cfg["resnet_time_scale_shift"], cfg["dropout"]
        self.resnets = nn.ModuleList(
            ResnetBlock2D(in_ch if i == 0 else out_ch, out_ch, temb_ch, groups, eps, dropout, shift)
            for i in range(num_layers))
        if kind == "AttnDownBlock2D":
            self.attentions = nn.ModuleList(
                Attention(out_ch, head_dim, groups, eps) for _ in range(num_layers))
        else:
            self.attentions = None
        if add_downsample:
            # DownBlock2D always downsamples by conv, ResnetDownsampleBlock2D always by
            # resnet; AttnDownBlock2D follows the config's downsample_type.
            by_resnet = kind == "ResnetDownsampleBlock2D" or (
                kind == "AttnDownBlock2D" and cfg["downsample_type"] == "resnet")
            if by_resnet:
                down = ResnetBlock2D(out_ch, out_ch, temb_ch, groups, eps, dropout, shift, resample="down")
            else:
                down = ConvDownsample(out_ch, cfg["downsample_padding"])
            self.downsamplers = nn.ModuleList([down])
        else:
            self.downsamplers = None

    def forward(self, x, temb):
        skips = []
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x, temb)
            skips.append(x)
        return x, skips


class UpBlock(nn.Module):
    """UpBlock2D / AttnUpBlock2D / ResnetUpsampleBlock2D; each resnet eats one skip (x first, skip second)."""

    def __init__(self, kind, in_ch, prev_out_ch, out_ch, num_layers, add_upsample, cfg, temb_ch, head_dim):
        super().__init__()
        if kind not in ("UpBlock2D", "AttnUpBlock2D", "ResnetUpsampleBlock2D"):
            raise ValueError(f"up block type {kind!r} is not supported")
        groups, eps = cfg["norm_num_groups"], cfg["norm_eps"]
        shift, dropout = cfg["resnet_time_scale_shift"], cfg["dropout"]
        resnets = []
        for i in range(num_layers):
            # The last resnet of a level consumes the skip that entered the matching
            # down level (width in_ch); the others consume skips of width out_ch.
            skip_ch = in_ch if i == num_layers - 1 else out_ch
            x_ch = prev_out_ch if i == 0 else out_ch
            resnets.append(ResnetBlock2D(x_ch + skip_ch, out_ch, temb_ch, groups, eps, dropout, shift))
        self.resnets = nn.ModuleList(resnets)
        if kind == "AttnUpBlock2D":
            self.attentions = nn.ModuleList(
                Attention(out_ch, head_dim, groups, eps) for _ in range(num_layers))
        else:
            self.attentions = None
        if add_upsample:
            by_resnet = kind == "ResnetUpsampleBlock2D" or (
                kind == "AttnUpBlock2D" and cfg["upsample_type"] == "resnet")
            if by_resnet:
                up = ResnetBlock2D(out_ch, out_ch, temb_ch, groups, eps, dropout, shift, resample="up")
            else:
                up = ConvUpsample(out_ch)
            self.upsamplers = nn.ModuleList([up])
        else:
            self.upsamplers = None

    def forward(self, x, skips, temb):
        for i, resnet in enumerate(self.resnets):
            x = resnet(torch.cat([x, skips.pop()], dim=1), temb)
            if self.attentions is not None:
                x = self.attentions[i](x)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, temb)
        return x


class MidBlock(nn.Module):
    """resnet -> [attention] -> resnet at the lowest resolution."""

    def __init__(self, channels, cfg, temb_ch):
        super().__init__()
        groups, eps = cfg["norm_num_groups"], cfg["norm_eps"]
        shift, scale = cfg["resnet_time_scale_shift"], cfg["mid_block_scale_factor"]
        self.resnets = nn.ModuleList(
            ResnetBlock2D(channels, channels, temb_ch, groups, eps, cfg["dropout"], shift,
                          output_scale_factor=scale)
            for _ in range(2))
        if cfg["add_attention"]:
            # diffusers quirk (README 6.8): without attn_norm_num_groups the mid attention
            # has a GroupNorm only for the "default" time conditioning.
            attn_groups = cfg["attn_norm_num_groups"]
            if attn_groups is None and shift == "default":
                attn_groups = groups
            head_dim = cfg["attention_head_dim"] or channels
            self.attentions = nn.ModuleList(
                [Attention(channels, head_dim, attn_groups, eps, rescale_output_factor=scale)])
        else:
            self.attentions = nn.ModuleList()

    def forward(self, x, temb):
        x = self.resnets[0](x, temb)
        for attention in self.attentions:
            x = attention(x)
        return self.resnets[1](x, temb)


# --------------------------------------------------------------------------- the model


class UNet2DModel(nn.Module):
    """forward(sample, timestep, class_labels) -> output tensor (diffusers' `.sample`)."""

    def __init__(self, config):
        super().__init__()
        cfg = full_config(config)
        self.config = cfg
        channels = list(cfg["block_out_channels"])
        c0 = channels[0]
        temb_ch = 4 * c0
        lpb = cfg["layers_per_block"]

        self.conv_in = nn.Conv2d(cfg["in_channels"], c0, 3, padding=1)
        if cfg["time_embedding_type"] == "fourier":
            self.time_proj = GaussianFourierProjection(c0)
            self.time_embedding = TimestepEmbedding(2 * c0, temb_ch)
        else:
            self.time_embedding = TimestepEmbedding(c0, temb_ch)
        if cfg["num_class_embeds"] is not None:
            self.class_embedding = nn.Embedding(cfg["num_class_embeds"], temb_ch)
        else:
            self.class_embedding = None

        self.down_blocks = nn.ModuleList()
        out_ch = c0
        for i, kind in enumerate(cfg["down_block_types"]):
            in_ch, out_ch = out_ch, channels[i]
            head_dim = cfg["attention_head_dim"] or out_ch
            self.down_blocks.append(DownBlock(kind, in_ch, out_ch, lpb, i < len(channels) - 1,
                                              cfg, temb_ch, head_dim))

        self.mid_block = MidBlock(channels[-1], cfg, temb_ch)

        self.up_blocks = nn.ModuleList()
        rev = channels[::-1]
        out_ch = rev[0]
        for i, kind in enumerate(cfg["up_block_types"]):
            prev_out_ch, out_ch = out_ch, rev[i]
            in_ch = rev[min(i + 1, len(channels) - 1)]
            head_dim = cfg["attention_head_dim"] or out_ch
            self.up_blocks.append(UpBlock(kind, in_ch, prev_out_ch, out_ch, lpb + 1,
                                          i < len(channels) - 1, cfg, temb_ch, head_dim))

        self.conv_norm_out = nn.GroupNorm(cfg["norm_num_groups"], c0, eps=cfg["norm_eps"])
        self.conv_out = nn.Conv2d(c0, cfg["out_channels"], 3, padding=1)

    def forward(self, sample, timestep, class_labels=None):
        cfg = self.config
        dtype = self.conv_in.weight.dtype
        batch = sample.shape[0]
        if cfg["center_input_sample"]:
            sample = 2 * sample - 1.0

        t = torch.as_tensor(timestep, device=sample.device).to(dtype)
        t = t.reshape(-1).expand(batch) if t.numel() == 1 else t.reshape(batch)

        if cfg["time_embedding_type"] == "fourier":
            emb = self.time_proj(t)
        else:
            emb = sinusoidal_embedding(t, cfg["block_out_channels"][0], cfg["flip_sin_to_cos"],
                                       cfg["freq_shift"])
        temb = self.time_embedding(emb)
        if self.class_embedding is not None:
            if class_labels is None:
                raise ValueError("this model is class-conditional: class_labels are required")
            temb = temb + self.class_embedding(torch.as_tensor(class_labels, device=sample.device).reshape(batch))
        elif class_labels is not None:
            raise ValueError("class_labels given to a model without num_class_embeds")

        x = self.conv_in(sample)
        skips = [x]
        for block in self.down_blocks:
            x, block_skips = block(x, temb)
            skips.extend(block_skips)
        x = self.mid_block(x, temb)
        for block in self.up_blocks:
            x = block(x, skips, temb)
        x = self.conv_out(F.silu(self.conv_norm_out(x)))
        if cfg["time_embedding_type"] == "fourier":
            x = x / t.reshape(batch, 1, 1, 1)
        return x


# --------------------------------------------------------------------------- diffusers folders

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"


def load_pretrained(folder, dtype=torch.float32):
    """Build a UNet from a diffusers folder (config.json + safetensors weights)."""
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    if config.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise ValueError(f"{folder}: not a UNet2DModel config")
    model = UNet2DModel(config)
    weights, _ = safetensors_io.read(os.path.join(folder, WEIGHTS_NAME))
    state = {name: torch.from_numpy(array) for name, array in weights.items()}
    model.load_state_dict(state, strict=True)
    return model.to(dtype).eval()


def save_pretrained(model, folder, dtype=torch.float32):
    """Write config.json and the weights (float32, or float16 for a smaller file) in diffusers' layout."""
    os.makedirs(folder, exist_ok=True)
    config = {"_class_name": "UNet2DModel", "_diffusers_version": DIFFUSERS_VERSION}
    config.update({k: model.config[k] for k in sorted(DEFAULT_CONFIG)})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    state = {name: t.detach().to(dtype) for name, t in model.state_dict().items()}
    safetensors_io.write(os.path.join(folder, WEIGHTS_NAME), state, {"format": "pt"})


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
