"""InternVideo2 stage-2 vision tower (ViT with RMSNorm, whole-width q/k norm, LayerScale, attention pooling),
the checkpoint's top level, the clip-feature wrapper of extraction and the stage-2-style contrastive pretraining
model, written from the architecture description, with the module and parameter names of the official
``InternVideo2_Stage2`` checkpoint so that ``load_state_dict`` works on it unchanged.

Official 1B settings (``InternVideo2-stage2_1b-224p-f4``): ``embed_dim`` 1408, ``depth`` 40, 16 heads (88 each),
``mlp_ratio`` 48/11 (fc1 1408→6144), patch 14, 224², 4 frames, tubelet 1, no qkv bias, q/k RMSNorm over all
1408 dims, LayerScale (fp32), ``clip_projector`` attention pooling 1408→768 (16 heads), ``clip_decoder.0-5``
(1408→3200), ``final_clip_decoder`` (768→768). :data:`IV2_1B` holds these numbers; tiny configurations use the
same classes. The BERT text tower lives in :mod:`models.backbones.internvideo2_text`, strict checkpoint loading
in :mod:`models.backbones.internvideo2_checkpoint`.

Feature path (thesis §4.4, Eq. 4.23): the hidden state after each configured block (1-based), each pooled by
the frozen ``clip_projector`` (``adaptive``), or by its cls token / token mean (``cls`` / ``avg``, width
``embed_dim``). The blocks after the deepest configured layer are not run.
"""
from __future__ import annotations

from typing import Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones.internvideo2_text import BertConfig, BertTextEncoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Architecture of the official stage-2 1B vision tower (keyword arguments of InternVideo2VisionEncoder).
IV2_1B = dict(
    img_size=224, patch_size=14, embed_dim=1408, depth=40, num_heads=16, mlp_ratio=48 / 11, num_frames=4,
    tubelet_size=1, clip_embed_dim=768, clip_teacher_embed_dim=3200, clip_teacher_final_dim=768,
    clip_return_layer=6, attn_pool_num_heads=16, init_values=1e-5,
)


# ---------------------------------------------------------------------------------------------------------
# Vision tower
# ---------------------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """Root-mean-square norm with a weight only (eps 1e-6), computed in fp32 like the official module."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(dtype)


class LayerScale(nn.Module):
    """Per-channel residual scale ``gamma``; multiplied in fp32 (the official ``force_fp32``)."""

    def __init__(self, dim: int, init_values: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() * self.gamma.float()).to(x.dtype)


class Attention(nn.Module):
    """Self-attention with bias-free ``qkv`` and RMSNorm on q and k over the whole width (all heads at once)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False, qk_normalization: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.qk_normalization = qk_normalization
        self.q_norm = RMSNorm(dim) if qk_normalization else nn.Identity()
        self.k_norm = RMSNorm(dim) if qk_normalization else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k = self.q_norm(q), self.k_norm(k)  # [B, N, C]: the norm spans every head
        q, k, v = (t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """fc1 → GELU → fc2."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + ls1(attn(norm1(x)))``, then ``x + ls2(mlp(norm2(x)))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, init_values: float):
        super().__init__()
        self.norm1 = RMSNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = RMSNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Conv3d patchify (kernel = stride = (tubelet, p, p)); tokens frame-major: all patches of frame 0 first."""

    def __init__(self, img_size: int, patch_size: int, embed_dim: int, tubelet_size: int = 1, in_chans: int = 3):
        super().__init__()
        self.grid = img_size // patch_size
        self.num_patches = self.grid * self.grid
        self.proj = nn.Conv3d(in_chans, embed_dim, (tubelet_size, patch_size, patch_size),
                              stride=(tubelet_size, patch_size, patch_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, C, T, H, W]
        x = self.proj(x)  # [B, D, T', h, w]
        return x.flatten(3).permute(0, 2, 3, 1).flatten(1, 2)  # [B, T'·h·w, D]


class CrossAttention(nn.Module):
    """Multi-head cross-attention with bias-free q/k/v Linears plus separate ``q_bias``/``k_bias``/``v_bias``."""

    def __init__(self, dim: int, num_heads: int, out_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.k_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, nq, c = x.shape
        nk = k.shape[1]
        q = F.linear(x, self.q.weight, self.q_bias).view(b, nq, self.num_heads, self.head_dim).transpose(1, 2)
        k = F.linear(k, self.k.weight, self.k_bias).view(b, nk, self.num_heads, self.head_dim).transpose(1, 2)
        v = F.linear(v, self.v.weight, self.v_bias).view(b, nk, self.num_heads, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(b, nq, c))


class AttentionPoolingBlock(nn.Module):
    """``clip_projector``: query = mean of all tokens (cls included); LayerNorm'd q/k/v; cross-attention → out_dim.

    No residual and no norm after, exactly as the official AttentionPoolingBlock with zero positional terms.
    """

    def __init__(self, dim: int, num_heads: int, out_dim: int):
        super().__init__()
        self.norm1_q = nn.LayerNorm(dim, eps=1e-5)
        self.norm1_k = nn.LayerNorm(dim, eps=1e-5)
        self.norm1_v = nn.LayerNorm(dim, eps=1e-5)
        self.cross_attn = CrossAttention(dim, num_heads, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, N, C] → [B, out_dim]
        q = self.norm1_q(x.mean(1, keepdim=True))
        return self.cross_attn(q, self.norm1_k(x), self.norm1_v(x)).squeeze(1)


class LinearDecoder(nn.Module):
    """``clip_decoder.i`` / ``final_clip_decoder`` of the distillation heads: ``head`` Linear + ``norm``.

    Built only so the official checkpoint loads strictly; the feature path never runs them.
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.head = nn.Linear(in_dim, out_dim)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.head(x))


