"""The project's user cache: model identity of a local folder (weights included) and the stale-temp sweep."""
import os
import time

from pipeline.querygen import embedded
from pipeline.querygen.embedded import local_model_id, resolve_model_dir, sweep_stale_temps
from pipeline.querygen.llm import model_identity
from pipeline.querygen.vllm_backend import vllm_model_id


def make_model(folder, weights=b"\0" * 1000):
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gemma3_text"}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_weights_replaced_in_place_change_the_identity(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "HASH_LIMIT", 100)  # the 1000-byte "weights" count as large: size + mtime
    model = make_model(tmp_path / "gemma")
    before = model_identity("transformers", str(model), "bfloat16")
    assert before == f"transformers:{resolve_model_dir(str(model))[1]}:bfloat16" and str(model) in before
    assert model_identity("transformers", str(model), "bfloat16") == before  # stable while nothing changes
    # same config, same size, new bytes written later (a re-download in place): the identity changes
    st = (model / "model.safetensors").stat()
    (model / "model.safetensors").write_bytes(b"\1" * 1000)
    os.utime(model / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    after = model_identity("transformers", str(model), "bfloat16")
    assert after != before
    # small files go by content: a tokenizer added or edited changes it too
    (model / "tokenizer.json").write_text("{}")
    assert local_model_id(model) != after
    # hidden files (download locks, caches) do not count
    ident = local_model_id(model)
    (model / ".lock").write_text("y")
    assert local_model_id(model) == ident


def test_vllm_identity_includes_the_weights(tmp_path):
    model = make_model(tmp_path / "gemma")
    before = vllm_model_id(str(model), "bfloat16")
    (model / "model.safetensors").write_bytes(b"\0" * 2000)
    assert vllm_model_id(str(model), "bfloat16") != before


def test_sweep_removes_only_stale_conversion_temps(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "process_start_time", lambda: time.time())
    plain = tmp_path / "gguf_plain"
    sha = "a" * 64
    stale = plain / f".{sha}.k3j_9xq2.tmp"  # what atomic_path names the folder of plain_checkpoint
    (stale / "sub").mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"\0" * 100)
    fresh = plain / f".{'b' * 64}.abcdefgh.tmp"  # a conversion still being written by another process
    fresh.mkdir()
    (fresh / "model.safetensors").write_bytes(b"\0")
    done = plain / sha  # a finished conversion
    done.mkdir()
    user = plain / ".notes.abcdefgh.tmp"  # a temp-looking name the project never creates
    user.write_text("mine")
    old = time.time() - 3600
    for p in (stale, stale / "sub", stale / "model.safetensors", done, user):
        os.utime(p, (old, old))
    removed = sweep_stale_temps(tmp_path)
    assert removed == [stale] and not stale.exists()
    assert fresh.exists() and done.exists() and user.exists()


def test_sweep_keeps_temps_newer_than_this_process(tmp_path, monkeypatch):
    """A folder last written after this process started belongs to a running conversion, however old it is."""
    tmp = tmp_path / "gguf_plain" / f".{'c' * 64}.abcdefgh.tmp"
    tmp.mkdir(parents=True)
    old = time.time() - 3600
    os.utime(tmp, (old, old))
    monkeypatch.setattr(embedded, "process_start_time", lambda: old - 60)
    assert sweep_stale_temps(tmp_path) == [] and tmp.exists()
    assert sweep_stale_temps(tmp_path / "nowhere") == []
