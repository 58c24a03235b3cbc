"""`sketchstory eval` end to end on the tiny models: baselines, import, metrics and report files, ablation grid."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest
from conftest import SIZE, write_story
from PIL import Image
from test_eval_metrics import drawing, tiny_clip, tiny_dino  # noqa: F401 (fixtures)

from sketchstory.cli import run
from sketchstory.commands.eval import register

SYSTEMS = ["text-only", "controlnet", "ours-thesis", "ours-default"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sketchstory")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run(args.func, args)


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    write_story(root / "stories" / "story_0", 3)
    out = root / "baselines"
    assert main(["eval", "baselines", str(root / "stories"), "-o", str(out), "--model", "tiny",
                 "--size", str(SIZE), "--steps", "2", "-q"]) == 0
    return out


def test_baselines_render_every_system_with_its_settings(baselines: Path) -> None:
    for system in SYSTEMS:
        assert len(list((baselines / system / "story_0" / "panels").glob("panel_*.png"))) == 3
    settings = {s: json.loads((baselines / s / "story_0" / "run.json").read_text())["settings"] for s in SYSTEMS}
    assert settings["text-only"]["controlnet_scale"] == 0.0 and not settings["text-only"]["maga"]["enabled"]
    assert settings["controlnet"]["controlnet_scale"] == 1.0 and not settings["controlnet"]["maga"]["enabled"]
    assert settings["ours-thesis"]["maga"]["enabled"] and settings["ours-default"]["maga"]["enabled"]
    thesis = settings["ours-thesis"]["maga"]
    assert (thesis["memory"], thesis["start_layer"], thesis["start_step"]) == ("all", 8, "24/50")
    assert settings["ours-default"]["maga"]["memory"] == "anchors:0+window:2"
    assert all(s["steps"] == 2 and s["width"] == SIZE for s in settings.values())


def test_eval_writes_every_number_table_and_plots(baselines: Path, tiny_clip: Path, tiny_dino: Path,  # noqa: F811
                                                  tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    for k in range(3):
        Image.new("RGB", (40, 30), (60 * k, 90, 120)).save(refs / f"{k}.png")
    report = tmp_path / "report"
    assert main(["eval", str(baselines), "-o", str(report), "--clip", str(tiny_clip), "--dino", str(tiny_dino),
                 "--reference", str(refs), "--cache", str(tmp_path / "cache"), "--remove-background"]) == 0
    doc = json.loads((report / "report.json").read_text())
    plots = ["metrics.png", "time_vs_panels.png"] if importlib.util.find_spec("matplotlib") else []
    assert doc["plots"] == plots or "pip install 'sketchstory[eval]'" in doc["plots"]
    for name in ["report.md", *plots]:
        assert (report / name).stat().st_size > 0
    assert list(doc["systems"]) == sorted(SYSTEMS) and len(doc["runs"]) == 4
    for system in doc["systems"].values():
        assert system["stories"] == 1 and system["panels"] == 3
        assert {"clip_t", "clip_i", "dino", "edge_f1", "chamfer_px", "psnr", "seconds"} <= set(system["metrics"])
        assert "nima" not in system["metrics"] and "dreamsim" not in system["metrics"]
    run0 = doc["runs"][0]
    assert run0["background_removed"] == 2  # the panel without a sketch keeps its background
    assert "edge_f1" not in run0["per_panel"][2] and "clip_t" in run0["per_panel"][2]
    table = (report / "report.md").read_text()
    assert "| Image source | PSNR (↑) | Average NIMA score (↑) | CLIP-T (↑) | CLIP-I (↑) | DreamSim (↓)" \
        in table
    assert table.count("| blocked |") >= 4 and "**nima**: blocked" in table


def test_missing_eval_models_are_skipped_and_reported(baselines: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    report = tmp_path / "report"
    assert main(["eval", f"mine={baselines / 'ours-default'}", "-o", str(report)]) == 0
    assert "clip: skipped: the CLIP model 'openai/clip-vit-base-patch32' is not in the local" in capsys.readouterr().out
    doc = json.loads((report / "report.json").read_text())
    assert list(doc["systems"]) == ["mine"] and "clip_t" not in doc["systems"]["mine"]["metrics"]
    assert "edge_f1" in doc["systems"]["mine"]["metrics"]
    assert main(["eval", str(tmp_path / "nothing-here"), "-o", str(report)]) == 2


def test_import_other_systems_pictures(tmp_path: Path) -> None:
    story = write_story(tmp_path / "story", 3)
    pictures = tmp_path / "dalle3"
    pictures.mkdir()
    for k in range(3):
        drawing(4 * k).resize((48, 48)).save(pictures / f"{k}.jpg")
    run_dir = tmp_path / "runs" / "dalle3" / "story"
    assert main(["eval", "import", str(pictures), str(story), "-o", str(run_dir), "--seconds", "12.5"]) == 0
    assert (run_dir / "conditions" / "panel_00_canny.png").exists()
    assert Image.open(run_dir / "conditions" / "panel_00_canny.png").size == (48, 48)
    assert main(["eval", str(tmp_path / "runs"), "-o", str(tmp_path / "r"), "--no-clip", "--no-dino"]) == 0
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    metrics = doc["systems"]["dalle3"]["metrics"]
    assert metrics["seconds"]["mean"] == 12.5 and metrics["edge_f1"]["n"] == 1
    assert main(["eval", "import", str(pictures), str(write_story(tmp_path / "s4", 4)), "-o", str(tmp_path / "x")]) == 2


def test_ablation_grid_rows_are_steps_columns_are_layers(tmp_path: Path) -> None:
    story = write_story(tmp_path / "story", 2)
    out = tmp_path / "ablation"
    assert main(["eval", "ablation", str(story), "-o", str(out), "--model", "tiny", "--steps", "2",
                 "--layers", "0,16", "--start-steps", "0,1/2", "-q"]) == 0
    cells = json.loads((out / "ablation.json").read_text())["cells"]
    assert [(c["start_step"], c["start_layer"]) for c in cells] == [(s, n) for s in ("0", "1/2") for n in (0, 16)]
    assert [c["resolved_start_step"] for c in cells] == [0, 0, 1, 1]
    grid = Image.open(out / "ablation.png")
    assert grid.width > 2 * 2 * 128 and 2 * 128 < grid.height < 3 * 128 + 100  # 2 columns of 2 panels, 2 rows
    assert (out / "cells" / "layer16_step1of2" / "story" / "strip.png").exists()
