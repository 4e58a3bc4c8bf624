"""Prompt files and synthetic prompts for bench."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.loadtest.errors import LoadTestError
from components.loadtest.prompts import (
    Prompt,
    length_range,
    read_jsonl,
    synthetic_prompts,
    tokens_per_word,
    words_for_tokens,
)


def test_jsonl_prompts_with_optional_output_lengths_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a b"}\n\n{"prompt": "c", "output_tokens": 7}\n{"prompt": "d", "max_tokens": 2}\n')
    assert read_jsonl(path) == [Prompt("a b"), Prompt("c", 7), Prompt("d", 2)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"prompt": "a"}\nnot json\n', ":2: not JSON: Expecting value"),
        ('["a"]\n', ":1: expected an object with a 'prompt' string"),
        ('{"prompt": ""}\n', ":1: 'prompt' must be a non-empty string"),
        ('{"prompt": "a", "output_tokens": 0}\n', ":1: 'output_tokens' must be a positive integer"),
        ('{"prompt": "a", "output_tokens": true}\n', ":1: 'output_tokens' must be a positive integer"),
        ("\n\n", ": no prompts"),
    ],
)
def test_bad_jsonl_lines_are_located(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(text)
    with pytest.raises(LoadTestError) as error:
        read_jsonl(path)
    assert str(error.value) == f"{path}{message}"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LoadTestError, match="no such file"):
        read_jsonl(tmp_path / "absent.jsonl")


def test_synthetic_prompts_are_reproducible_and_distinct() -> None:
    first = synthetic_prompts(5, words=12, seed=3)
    assert first == synthetic_prompts(5, words=12, seed=3)
    assert first != synthetic_prompts(5, words=12, seed=4)
    assert all(len(p.text.split()) == 12 for p in first)
    assert len({p.text.split()[0:3].__str__() for p in first}) > 1  # no shared prefix for the cache to hit


def test_a_range_ratio_draws_lengths_within_vllms_interval() -> None:
    prompts = synthetic_prompts(400, words=100, seed=1, output_tokens=32, range_ratio=0.5)
    words = [len(p.text.split()) for p in prompts]
    outputs = [p.output_tokens for p in prompts]
    assert (min(words), max(words)) == (50, 150) and (min(outputs), max(outputs)) == (16, 48)
    assert 95 <= sum(words) / len(words) <= 105 and 30 <= sum(o for o in outputs if o) / len(outputs) <= 34
    assert prompts == synthetic_prompts(400, words=100, seed=1, output_tokens=32, range_ratio=0.5)


def test_without_a_range_ratio_every_prompt_has_the_given_lengths() -> None:
    prompts = synthetic_prompts(5, words=12, seed=3, output_tokens=7)
    assert [p.text for p in prompts] == [p.text for p in synthetic_prompts(5, words=12, seed=3)]
    assert {p.output_tokens for p in prompts} == {7}


def test_length_range_bounds_round_outwards_and_stay_positive() -> None:
    assert length_range(32, 0.5) == (16, 48)
    assert length_range(5, 0.3) == (3, 7)
    assert length_range(1, 0.9) == (1, 2)
    with pytest.raises(ValueError):
        synthetic_prompts(1, words=3, range_ratio=1.0)


def test_token_slope_from_two_probes_sizes_prompts() -> None:
    slope = tokens_per_word((16, 30), (128, 254))  # 2 tokens a word, 14 of template
    assert slope == 2.0
    assert words_for_tokens(128, slope) == 64
    assert words_for_tokens(1, 5.0) == 1


def test_token_counts_that_do_not_grow_are_an_error() -> None:
    with pytest.raises(LoadTestError, match="do not grow"):
        tokens_per_word((16, 30), (128, 30))
