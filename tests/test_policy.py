"""Memory policies: which panels each panel reads, what stays in memory, and the syntax."""

from __future__ import annotations

import pytest

from sketchstory.attention.policy import PolicyError, parse_policy


def test_sources_per_policy() -> None:
    assert parse_policy("all").sources(3) == (0, 1, 2)
    assert parse_policy("window:2").sources(5) == (3, 4)
    assert parse_policy("anchors:0+window:1").sources(5) == (0, 4)
    assert parse_policy("none").sources(5) == ()
    assert parse_policy("anchors:3").sources(2) == ()  # an anchor is read only once it exists


def test_decay_forgets_softly_then_drops() -> None:
    policy = parse_policy("decay:0.5")
    assert policy.decay_span == 5  # 0.5**4 = 6% kept, 0.5**5 = 3% dropped
    assert policy.sources(10) == (5, 6, 7, 8, 9)
    assert policy.log_weight(10, 9) == 0.0
    assert policy.log_weight(10, 7) == pytest.approx(2 * -0.6931, abs=1e-3)


def test_closure_follows_chains() -> None:
    assert parse_policy("window:1").closure([5]) == [0, 1, 2, 3, 4]
    assert parse_policy("anchors:0").closure([5]) == [0]
    assert parse_policy("window:1").closure([5], at_hand={3}.__contains__) == [3, 4]  # 3's memory is saved


@pytest.mark.parametrize("bad", ["window:0", "windows:2", "anchors:a", "decay:1.5", "all:3", ""])
def test_bad_specs_explain_the_syntax(bad: str) -> None:
    with pytest.raises(PolicyError, match="anchors:0\\+window:2"):
        parse_policy(bad)
