"""The soak test script: a short run end to end, and its verdict on made-up samples."""

from __future__ import annotations

from pathlib import Path

from sketchstory.bench.soak import Sample, main, problems


def test_a_short_soak_renders_cleans_up_and_reports(tmp_path: Path, capsys) -> None:
    # Three stories are too few for a memory trend (hence no limit on it); files and threads are judged.
    assert main(["--stories", "3", "--warmup", "1", "--max-growth-kib", "1e9", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("story  panels") and "3 stories, 9 panels" in out and "flat" in out
    assert list(tmp_path.iterdir()) == []  # every story folder was removed


def samples(rss_step: int = 0, fds: list[int] | None = None) -> list[Sample]:
    fds = fds or [8] * 6
    return [Sample(k, 2, 0.1, 500 * 2**20 + k * rss_step, fds[k], 5, 1, None) for k in range(6)]


def test_the_verdict_flags_growth_after_the_warm_up_only() -> None:
    assert problems(samples(), warmup=1, max_growth_kib=64) == []
    assert problems(samples(fds=[3, 8, 8, 8, 8, 8]), warmup=1, max_growth_kib=64) == []  # during the warm-up
    assert problems(samples(fds=[8, 8, 8, 9, 9, 10]), warmup=1, max_growth_kib=64) == [
        "fds grew from 8 to 10 after the warm-up"]
    (leak,) = problems(samples(rss_step=200 * 1024), warmup=1, max_growth_kib=64)
    assert leak == "resident memory grows by 200 KiB per story (limit 64)"
    assert "run more" in problems(samples()[:2], warmup=1, max_growth_kib=64)[0]
