"""The shared stage conventions in ``pipeline.core``: exit code 2 + one ``error:`` line for bad input or params
(``cli``), runtime setup (``runtime``), named-spec lookup (``params.spec_entry``) — and every stage uses them."""
from __future__ import annotations

import importlib

import pytest
import torch

from pipeline.core.cli import EXIT_BAD_INPUT, run_main, stage_main
from pipeline.core.io import InputError
from pipeline.core.params import ConfigError, RuntimeConfig, spec_entry
from pipeline.core.runtime import apply_runtime, torch_dtype

# every stage main outside querygen (its own owner) and the evaluation CLI's body go through pipeline.core.cli
STAGES = [
    "pipeline.profiles", "pipeline.synth.generate", "pipeline.datasets.ingest", "pipeline.datasets.stats",
    "pipeline.features.pretrain", "pipeline.features.extract", "pipeline.features.merge",
    "pipeline.features.extract_text", "pipeline.features.probes", "pipeline.sada.train",
    "pipeline.sada.evaluate", "pipeline.search_vmr.train",
    "pipeline.search_vmr.evaluate", "pipeline.sdst.train", "pipeline.sdst.evaluate",
    "pipeline.sdst.efficiency", "pipeline.report.claims", "pipeline.report.build",
]


@pytest.mark.parametrize("exc", [ConfigError("params.yaml: sdst.K: expected int"), InputError("a.jsonl: row 3: bad"),
                                 FileNotFoundError("x.json")])
def test_bad_input_is_exit_2_and_one_error_line(exc, capsys):
    def body():
        raise exc

    assert run_main(body) == EXIT_BAD_INPUT == 2
    err = capsys.readouterr().err
    assert err == f"error: {exc}\n"


def test_multiline_message_becomes_one_line_and_extra_types_count(capsys):
    def body():
        raise ValueError("first\n  second\n")

    assert run_main(body, ValueError) == 2
    assert capsys.readouterr().err == "error: first; second\n"


def test_other_exceptions_keep_their_traceback_and_return_codes_pass_through():
    def bug():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_main(bug)
    with pytest.raises(ValueError):  # ValueError only counts where a stage says so
        run_main(lambda: int("x"))
    assert run_main(lambda: None) == 0 and run_main(lambda: 3) == 3


def test_stage_main_decorator(capsys):
    @stage_main(RuntimeError)
    def main(argv=None):
        """doc"""
        raise RuntimeError(f"bad {argv}")

    assert main(["a"]) == 2 and main.__doc__ == "doc"
    assert capsys.readouterr().err == "error: bad ['a']\n"


@pytest.mark.parametrize("module", STAGES)
def test_every_stage_main_uses_the_shared_wrapper(module):
    main = importlib.import_module(module).main
    assert getattr(main, "__wrapped__", None) is not None, f"{module}.main is not decorated with stage_main"


def test_spec_entry_names_the_key_and_the_known_names():
    specs = {"a": 1, "b": 2}
    assert spec_entry(specs, "b", "sdst.variant_specs", "variant") == 2
    with pytest.raises(ConfigError, match=r"sdst.variant_specs: no variant 'c' \(known: \['a', 'b'\]\)"):
        spec_entry(specs, "c", "sdst.variant_specs", "variant")


def test_apply_runtime_sets_threads_only_when_asked():
    before = torch.get_num_threads()
    try:
        apply_runtime(RuntimeConfig(device="cpu", seed=0, workers=0, precision="fp32", threads=0))
        assert torch.get_num_threads() == before
        apply_runtime(RuntimeConfig(device="cpu", seed=0, workers=0, precision="fp32", threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert (torch_dtype("fp32"), torch_dtype("fp16"), torch_dtype("bf16")) == (torch.float32, torch.float16,
                                                                              torch.bfloat16)
