"""StreamRecorder: timings and token counts with vLLM's benchmark definitions, and every way a
stream can be wrong."""

from __future__ import annotations

import json

import pytest

from components.loadtest.openai_stream import StreamRecorder, StreamRequest, request_body


def chat_chunk(content: str | None, role: str | None = None) -> str:
    delta = {"content": content} | ({"role": role} if role else {})
    return json.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]})


USAGE = json.dumps({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}})


def test_ttft_is_the_first_choice_chunk_itl_the_gaps_latency_the_last_choice_chunk() -> None:
    recorder = StreamRecorder("chat", start=10.0)
    for payload, now in [
        (chat_chunk("", role="assistant"), 10.5),  # vLLM's role chunk arrives with the first token
        (chat_chunk("Hel"), 10.5),
        (chat_chunk("lo"), 10.7),
        (chat_chunk("!"), 11.0),
        (USAGE, 11.2),  # usage and [DONE] do not move the end of the request
        ("[DONE]", 11.3),
    ]:
        recorder.feed(payload, now)
    result = recorder.finish()
    assert result.ok and result.text == "Hello!"
    assert result.ttft == pytest.approx(0.5)
    assert result.itl == pytest.approx([0.0, 0.2, 0.3])
    assert result.latency == pytest.approx(1.0)
    assert (result.output_tokens, result.prompt_tokens, result.tokens_from_usage) == (3, 12, True)


def test_completions_api_reads_choice_text() -> None:
    recorder = StreamRecorder("completions", start=0.0)
    recorder.feed(json.dumps({"choices": [{"text": "a"}]}), 1.0)
    recorder.feed(json.dumps({"choices": [{"text": "b"}]}), 2.0)
    recorder.feed("[DONE]", 2.0)
    result = recorder.finish()
    assert (result.text, result.ttft, result.itl, result.latency) == ("ab", 1.0, [1.0], 2.0)


def test_without_usage_each_chunk_counts_as_one_token() -> None:
    recorder = StreamRecorder("chat", start=0.0)
    for i in range(4):
        recorder.feed(chat_chunk("x"), float(i))
    recorder.feed("[DONE]", 4.0)
    result = recorder.finish()
    assert (result.output_tokens, result.tokens_from_usage) == (4, False)


@pytest.mark.parametrize(
    ("payloads", "error"),
    [
        ([chat_chunk("a")], "stream ended before [DONE]"),
        ([USAGE, "[DONE]"], "empty stream: no token chunk before [DONE]"),
        (["[DONE]"], "empty stream: no token chunk before [DONE]"),
        ([chat_chunk("a"), "{not json", "[DONE]"], "malformed SSE: data is not JSON: '{not json'"),
        (["[1, 2]", "[DONE]"], "malformed SSE: data is not a JSON object: '[1, 2]'"),
        ([json.dumps({"error": {"message": "boom", "code": 500}})], "server error in stream: boom"),
    ],
)
def test_broken_streams_are_errors(payloads: list[str], error: str) -> None:
    recorder = StreamRecorder("chat", start=0.0)
    for payload in payloads:
        recorder.feed(payload, 1.0)
    assert recorder.finish().error == error


def test_nothing_after_done_is_recorded() -> None:
    recorder = StreamRecorder("chat", start=0.0)
    recorder.feed(chat_chunk("a"), 1.0)
    assert recorder.feed("[DONE]", 1.0) is False
    assert recorder.feed(chat_chunk("b"), 2.0) is False
    assert recorder.finish().text == "a"


def test_request_body_streams_with_usage_and_sets_ignore_eos_only_when_asked() -> None:
    chat = request_body(StreamRequest(model="m", prompt="hi", max_tokens=8, ignore_eos=True))
    assert chat == {
        "model": "m", "max_tokens": 8, "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}], "ignore_eos": True,
    }
    plain = request_body(StreamRequest(model="m", prompt="hi", max_tokens=8, api="completions", temperature=0.0))
    assert plain["prompt"] == "hi" and "messages" not in plain and "ignore_eos" not in plain and plain["temperature"] == 0.0