def _sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    out = positions.double()[:, None] * omega[None, :]
    return torch.cat([out.sin(), out.cos()], dim=1)


def sincos_pos_embed(dim: int, grid: int, frames: int) -> torch.Tensor:
    """Fixed 3-D sin-cos table [1 + frames·grid², dim] (zero row for cls): dim/4 temporal, 3·dim/4 spatial.

    With ``frames == 1`` the whole width is spatial (the image table). Used as initial values only.
    """
    d_t = 0 if frames == 1 else dim // 4
    d_s = dim - d_t
    d_h = (d_s // 2) // 2 * 2
    d_w = d_s - d_h
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    spatial = torch.cat([_sincos_1d(d_h, ys.flatten()), _sincos_1d(d_w, xs.flatten())], dim=1)  # [g², d_s]
    spatial = spatial.repeat(frames, 1)
    if d_t:
        temporal = _sincos_1d(d_t, torch.arange(frames)).repeat_interleave(grid * grid, dim=0)
        table = torch.cat([temporal, spatial], dim=1)
    else:
        table = spatial
    return torch.cat([torch.zeros(1, dim, dtype=table.dtype), table], dim=0).float()


class InternVideo2VisionEncoder(nn.Module):
    """``vision_encoder`` of InternVideo2 stage 2 (``PretrainInternVideo2``), eval/feature use only."""

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 14,
        embed_dim: int = 1408,
        depth: int = 40,
        num_heads: int = 16,
        mlp_ratio: float = 48 / 11,
        num_frames: int = 4,
        tubelet_size: int = 1,
        clip_embed_dim: int = 768,
        clip_teacher_embed_dim: int = 3200,
        clip_teacher_final_dim: int = 768,
        clip_return_layer: int = 6,
        attn_pool_num_heads: int = 16,
        init_values: float = 1e-5,
    ):
        super().__init__()
        if embed_dim % num_heads or embed_dim % attn_pool_num_heads:
            raise ValueError(f"embed_dim {embed_dim} must divide by num_heads {num_heads} and attn_pool_num_heads")
        self.embed_dim, self.depth, self.num_frames = embed_dim, depth, num_frames
        self.clip_embed_dim = clip_embed_dim
        self.patch_embed = PatchEmbed(img_size, patch_size, embed_dim, tubelet_size)
        n = self.patch_embed.num_patches
        t = num_frames // tubelet_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + t * n, embed_dim))
        self.img_pos_embed = nn.Parameter(torch.zeros(1, 1 + n, embed_dim))
        self.clip_pos_embed = nn.Parameter(torch.zeros(1, 1 + t * n, embed_dim))
        self.clip_img_pos_embed = nn.Parameter(torch.zeros(1, 1 + n, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, init_values) for _ in range(depth))
        self.clip_projector = AttentionPoolingBlock(embed_dim, attn_pool_num_heads, clip_embed_dim)
        self.clip_decoder = nn.ModuleList(
            LinearDecoder(embed_dim, clip_teacher_embed_dim) for _ in range(clip_return_layer)
        )
        self.final_clip_decoder = LinearDecoder(clip_embed_dim, clip_teacher_final_dim)
        self._init_weights(t)

    @torch.no_grad()
    def _init_weights(self, t: int) -> None:
        if self.cls_token.is_meta:
            return
        grid = self.patch_embed.grid
        for name in ("pos_embed", "clip_pos_embed"):
            getattr(self, name).copy_(sincos_pos_embed(self.embed_dim, grid, t)[None])
        for name in ("img_pos_embed", "clip_img_pos_embed"):
            getattr(self, name).copy_(sincos_pos_embed(self.embed_dim, grid, 1)[None])
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    @torch.no_grad()
    def init_for_random_features(self) -> None:
        """Re-initialise every linear layer with unit-gain Xavier weights (used only without a checkpoint).

        The official init (std 0.02 and LayerScale 1e-5) is made for training: frozen and random, its blocks
        barely change the residual stream, so every stored layer is the same vector (measured: cosine 0.9998
        between layers 2 and 6 of the embedded config) and the attention pooling averages uniformly. With unit
        gain the layers differ (cosine ≈ 0.7) and carry content, which the embedded demo's multi-layer side
        tuner needs.
        """
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Input [B, C, T, H, W] → embedded tokens [B, 1 + T·N, D] (cls first, position table added)."""
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1)
        pos = self.img_pos_embed if x.shape[1] == self.img_pos_embed.shape[1] else self.pos_embed
        if pos.shape[1] != x.shape[1]:
            raise ValueError(
                f"InternVideo2: {x.shape[1] - 1} patch tokens but the position table is built for "
                f"{self.num_frames} frames of {self.patch_embed.num_patches} patches"
            )
        return x + pos.to(x.dtype)

    def hidden_states(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """Hidden states [B, 1 + T·N, D] after each 1-based block in ``layers`` (blocks past the last unrun)."""
        bad = [ly for ly in layers if not 1 <= ly <= self.depth]
        if bad:
            raise ValueError(f"InternVideo2 layers {bad} out of range 1..{self.depth}")
        wanted = set(layers)
        out: dict[int, torch.Tensor] = {}
        h = self.tokens(x)
        for i, block in enumerate(self.blocks[: max(layers)], start=1):
            h = block(h)
            if i in wanted:
                out[i] = h
        return [out[ly] for ly in layers]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Official-style output: (last hidden state, ``clip_projector`` pooled embedding)."""
        (h,) = self.hidden_states(x, [self.depth])
        return h, self.clip_projector(h)


