"""The ``report`` stage's layout: chapters in the thesis' order, an appendix that lists the files it drew from
(not their contents), writer stages that agree with dvc.yaml, and headings nested without touching code."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from conftest import REPO_ROOT
from pipeline.report.build import CHAPTERS, build_report, main
from pipeline.report.sections.appendix import PLOT_GLOBS, SOURCES, source_of
from pipeline.report.sections.tables import demote_headings


def _write(root: Path, rel: str, data) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def _reports(root: Path) -> Path:
    """A reports dir with one file per area that renders without a model run."""
    _write(root, "metrics/synth/summary.json", {"tal_videos": 7, "tal_frames": 86028, "qvh_videos": 5,
                                                "qvh_frames": 4242, "qvh_queries": 9})
    _write(root, "metrics/pretrain/slowfast.json", {"backbone": "slowfast", "objective": "classification",
                                                    "steps": 400, "first_loss": 2.5, "final_loss": 0.75,
                                                    "corpus": {"train_videos": 800}, "heldout": {"verb_acc": 0.5}})
    _write(root, "metrics/features/tal-slowfast.json", {"dataset": "tal", "backbone": "slowfast", "videos": 7,
                                                        "extracted": 7, "skipped_count": 0, "dim": 320,
                                                        "layers": [1], "splits": {"train": {"rows": 31337}}})
    _write(root, "metrics/sdst/efficiency/sdst.json", {"variant": "sdst", "label": "SDST",
                                                       "trainable_params": 271828, "iters_per_sec": 4.5})
    _write(root, "metrics/claims/sdst.json", {"claim": "sdst > wo_tuning", "holds": True,
                                              "sentence": "holds: the method wins 1 of 1 comparisons.",
                                              "arms": {}, "comparisons": []})
    return root


def _headings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("## ")]


def test_chapters_follow_the_thesis_and_the_appendix_names_files_not_values(tmp_path):
    reports = _reports(tmp_path / "reports")
    text = build_report(reports, "t", 2)
    order = [f"## {title}" for title, _ in CHAPTERS]
    shown = _headings(text)
    assert shown == [h for h in order if h in shown]  # chapters present keep the reading order
    assert shown[0] == "## Summary" and shown[-1] == "## Appendix: the files this report drew from"
    assert "## SADA: domain-adaptive action localization (Ch. 2)" not in shown  # no SADA metrics: no chapter
    summary = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "| SDST > w/o tuning | **holds** | the method wins 1 of 1 comparisons. |" in summary
    assert "- **SDST (Ch. 4)**: efficiency of `sdst`." in summary
    sdst = text.split("## SDST: side-tuning InternVideo2 layers (Ch. 4)", 1)[1].split("\n## ", 1)[0]
    assert sdst.index("### Claim: SDST > w/o tuning") < sdst.index("### Results") < sdst.index("271828")
    # each number is shown once, in its chapter; the appendix has the path, writer stage and keys only
    for value in ("86028", "31337", "271828", "0.75"):
        assert text.count(value) == 1, value
    appendix = text.split("## Appendix: the files this report drew from", 1)[1]
    assert f"| `{(reports / 'metrics/features/tal-slowfast.json').as_posix()}` | `merge_features_<backbone>` |" \
           in appendix
    assert "| `synth` | Datasets › synthetic worlds | `tal_videos`, `tal_frames`, `qvh_videos`" in appendix
    assert len(appendix) < 3000


def test_cli_writes_the_report_with_the_params_title(tmp_path):
    reports = _reports(tmp_path / "reports")
    (tmp_path / "params.yaml").write_text("report:\n  title: Toy results\n  digits: 3\n")
    out = tmp_path / "out" / "report.md"
    assert main(["--reports", str(reports), "--out", str(out), "--params", str(tmp_path / "params.yaml")]) == 0
    text = out.read_text()
    assert text.startswith("# Toy results\n") and "| 2.500 | 0.750 |" in text  # digits from params


def test_writer_stages_agree_with_dvc_yaml():
    """Every file dvc.yaml declares under reports/metrics (and the plot files the figures read) maps to the
    stage that declares it, and every ``SOURCES`` prefix is still written by some stage."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    used = set()
    for name, stage in stages.items():
        body = stage.get("do", stage)
        for key in ("outs", "metrics", "plots"):
            for out in body.get(key) or []:
                path = out if isinstance(out, str) else next(iter(out))
                rel = re.sub(r"\$\{[^}]*\}", "x", path.removeprefix("reports/"))
                if not (rel.startswith("metrics/") or any(Path(rel).match(g) for g in PLOT_GLOBS)):
                    continue
                stage_name, _chapter = source_of(rel)
                pattern = re.escape(stage_name).replace("<backbone>", r"\w+").replace(re.escape("[_fixed_k]"),
                                                                                     "(_fixed_k)?")
                assert re.fullmatch(pattern, name), (path, name)
                used.add(stage_name)
    assert {s for _prefix, s, _chapter in SOURCES} == used


def test_demote_headings_leaves_code_fences_alone():
    md = "### a\ntext\n```sh\n# a shell comment\n```\n#### b"
    assert demote_headings(md) == "#### a\ntext\n```sh\n# a shell comment\n```\n##### b"


def test_a_metrics_file_that_is_not_json_is_one_error_line(tmp_path, capsys):
    reports = _reports(tmp_path / "reports")
    (reports / "metrics/synth/summary.json").write_text("{not json")
    (tmp_path / "params.yaml").write_text("report:\n  title: t\n  digits: 2\n")
    rc = main(["--reports", str(reports), "--out", str(tmp_path / "r.md"), "--params", str(tmp_path / "params.yaml")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and "synth/summary.json" in err and "\n" not in err
    assert not (tmp_path / "r.md").exists()
