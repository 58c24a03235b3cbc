"""`sketchstory bench` on the tiny architecture: every row, the ratios, and the bank's growth by policy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from sketchstory.bench import characters
from sketchstory.bench.architectures import _block_initialisers, sd15_components
from sketchstory.bench.scaling import table
from sketchstory.cli import main


def test_bench_rows_ratios_and_bank_growth(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    assert main(["bench", "--arch", "tiny", "--size", "32", "--steps", "2", "--panels", "1,2,4,8", "-o", str(out)]) == 0
    result = json.loads((out / "bench.json").read_text())
    assert result["clock"] == "cpu_seconds"
    rows = {(r["scenario"], r["panels"]): r for r in result["rows"]}
    assert len(rows) == 4 * 6
    assert all(r["cpu_seconds"] > 0 and r["seconds"] > 0 for r in rows.values())
    # `maga` runs the shipped defaults, auto mode included: here a chunk of the whole story.
    assert rows[("maga", 8)]["chunk_size"] == 8 and rows[("maga-sequential", 8)]["chunk_size"] == 1
    assert rows[("maga-batched", 8)]["chunk_size"] == 4 and rows[("plain", 8)]["chunk_size"] == 1
    bank = {k: r["memory_bank_peak_bytes"] for k, r in rows.items()}
    assert bank[("plain", 8)] == 0 and bank[("maga-sequential", 1)] == 0  # nothing to remember
    assert bank[("maga", 8)] == 0  # one chunk: the panels read each other in the batch, nothing is kept
    # At N=2 the bank holds panel 0 only. The default policy (anchor + window of 2) then reads at most 3
    # panels and records the current one: flat at 4 from N=5; the thesis's `all` keeps all but the last.
    one = bank[("maga-sequential", 2)]
    assert bank[("maga-sequential", 4)] == 3 * one and bank[("maga-sequential", 8)] == 4 * one
    assert bank[("maga-all", 8)] == 7 * one
    assert 0 < bank[("maga-budget", 8)] < bank[("maga-sequential", 8)]
    assert {"maga: time N=8 / N=4", "maga: per-panel time / plain at N=8", "maga-sequential: bank peak N=8 / N=4"} <= set(
        result["ratios"])
    assert result["ratios"]["maga-sequential: panels held at N=8"] == 4.0
    assert "| ratio (of cpu_seconds) | value |" in (out / "bench.md").read_text()
    assert "maga-all" in capsys.readouterr().out


def test_bench_runs_the_sdxl_class_and_picks_scenarios(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    assert main(["bench", "--arch", "tiny-sdxl", "--size", "32", "--steps", "2", "--panels", "2,4",
                 "--scenarios", "plain,maga-sequential", "-o", str(out)]) == 0
    result = json.loads((out / "bench.json").read_text())
    assert result["model"] == "tiny-sdxl" and {r["scenario"] for r in result["rows"]} == {"plain", "maga-sequential"}
    rows = {(r["scenario"], r["panels"]): r for r in result["rows"]}
    assert rows[("maga-sequential", 4)]["memory_bank_peak_bytes"] == 3 * rows[("maga-sequential", 2)]["memory_bank_peak_bytes"] > 0
    assert main(["bench", "--arch", "tiny", "--scenarios", "plain,magic", "-o", str(out)]) == 2


def test_quick_json_summary_has_the_three_ratios_and_pass_or_fail(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--arch", "tiny", "--size", "32", "--steps", "1", "--json", "-o", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)  # stdout is the JSON alone
    assert summary == json.loads((out / "bench.json").read_text())["summary"]
    ratios, passed = summary["ratios"], summary["pass"]
    assert set(ratios) == set(passed) == {"defaults per panel / plain at N=8", "defaults time N=16 / N=8",
                                          "bf16 speedup", "bf16 mean pixel difference / 255"}
    assert all(ratios[k] > 0 for k in ratios) and summary["dtype_check"]["dtypes"] == ["fp32", "bf16"]
    assert passed["defaults time N=16 / N=8"] == (ratios["defaults time N=16 / N=8"] <= 2.1)
    # The tiny model stays in fp32 by default, so bf16's targets do not bind it.
    assert summary["bf16_is_default"] is False and passed["bf16 speedup"] is None
    assert summary["all_pass"] == all(v is not False for v in passed.values())


def test_block_initialisers_keep_torch_scales_and_are_restored() -> None:
    original = torch.nn.init.kaiming_uniform_
    with _block_initialisers(0):
        a = torch.nn.Conv2d(64, 128, 3)
    with _block_initialisers(0):
        b = torch.nn.Conv2d(64, 128, 3)
    assert torch.nn.init.kaiming_uniform_ is original
    bound = 1 / math.sqrt(64 * 9)  # torch's default for conv weights and biases
    assert torch.equal(a.weight, b.weight) and torch.isfinite(a.weight).all()
    assert a.weight.abs().max() <= bound + 1e-6 and a.weight.std() > bound / 2
    assert a.bias.abs().max() <= bound + 1e-6 and len(set(a.bias.tolist())) == 128


@pytest.mark.slow
def test_sd15_architecture_has_the_published_parameter_counts() -> None:
    c = sd15_components(torch.device("cpu"), torch.float32)
    counts = {name: sum(p.numel() for p in m.parameters())
              for name, m in (("unet", c.unet), ("controlnet", c.controlnet), ("vae", c.vae), ("text", c.text_encoder))}
    assert counts == {"unet": 859_520_964, "controlnet": 361_279_120, "vae": 83_653_863, "text": 123_060_480}
    assert all(torch.isfinite(p).all() for p in c.unet.parameters())


def test_table_adds_peak_cuda_memory_for_gpu_runs() -> None:
    row = {"scenario": "maga", "panels": 2, "seconds": 3.0, "seconds_per_panel": 1.5, "cpu_seconds": 3.1,
           "memory_bank_peak_bytes": 2**20, "peak_cuda_bytes": None}
    result = {"model": "sd15-random", "device": "cpu", "dtype": "torch.float32", "size": 64, "steps": 2,
              "rows": [row], "ratios": {}, "clock": "cpu_seconds", "peak_rss_bytes": 2**30}
    assert "CUDA" not in table(result)
    result["rows"] = [row | {"peak_cuda_bytes": 3 * 2**30}]
    assert "| peak CUDA memory (GiB) |" in table(result) and "| 1.00 | 3.00 |" in table(result)


def test_character_bench_rows_routed_against_shared(capsys) -> None:
    assert characters.main(["--arch", "tiny", "--size", "32", "--steps", "1", "--panels", "4", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "| tiny | sequential | 4 |" in out and "| tiny | auto | 4 |" in out and "routed / shared: worst row" in out
    (row,) = [line for line in out.splitlines() if line.startswith("| tiny | sequential")]
    held, tracks = row.split(" | ")[-2:]
    assert int(held) >= 2 and tracks.startswith(("4 (2 + 2)", "5 (2 + 3)", "6 (2 + 4)"))
