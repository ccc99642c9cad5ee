"""InternVideo2 stage-2 text tower: BERT (``text_encoder`` of the official checkpoint) with the official /
Hugging Face BERT parameter names, and :class:`BertTokens`, the per-layer token features extraction reads.

:data:`BERT_LARGE` holds the stage-2 dimensions: BERT-large (1024, 24 layers, 16 heads), layers ≥ 19
(``fusion_layer``) carry cross-attention to 1408-wide vision tokens; text-only encoding runs layers 1–19 and
never runs the cross-attention. Tiny configurations use the same classes. Strict loading of a checkpoint's
``text_encoder.*``: ``load_text_checkpoint`` in :mod:`models.backbones.internvideo2_checkpoint`.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# BERT-large text tower of stage 2 (keyword arguments of BertConfig).
BERT_LARGE = dict(
    vocab_size=30522, hidden_size=1024, num_layers=24, num_heads=16, intermediate_size=4096,
    max_position=512, type_vocab_size=2, fusion_layer=19, encoder_width=1408, layer_norm_eps=1e-12,
)


class BertConfig:
    """Plain BERT dimensions; ``fusion_layer`` ≥ ``num_layers`` means no cross-attention layers."""

    def __init__(self, vocab_size=30522, hidden_size=1024, num_layers=24, num_heads=16, intermediate_size=4096,
                 max_position=512, type_vocab_size=2, fusion_layer=19, encoder_width=1408, layer_norm_eps=1e-12):
        self.vocab_size, self.hidden_size, self.num_layers = vocab_size, hidden_size, num_layers
        self.num_heads, self.intermediate_size, self.max_position = num_heads, intermediate_size, max_position
        self.type_vocab_size, self.fusion_layer, self.encoder_width = type_vocab_size, fusion_layer, encoder_width
        self.layer_norm_eps = layer_norm_eps


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_position, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(0.1)
        self.register_buffer("position_ids", torch.arange(cfg.max_position).unsqueeze(0), persistent=True)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[1]
        x = self.word_embeddings(input_ids) + self.position_embeddings(self.position_ids[:, :n])
        x = x + self.token_type_embeddings(torch.zeros_like(input_ids))
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig, kv_width: int | None = None):
        super().__init__()
        kv_width = kv_width or cfg.hidden_size
        self.num_heads = cfg.num_heads
        self.head_dim = cfg.hidden_size // cfg.num_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(kv_width, cfg.hidden_size)
        self.value = nn.Linear(kv_width, cfg.hidden_size)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, context: torch.Tensor | None = None):
        ctx = x if context is None else context
        b, n, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, -1, self.num_heads, self.head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.query(x)), heads(self.key(ctx)), heads(self.value(ctx)),
                                             attn_mask=mask)
        return out.transpose(1, 2).reshape(b, n, -1)


class BertSelfOutput(nn.Module):
    def __init__(self, cfg: BertConfig, inner: int | None = None):
        super().__init__()
        self.dense = nn.Linear(inner or cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(0.1)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig, kv_width: int | None = None):
        super().__init__()
        self.self = BertSelfAttention(cfg, kv_width)
        self.output = BertSelfOutput(cfg)

    def forward(self, x, mask, context=None):
        return self.output(self.self(x, mask, context), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x):
        return F.gelu(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig, cross: bool):
        super().__init__()
        self.attention = BertAttention(cfg)
        if cross:
            self.crossattention = BertAttention(cfg, kv_width=cfg.encoder_width)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertSelfOutput(cfg, inner=cfg.intermediate_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # text-only mode: the cross-attention of fusion layers is never run here
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg, cross=i >= cfg.fusion_layer) for i in range(cfg.num_layers))


class BertModel(nn.Module):
    """``bert``: embeddings + encoder (no pooler, as in the MLM build)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, layers: Sequence[int]):
        """Per-token states after each 1-based layer in ``layers``: list of [B, tokens, hidden]."""
        n_layers = len(self.encoder.layer)
        bad = [ly for ly in layers if not 1 <= ly <= n_layers]
        if bad:
            raise ValueError(f"text layers {bad} out of range 1..{n_layers}")
        keep = attention_mask[:, None, None, :].bool()
        mask = torch.zeros(keep.shape, dtype=self.embeddings.LayerNorm.weight.dtype, device=keep.device)
        mask = mask.masked_fill(~keep, torch.finfo(mask.dtype).min)
        h = self.embeddings(input_ids)
        wanted, out = set(layers), {}
        for i, layer in enumerate(self.encoder.layer[: max(layers)], start=1):
            h = layer(h, mask)
            if i in wanted:
                out[i] = h
        return [out[ly] for ly in layers]


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)


class BertLMPredictionHead(nn.Module):
    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = BertPredictionHeadTransform(cfg)
        self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.decoder.weight = word_embeddings.weight  # tied, and stored under both names like the original
        self.decoder.bias = self.bias


class BertOnlyMLMHead(nn.Module):
    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg, word_embeddings)


class BertTextEncoder(nn.Module):
    """``text_encoder``: ``bert`` (+ the MLM head ``cls`` of the pretraining build when ``mlm_head``)."""

    def __init__(self, cfg: BertConfig, mlm_head: bool = True):
        super().__init__()
        self.bert = BertModel(cfg)
        if mlm_head:
            self.cls = BertOnlyMLMHead(cfg, self.bert.embeddings.word_embeddings)
        if not self.bert.embeddings.word_embeddings.weight.is_meta:
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)


class BertTokens(nn.Module):
    """Token features: (input_ids, attention_mask) → [B, L, tokens, hidden] of the configured layers."""

    def __init__(self, text: BertTextEncoder, layers: Sequence[int]):
        super().__init__()
        n = len(text.bert.encoder.layer)
        bad = [ly for ly in layers if not 1 <= ly <= n]
        if bad or not layers:
            raise ValueError(f"text layers {list(layers)} must be non-empty and within 1..{n}")
        if hasattr(text, "cls"):
            del text.cls  # the MLM head is not part of the feature path
        self.text = text
        self.layers = tuple(int(x) for x in layers)
        self.dim = text.bert.config.hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.text.bert.hidden_states(input_ids, attention_mask, self.layers), dim=1)
