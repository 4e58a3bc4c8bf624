"""SseParser: events out of bytes that arrive in arbitrary pieces."""

from __future__ import annotations

import pytest

from components.loadtest.sse import SseParser

STREAM = b'data: {"a": 1}\n\ndata: {"b": 2}\n\n: ping\n\ndata: [DONE]\n\n'


def test_whole_stream_yields_each_data_payload_and_skips_comments() -> None:
    parser = SseParser()
    assert parser.feed(STREAM) == ['{"a": 1}', '{"b": 2}', "[DONE]"]
    assert parser.finish() == []


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_any_split_of_the_bytes_gives_the_same_events(size: int) -> None:
    parser = SseParser()
    events = [event for i in range(0, len(STREAM), size) for event in parser.feed(STREAM[i : i + size])]
    assert events == ['{"a": 1}', '{"b": 2}', "[DONE]"]


def test_crlf_and_cr_line_ends_even_split_between_reads() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r\ndata: y\r\r") == ["x", "y"]


def test_multi_line_data_is_joined_with_newlines_and_other_fields_ignored() -> None:
    parser = SseParser()
    assert parser.feed(b"event: message\nid: 7\ndata: one\ndata:two\nretry: 10\n\n") == ["one\ntwo"]


def test_a_utf8_character_split_across_reads_is_decoded_whole() -> None:
    encoded = 'data: "é"\n\n'.encode()
    split = encoded.index(b"\xc3") + 1
    parser = SseParser()
    assert parser.feed(encoded[:split]) == []
    assert parser.feed(encoded[split:]) == ['"é"']


def test_an_unterminated_last_event_is_returned_by_finish() -> None:
    parser = SseParser()
    assert parser.feed(b"data: [DONE]") == []
    assert parser.finish() == ["[DONE]"]


def test_bytes_that_are_not_utf8_raise() -> None:
    with pytest.raises(UnicodeDecodeError):
        SseParser().feed(b"data: \xff\n\n")