def pool_tokens(h: torch.Tensor, pooling: str, projector: nn.Module | None) -> torch.Tensor:
    """Pool [B, N, D] tokens: ``adaptive`` (the frozen attention pooling), ``cls`` (token 0) or ``avg`` (all)."""
    if pooling == "adaptive":
        if projector is None:
            raise ValueError("adaptive pooling needs the clip_projector")
        return projector(h)
    if pooling == "cls":
        return h[:, 0]
    if pooling == "avg":
        return h.mean(1)
    raise ValueError(f"unknown pooling {pooling!r} (adaptive | cls | avg)")


# ---------------------------------------------------------------------------------------------------------
# The stage-2 checkpoint's top level (both towers)
# ---------------------------------------------------------------------------------------------------------


class InternVideo2Stage2(nn.Module):
    """The stage-2 checkpoint's top level: ``temp``, ``vision_encoder``, ``text_encoder``, projections, ITM head."""

    def __init__(self, vision: Mapping, text: Mapping, embed_dim: int = 512):
        super().__init__()
        self.temp = nn.Parameter(torch.tensor(0.07))
        self.vision_encoder = InternVideo2VisionEncoder(**vision)
        cfg = BertConfig(**text)
        self.text_encoder = BertTextEncoder(cfg)
        self.vision_proj = nn.Linear(self.vision_encoder.clip_embed_dim, embed_dim)
        self.text_proj = nn.Linear(cfg.hidden_size, embed_dim)
        self.itm_head = nn.Linear(cfg.hidden_size, 2)


# ---------------------------------------------------------------------------------------------------------
# Feature wrappers used by extraction
# ---------------------------------------------------------------------------------------------------------


