"""Prompts for `inferfleet bench`: read from a JSONL file, or made up at a target token length.

Synthetic prompts are random words (a fresh draw per request, so no two share a prefix and prefix
caching cannot flatter TTFT). Their length in tokens depends on the server's tokenizer, which the
client does not have: `words_for_tokens` turns a measured tokens-per-word slope (two probe requests,
see bench.py) into a word count.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from components.loadtest.errors import LoadTestError

# Short, common, lower-case words: every tokenizer splits them into few tokens of plain letters.
WORDS = tuple(
    """time year people way day man thing woman life child world school state family student group
    country problem hand part place case week company system program question work government number
    night point home water room mother area money story fact month lot right study book eye job word
    business issue side kind head house service friend father power hour game line end member law car
    city community name president team minute idea kid body information back parent face others level
    office door health person art war history party result change morning reason research girl guy
    moment air teacher force education foot boy age policy music market sense nation plan college
    interest death experience effect use class control care field development role effort rate heart
    drug show leader light voice wife police mind price report decision son view relationship town road
    arm difference value building action model season society tax director position player record
    paper space ground form event official matter center couple site project activity star table need
    court oil situation cost industry figure street image phone data picture practice piece land product
    doctor wall patient worker news test movie north love support technology step baby computer type
    attention film tree source organization hair window evidence population truth song""".split()
)


@dataclass(frozen=True)
class Prompt:
    """One request's text and its output length (None: the run's default)."""

    text: str
    output_tokens: int | None = None


def read_jsonl(path: str | Path) -> list[Prompt]:
    """Prompts from a JSONL file: one object per line with `prompt` (text) and optionally
    `output_tokens` (or `max_tokens`). Blank lines are skipped; any other line that is not such an
    object is an error naming FILE:LINE, so a typo does not silently shrink the run."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise LoadTestError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LoadTestError(f"{path}: cannot read: {error}") from None
    prompts: list[Prompt] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise LoadTestError(f"{path}:{number}: not JSON: {error.msg}") from None
        prompts.append(_prompt(item, f"{path}:{number}"))
    if not prompts:
        raise LoadTestError(f"{path}: no prompts")
    return prompts


def _prompt(item: object, where: str) -> Prompt:
    if not isinstance(item, dict):
        raise LoadTestError(f"{where}: expected an object with a 'prompt' string")
    text = item.get("prompt")
    if not isinstance(text, str) or not text:
        raise LoadTestError(f"{where}: 'prompt' must be a non-empty string")
    output = item.get("output_tokens", item.get("max_tokens"))
    if output is not None and (isinstance(output, bool) or not isinstance(output, int) or output < 1):
        raise LoadTestError(f"{where}: 'output_tokens' must be a positive integer")
    return Prompt(text, output)


def synthetic_prompts(
    count: int, words: int, seed: int = 0, *, output_tokens: int | None = None, range_ratio: float = 0.0
) -> list[Prompt]:
    """`count` prompts of random words, reproducible from `seed`.

    With a `range_ratio`, each prompt's word count and output length are drawn uniformly around `words`
    and `output_tokens` (`length_range`), as vLLM's `--random-range-ratio` draws its lengths: requests of
    one length finish together, so a closed loop sends its next ones in waves, and a latency then depends
    on whether a wave catches an engine step, not on the load.
    """
    if count < 1 or words < 1:
        raise ValueError("count and words must be positive")
    if not 0.0 <= range_ratio < 1.0:
        raise ValueError("range_ratio must be in [0, 1)")
    rng = random.Random(seed)

    def drawn(length: int) -> int:
        return rng.randint(*length_range(length, range_ratio)) if range_ratio else length

    return [
        Prompt(" ".join(rng.choices(WORDS, k=drawn(words))), drawn(output_tokens) if output_tokens else None)
        for _ in range(count)
    ]


def length_range(length: int, range_ratio: float) -> tuple[int, int]:
    """Inclusive bounds [floor(L(1-r)), ceil(L(1+r))], at least 1: vLLM's sampling interval for a length."""
    return max(1, math.floor(length * (1 - range_ratio))), max(1, math.ceil(length * (1 + range_ratio)))


def tokens_per_word(short: tuple[int, int], long: tuple[int, int]) -> float:
    """Slope of prompt tokens over words from two probes (words, prompt tokens reported by the server).

    The intercept (chat template, BOS) is what every request carries anyway; the slope is what a
    target length scales.
    """
    (w1, t1), (w2, t2) = short, long
    if w2 == w1:
        raise ValueError("probes need different word counts")
    slope = (t2 - t1) / (w2 - w1)
    if slope <= 0:
        raise LoadTestError(f"the server's token counts do not grow with the prompt ({t1} for {w1} words, {t2} for {w2})")
    return slope


def words_for_tokens(tokens: int, slope: float) -> int:
    """Words whose content is about `tokens` tokens (at least one)."""
    return max(1, round(tokens / slope))
