"""Query text features: the embedded MiniLM tower, the InternVideo2 BERT tower and the extract_text stage."""
from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
import torch
from test_features_extract import RUNTIME, features_config

from models.backbones import build_text_tower
from models.backbones.text import minilm_dir
from pipeline.datasets.schema import Moment, VideoRecord, write_records
from pipeline.features.extract_text import extract_text
from pipeline.core.io import InputError
from pipeline.features.container import FeatureContainer


@pytest.fixture(scope="module")
def minilm():
    cfg = types.SimpleNamespace(tower="minilm", layers=[1, 6], max_tokens=16)
    return build_text_tower(cfg)


def test_minilm_matches_the_reference_bert(minilm):
    from transformers import AutoTokenizer, BertModel

    texts = ["A small red circle slides quickly to the left.", "blue square spins"]
    ours = minilm.encode(texts)
    tok = AutoTokenizer.from_pretrained(str(minilm_dir()))
    ref_model = BertModel.from_pretrained(str(minilm_dir())).eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hs = ref_model(**enc, output_hidden_states=True).hidden_states
    for i, arr in enumerate(ours):
        n = int(enc["attention_mask"][i].sum())
        assert arr.shape == (n, 2, 384) and arr.dtype == np.float32
        np.testing.assert_allclose(arr[:, 0], hs[1][i, :n].numpy(), atol=1e-4)
        np.testing.assert_allclose(arr[:, 1], hs[6][i, :n].numpy(), atol=1e-4)


def test_internvideo2_text_tower_random_tiny():
    bert = {"vocab_size": 30522, "hidden_size": 32, "num_layers": 4, "num_heads": 2, "intermediate_size": 64,
            "max_position": 64, "type_vocab_size": 2, "fusion_layer": 3, "encoder_width": 48}
    vocab = str(minilm_dir() / "vocab.txt")  # bert-uncased WordPiece vocabulary file, as in real mode
    cfg = types.SimpleNamespace(tower="internvideo2", layers=[2, 3], max_tokens=8, bert=bert, vocab=vocab)
    torch.manual_seed(0)
    tower = build_text_tower(cfg)
    (a,) = tower.encode(["a red circle grows slowly in the top left corner of the counter"])
    assert a.shape == (8, 2, 32)  # truncated to max_tokens ([CLS] ... [SEP])
    with pytest.raises(ValueError, match="text mode runs layers 1..3"):
        build_text_tower(types.SimpleNamespace(**(vars(cfg) | {"layers": [4]})))


def test_extract_text_stage(tmp_path, minilm):
    recs = [
        VideoRecord(video_id="v1", dataset="toy", split="train", duration=10.0, moments=[
            Moment("m1", 0.0, 2.0, text="a red circle slides", query_id="q1"),
            Moment("m2", 4.0, 6.0, text="a red circle slides", query_id="q1"),
            Moment("m3", 5.0, 7.0, text="a blue star blinks rapidly", query_id="q2")]),
        VideoRecord(video_id="v2", dataset="toy", split="val", duration=8.0, moments=[
            Moment("m4", 1.0, 3.0, text="a green square jumps", query_id="q3")]),
    ]
    write_records(tmp_path / "search.jsonl", recs)
    cfg = features_config(text={"tower": "minilm", "layers": [1, 6], "max_tokens": 16, "batch_size": 2,
                                "bert": dataclasses.asdict(features_config().text.bert)})
    summary = extract_text("toy_S1", tmp_path / "search.jsonl", tmp_path / "out", cfg, RUNTIME, tower=minilm)
    n = {t: len(a) for t, a in zip(["a red circle slides", "a blue star blinks rapidly", "a green square jumps"],
                                   minilm.encode(["a red circle slides", "a blue star blinks rapidly",
                                                  "a green square jumps"]))}
    assert n["a red circle slides"] == 6  # [CLS] a red circle slides [SEP]
    assert summary == {"train": {"queries": 2, "tokens": n["a red circle slides"] + n["a blue star blinks rapidly"]},
                       "val": {"queries": 1, "tokens": n["a green square jumps"]}}
    cont = FeatureContainer(tmp_path / "out" / "train")
    assert sorted(cont.keys()) == ["q1", "q2"] and cont.array.dtype == np.float16
    assert cont["q1"].shape == (6, 2, 384) and cont.meta["layers"] == [1, 6] and cont.meta["dim"] == 384
    np.testing.assert_allclose(np.asarray(cont["q1"], np.float32), minilm.encode(["a red circle slides"])[0],
                               atol=2e-3, rtol=2e-3)
    recs.append(VideoRecord(video_id="v3", dataset="toy", split="val", duration=8.0, moments=[
        Moment("m5", 2.0, 4.0, text="another text", query_id="q3")]))
    write_records(tmp_path / "bad.jsonl", recs)
    with pytest.raises(InputError, match="q3.*two different texts"):
        extract_text("bad", tmp_path / "bad.jsonl", tmp_path / "bad", cfg, RUNTIME, tower=minilm)
    assert not (tmp_path / "bad").exists()