class InternVideo2Video(nn.Module):
    """Clip features: uint8 clips [B, T, H, W, 3] → [B, L, D] (each configured layer pooled)."""

    def __init__(self, encoder: InternVideo2VisionEncoder, layers: Sequence[int],
                 pooling: Literal["adaptive", "cls", "avg"] = "adaptive"):
        super().__init__()
        if pooling not in ("adaptive", "cls", "avg"):
            raise ValueError(f"unknown pooling {pooling!r} (adaptive | cls | avg)")
        if not layers:
            raise ValueError("InternVideo2: at least one layer is needed")
        bad = [ly for ly in layers if not 1 <= ly <= encoder.depth]
        if bad:
            raise ValueError(f"InternVideo2 layers {bad} out of range 1..{encoder.depth}")
        # the distillation heads are not part of the feature path: drop them to save memory
        encoder.clip_decoder = nn.ModuleList()
        encoder.final_clip_decoder = nn.Identity()
        self.encoder = encoder
        self.layers = tuple(int(x) for x in layers)
        self.pooling = pooling
        self.dim = encoder.clip_embed_dim if pooling == "adaptive" else encoder.embed_dim
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1) * 255, persistent=False)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        dtype = self.encoder.cls_token.dtype
        x = clips.permute(0, 4, 1, 2, 3).float()  # [B, 3, T, H, W]
        x = ((x - self.mean) / self.std).to(dtype)
        states = self.encoder.hidden_states(x, self.layers)
        proj = self.encoder.clip_projector
        return torch.stack([pool_tokens(h, self.pooling, proj) for h in states], dim=1)


# ---------------------------------------------------------------------------------------------------------
# Stage-2-style video–text contrastive pretraining (the embedded backbone pretraining, DESIGN §4a)
# ---------------------------------------------------------------------------------------------------------


class InternVideo2Contrastive(nn.Module):
    """Vision tower + ``vision_proj`` / ``text_proj`` / ``temp`` of stage 2, for video–text contrastive training.

    Attribute names are the official top-level names, so ``state_dict()`` has the stage-2 keys
    (``vision_encoder.*``, ``vision_proj.*``, ``text_proj.*``, ``temp``) and :func:`load_vision_checkpoint`
    reads the vision tower back. The video embedding is the stage-2 one: the last block's tokens pooled by
    ``clip_projector``, then ``vision_proj``; the text side takes precomputed sentence vectors of a frozen text
    tower through ``text_proj``. Pixels are normalised exactly as :class:`InternVideo2Video` does.
    """

    def __init__(self, encoder: InternVideo2VisionEncoder, text_dim: int, embed_dim: int, temp: float = 0.07):
        super().__init__()
        self.temp = nn.Parameter(torch.tensor(float(temp)))
        self.vision_encoder = encoder
        self.vision_proj = nn.Linear(encoder.clip_embed_dim, embed_dim)
        self.text_proj = nn.Linear(text_dim, embed_dim)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1) * 255, persistent=False)

    def video_embed(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 clips [B, T, H, W, 3] → L2-normalised video embeddings [B, embed_dim]."""
        x = clips.permute(0, 4, 1, 2, 3).float()
        x = (x - self.mean) / self.std
        enc = self.vision_encoder
        h = enc.hidden_states(x, [enc.depth])[0]
        return F.normalize(self.vision_proj(enc.clip_projector(h)), dim=-1)

    def text_embed(self, sentences: torch.Tensor) -> torch.Tensor:
        """Sentence vectors [B, text_dim] → L2-normalised text embeddings [B, embed_dim]."""
        return F.normalize(self.text_proj(sentences), dim=-1)

    def logit_scale(self) -> torch.Tensor:
        """1 / temp, with temp clamped to [0.01, 0.5] (the official code clamps it too)."""
        return 1.0 / self.temp.clamp(0.01, 0.5)


def contrastive_loss(video: torch.Tensor, text: torch.Tensor, scale: torch.Tensor,
                     groups: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where every pair with the same ``groups`` id (identical caption) counts as positive.

    ``video``/``text`` [B, D] normalised, row i of each from the same pair; the loss of a row is
    ``-log`` of the softmax mass on its positives, averaged over both directions."""
    sim = scale * video @ text.T
    pos = groups[:, None] == groups[None, :]
    neg_inf = torch.finfo(sim.dtype).min

    def side(s: torch.Tensor) -> torch.Tensor:
        return (torch.logsumexp(s, 1) - torch.logsumexp(s.masked_fill(~pos, neg_inf), 1)).mean()

    return 0.5 * (side(sim) + side(sim.T))
