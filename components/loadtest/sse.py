"""An incremental Server-Sent Events parser for OpenAI-style token streams.

Bytes arrive in arbitrary pieces (a network read may end mid-line or mid-UTF-8 character), so the
parser buffers until a full event (ended by a blank line) is in, then yields its `data` payload.
It follows the WHATWG event-stream rules that matter for LLM streams: LF, CRLF or CR line ends,
`:` comment lines (keep-alive pings) skipped, several `data:` lines joined with newlines, one
optional space after the colon, other fields (`event`, `id`, `retry`) ignored.
"""

from __future__ import annotations


class SseParser:
    """Feed it bytes as they arrive; it returns the data payloads of the events completed so far.

    Lines are split as bytes and only then decoded: a line-end byte never occurs inside a UTF-8
    multi-byte character, so a character split across two reads is whole by the time its line is.
    Decoding line by line (not read by read) is also what keeps the per-chunk cost low at hundreds
    of concurrent streams.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        """Payloads of every event that `chunk` completes, in order.

        Raises UnicodeDecodeError on a line that is not UTF-8: the event-stream format is UTF-8 only,
        so a server sending anything else is broken, not merely slow.
        """
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two reads
        if chunk:
            self._pending_cr = chunk.endswith(b"\r")
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in buffer:
            self._buffer = buffer
            return []
        *lines, self._buffer = buffer.split(b"\n")
        events: list[str] = []
        for line in lines:
            self._line(line, events)
        return events

    def finish(self) -> list[str]:
        """At end of stream: the payload of a last event the server did not close with a blank line.

        Strictly such an event is incomplete; servers that end a stream with `data: [DONE]` and no
        blank line exist, so it is returned and the caller judges the payload.
        """
        events: list[str] = []
        if self._buffer:
            self._line(self._buffer, events)
            self._buffer = b""
        if self._data:
            events.append("\n".join(self._data))
            self._data = []
        return events

    def _line(self, line: bytes, events: list[str]) -> None:
        if not line:
            if self._data:
                events.append("\n".join(self._data))
                self._data = []
            return
        if line.startswith(b"data:"):
            value = line[5:].decode("utf-8")
            self._data.append(value[1:] if value.startswith(" ") else value)
        elif not line.startswith(b":"):
            line.decode("utf-8")  # other fields are ignored, but must still be text
