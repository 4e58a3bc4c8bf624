"""A minimal HTTP/1.1 client for the measured streaming requests: keep-alive pool, one POST at a time
per connection, and a receive path that only stamps the clock and keeps the bytes.

Why not aiohttp here (it still serves `/v1/models`, the health checks and the probes' neighbours):
at hundreds of concurrent streams the client's time per SSE event is what delays the TTFT it stamps.
Measured on the 2-core machine, aiohttp spent about 1 ms of CPU building and sending each request and
40-50 us per received event (its protocol, parser, stream reader, a task wake-up per read), and the stamp
was taken only when the request's task next ran, behind every other stream's wake-up. Here:

- every read is stamped with the kernel's receive time (arrival.py), so neither the other streams' work
  nor the machine descheduling the client moves a token's stamp; a read is taken by a socket reader
  callback on the event loop, without a task wake-up;
- the hot path per read is the clock, HTTP framing (chunked or Content-Length, a few slices) and two
  list appends; the task waits once for the whole response, not once per read, and the SSE and JSON
  parsing happen after the response has ended (openai_stream.py), from the stored (time, bytes) pairs;
- a request is one pre-built `bytes` written to a pooled connection, whose TCP handshake (and TLS's)
  happened before the level's clock started (`open`).

What TTFT and ITL mean does not change: every payload piece keeps the time of the network read that
brought it, which is what a per-chunk `perf_counter()` in vLLM's client approximates.

Scope, deliberately: http and https (TLS via the standard library's memory BIO), identity encoding (no
Accept-Encoding is sent), no proxies, no redirects. A reused keep-alive connection that the server
closed while idle is retried once on a new connection, before any response byte has arrived.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from components.loadtest import arrival
from components.loadtest.arrival import READ_BYTES

MAX_HEAD_BYTES = 64 * 1024
SIZE_LINE_READ = 16
"""A read at a chunk's start: its size line (a few hex digits and CRLF) and the first bytes of its data, all one
segment; the rest of the chunk comes with the next read (read_size)."""
_HEAD, _SIZE, _DATA, _DATA_END, _TRAILER, _LENGTH, _UNTIL_CLOSE, _DONE = range(8)


class HttpError(Exception):
    """The server broke HTTP/1.1 framing, or the connection ended mid-response."""


@dataclass
class StreamedResponse:
    """One response: status, headers (lower-case names), and the body as (read time, bytes) pieces.

    `stamps[i]` is the perf_counter reading taken when the network read that carried `pieces[i]`
    was handed to the protocol; a read may carry several pieces (several HTTP chunks).
    """

    status: int = 0
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    pieces: list[bytes] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)
    read_delay: float = 0.0
    """The longest any of its bytes waited in the socket before the client read them: what stamping in user
    space, as most clients do, would have added to a token's time."""

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (aiohttp's default when there is none)."""
        value = self.headers.get("content-type", "application/octet-stream")
        return value.split(";", 1)[0].strip().lower()

    def body(self) -> bytes:
        """The whole body (for error messages; the stream path reads `pieces` with their stamps)."""
        return b"".join(self.pieces)


class _Framer:
    """Incremental HTTP/1.1 response framing: head, then a chunked, sized or close-delimited body.

    Pure (bytes in, state out), so it is tested without sockets; `feed` returns True once the
    response is complete.
    """

    def __init__(self) -> None:
        self.response = StreamedResponse()
        self.keep_alive = False
        self._state = _HEAD
        self._buffer = b""
        self._remaining = 0

    @property
    def done(self) -> bool:
        return self._state == _DONE

    @property
    def started(self) -> bool:
        """Whether any byte of the response has arrived (a request on a dead connection has none)."""
        return bool(self._buffer) or self._state != _HEAD

    def feed(self, data: bytes, now: float) -> bool:
        """Take one network read received at `now`. Raises HttpError on a malformed response."""
        if self._state == _DONE:
            raise HttpError("bytes after the end of the response")
        if self._state == _UNTIL_CLOSE:
            self.response.pieces.append(data)
            self.response.stamps.append(now)
            return False
        if self._state == _SIZE and not self._buffer:
            # The common read of a token stream: exactly one whole chunk (one SSE event), taken
            # without the general loop below; anything else (a chunk extension, a split) goes on.
            line_end = data.find(b"\r\n", 0, 18)
            if line_end > 0 and data.endswith(b"\r\n"):
                try:
                    size = int(data[:line_end], 16)
                except ValueError:
                    size = 0
                if size and len(data) == line_end + size + 4:
                    self.response.pieces.append(data[line_end + 2 : -2])
                    self.response.stamps.append(now)
                    return False
        buffer = self._buffer + data if self._buffer else data
        self._buffer = b""
        pos, end = 0, len(buffer)
        pieces, stamps = self.response.pieces, self.response.stamps
        while pos < end:
            state = self._state
            if state == _DATA or state == _LENGTH:
                take = min(self._remaining, end - pos)
                pieces.append(buffer[pos : pos + take])
                stamps.append(now)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _DATA_END if state == _DATA else _DONE
            elif state == _SIZE:
                line_end = buffer.find(b"\r\n", pos)
                if line_end < 0:
                    break
                try:
                    size = int(buffer[pos:line_end].split(b";", 1)[0], 16)
                except ValueError:
                    raise HttpError(f"bad chunk size line {buffer[pos:line_end][:40]!r}") from None
                pos = line_end + 2
                self._remaining = size
                self._state = _DATA if size else _TRAILER
            elif state == _DATA_END:
                if end - pos < 2:
                    break
                if buffer[pos : pos + 2] != b"\r\n":
                    raise HttpError("chunk not followed by CRLF")
                pos += 2
                self._state = _SIZE
            elif state == _TRAILER:
                line_end = buffer.find(b"\r\n", pos)
                if line_end < 0:
                    break
                self._state = _DONE if line_end == pos else _TRAILER
                pos = line_end + 2
            elif state == _HEAD:
                head_end = buffer.find(b"\r\n\r\n", pos)
                if head_end < 0:
                    if end - pos > MAX_HEAD_BYTES:
                        raise HttpError("response head larger than 64 KiB")
                    break
                self._head(buffer[pos:head_end])
                pos = head_end + 4
            elif state == _UNTIL_CLOSE:
                pieces.append(buffer[pos:])
                stamps.append(now)
                pos = end
            else:  # _DONE with bytes left: a second response nobody asked for
                raise HttpError("bytes after the end of the response")
        if pos < end:
            self._buffer = buffer[pos:]
        return self._state == _DONE

    def read_size(self) -> int:
        """How much the next read may take without crossing the end of the current chunk: the rest of its data
        and its CRLF, or a size line and the start of the next chunk's data (one segment either way)."""
        if self._state == _DATA:
            return self._remaining + 2
        if self._state == _DATA_END:
            return max(1, 2 - len(self._buffer))
        if self._state == _SIZE:
            return SIZE_LINE_READ
        return READ_BYTES

    def feed_eof(self) -> bool:
        """The connection closed: True when that ends the response (a close-delimited body)."""
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE
        return self._state == _DONE

    def _head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise HttpError(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
        status = int(code)
        if 100 <= status < 200:
            return  # an interim response (100 Continue): the real head follows
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise HttpError(f"bad header line {line[:60]!r}")
            headers[name.strip().lower()] = value.strip()
        response = self.response
        response.status, response.reason, response.headers = status, reason, headers
        connection = {token.strip().lower() for token in headers.get("connection", "").split(",")}
        self.keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            raise HttpError(f"unsupported Content-Encoding {encoding!r} (none was accepted)")
        if status in (204, 304):
            self._state = _DONE
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = _SIZE
        elif "content-length" in headers:
            try:
                self._remaining = int(headers["content-length"])
            except ValueError:
                raise HttpError(f"bad Content-Length {headers['content-length']!r}") from None
            self._state = _LENGTH if self._remaining else _DONE
        else:
            self._state = _UNTIL_CLOSE
            self.keep_alive = False


class _Connection:
    """One keep-alive connection on a raw non-blocking socket; `_readable` is the whole per-read hot path.

    Every read is stamped with the kernel's receive time (arrival.py), so a client that the machine
    deschedules for a while still records when each token arrived, not when it got around to reading it.
    TLS runs through a memory BIO: the ciphertext's arrival stamps the plaintext it decrypts to.
    """

    def __init__(self, sock: socket.socket, tls: ssl.SSLObject | None = None,
                 tls_in: ssl.MemoryBIO | None = None, tls_out: ssl.MemoryBIO | None = None) -> None:
        self.sock = sock
        self.closed = False
        self._tls, self._tls_in, self._tls_out = tls, tls_in, tls_out
        self._framer: _Framer | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._out = b""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    async def open(cls, host: str, port: int, tls: ssl.SSLContext | None) -> _Connection:
        """Connect (and shake hands, for https); OSError when the server cannot be reached."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        error: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, address)
                if family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a request is one small write
                arrival.enable(sock)
                if tls is None:
                    return cls(sock)
                return cls(sock, *await _handshake(loop, sock, tls, host))
            except OSError as failed:
                sock.close()
                error = failed
            except BaseException:
                sock.close()
                raise
        raise error or OSError(f"cannot resolve {host}")

    def _readable(self) -> None:
        """Read until the socket is empty, each read no further than the current HTTP chunk's end (plain HTTP):
        a server writes one chunk per token, so each token keeps its own segment's receive time even when the
        client was descheduled while several arrived (Linux stamps a read with its last segment's time)."""
        while not self.closed:
            framer = self._framer
            size = framer.read_size() if framer is not None and self._tls is None else READ_BYTES
            try:
                data, now, read_at, _ = arrival.receive(self.sock, size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self._lost(error)
                return
            if framer is not None:
                framer.response.read_delay = max(framer.response.read_delay, read_at - now)
            if not data:
                self._lost(None)
                return
            ended = False
            if self._tls is not None:
                try:
                    data, ended = self._decrypt(data)
                except ssl.SSLError as error:
                    self._lost(error)
                    return
            if data:
                self._deliver(data, now)
            if ended:
                self._lost(None)
            if ended or len(data) < size or self._framer is None or self._framer.done:
                return

    def _deliver(self, data: bytes, now: float) -> None:
        framer = self._framer
        if framer is None:  # bytes nobody asked for: the connection cannot be trusted any more
            self._abort()
            return
        try:
            complete = framer.feed(data, now)
        except HttpError as error:
            self._finish(error)
            self._abort()
            return
        if complete:
            self._finish(None)

    def _decrypt(self, data: bytes) -> tuple[bytes, bool]:
        """(the plaintext the ciphertext in `data` completes, whether the peer ended the TLS session)."""
        assert self._tls is not None and self._tls_in is not None
        self._tls_in.write(data)
        plain = []
        while True:
            try:
                piece = self._tls.read(READ_BYTES)
            except ssl.SSLWantReadError:
                return b"".join(plain), False
            except ssl.SSLZeroReturnError:
                return b"".join(plain), True
            if not piece:
                return b"".join(plain), True
            plain.append(piece)

    def start(self, request: bytes, waiter: asyncio.Future[None]) -> _Framer:
        """Send one request; `waiter` is settled when its response has ended (or failed)."""
        self._framer = framer = _Framer()
        self._waiter = waiter
        if self._tls is not None:
            assert self._tls_out is not None
            self._tls.write(request)
            request = self._tls_out.read()
        self._send(request)
        return framer

    def _send(self, data: bytes) -> None:
        if not self._out:
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as error:
                self._lost(error)
                return
            data = data[sent:]
            if data:
                self._loop.add_writer(self.sock.fileno(), self._flush)
        self._out += data

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._lost(error)
            return
        self._out = self._out[sent:]
        if not self._out:
            self._loop.remove_writer(self.sock.fileno())

    def release(self) -> bool:
        """After a response: whether the connection may carry another request."""
        framer, self._framer, self._waiter = self._framer, None, None
        return framer is not None and framer.done and framer.keep_alive and not self.closed

    def close(self) -> None:
        self._framer = None
        self._abort()

    def _lost(self, error: OSError | ssl.SSLError | None) -> None:
        """The peer closed (error None) or the socket failed: settle the request in flight, then close."""
        framer = self._framer
        if framer is not None and self._waiter is not None and not self._waiter.done():
            if error is None and framer.feed_eof():
                self._finish(None)
            else:
                reason = f": {error}" if error else ""
                self._finish(ConnectionResetError(f"server closed the connection before the response ended{reason}"))
        self._abort()

    def _finish(self, error: BaseException | None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def _abort(self) -> None:
        if self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
            self._loop.remove_writer(self.sock.fileno())
            self.sock.close()
        self.closed = True


async def _handshake(loop: asyncio.AbstractEventLoop, sock: socket.socket, context: ssl.SSLContext,
                     host: str) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    """TLS over the connected socket through memory BIOs (so reads keep their kernel stamps afterwards)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=host)
    while True:
        try:
            tls.do_handshake()
            await loop.sock_sendall(sock, outgoing.read())
            return tls, incoming, outgoing
        except ssl.SSLWantReadError:
            await loop.sock_sendall(sock, outgoing.read())
            data = await loop.sock_recv(sock, READ_BYTES)
            if not data:
                raise ConnectionResetError("the server closed the connection during the TLS handshake") from None
            incoming.write(data)


class StreamClient:
    """POSTs JSON to one server over pooled keep-alive connections (as many as are in use at once).

    The pool grows to the concurrency the caller drives (a new TCP connection per request would be
    timed as TTFT); a connection goes back to it only after a complete keep-alive response.
    """

    def __init__(self, base_url: str, tls: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self._host_header = parts.netloc.rpartition("@")[2]
        self._ssl = (tls or ssl.create_default_context()) if parts.scheme == "https" else None
        self._idle: list[_Connection] = []

    async def __aenter__(self) -> StreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every idle connection (one in use is closed by its request's end)."""
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    def encode_post(self, path: str, body: bytes) -> bytes:
        """The request bytes: one write, so the server sees the request in one segment."""
        head = (
            f"POST {self._prefix}{path} HTTP/1.1\r\nHost: {self._host_header}\r\n"
            f"Content-Type: application/json\r\nAccept: text/event-stream\r\nUser-Agent: inferfleet-bench\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode("latin-1") + body

    async def post(self, request: bytes) -> StreamedResponse:
        """Send `request` (from encode_post) and wait for the whole response.

        Raises OSError when the server cannot be reached, HttpError or ConnectionResetError when the
        response is broken; a cancelled call (a timeout) closes its connection.
        """
        loop = asyncio.get_running_loop()
        for attempt in (0, 1):
            connection, reused = self._take()
            if connection is None:
                connection = await self._connect()
            waiter = loop.create_future()
            framer = connection.start(request, waiter)
            try:
                await waiter
            except ConnectionResetError:
                connection.close()
                if reused and attempt == 0 and not framer.started:
                    continue  # the server closed the idle connection as we sent: once more, on a new one
                raise
            except BaseException:
                connection.close()
                raise
            if connection.release():
                self._idle.append(connection)
            else:
                connection.close()
            return framer.response
        raise AssertionError("unreachable")

    async def open(self, connections: int) -> None:
        """Open connections until `connections` are idle, so that no timed request pays for a TCP (or TLS)
        handshake: a closed loop of N streams first sends N requests at once, and their connects, queued
        behind each other in both event loops, would be timed as TTFT (a first wave of 256 new connections
        here added 30 to 60 ms to every request of the wave)."""
        self._idle = [c for c in self._idle if not c.closed]
        missing = connections - len(self._idle)
        if missing > 0:
            self._idle.extend(await asyncio.gather(*(self._connect() for _ in range(missing))))

    async def _connect(self) -> _Connection:
        return await _Connection.open(self._host, self._port, self._ssl)

    def _take(self) -> tuple[_Connection | None, bool]:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection, True
        return None, False
