"""When bytes arrived, as the kernel saw it: receive timestamps for the bench client and the reference server.

A program stamps a read when it gets to run; on a busy machine that is long after the bytes arrived. On a
2-core machine with vLLM's CPU build running, any other process was measured descheduled for 150 to 500 ms
at a time (about 2 ms of CPU in a 200 ms window, every switch involuntary), so a client that stamps in user
space reports tokens that arrived on time as one late burst. With SO_TIMESTAMPNS, Linux records when each
segment was received and hands the stamp to `recvmsg` as ancillary data; the offset between the realtime clock
and perf_counter (`realtime_offset`) moves it onto the clock the rest of the code uses. Where the option does not exist (not Linux), the read's own time stands in.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import NamedTuple

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Linux's value (asm-generic/socket.h; Python's socket module does not name it): a struct timespec per read."""
KERNEL_STAMPS = sys.platform == "linux"
ANCILLARY_BYTES = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0
READ_BYTES = 256 * 1024


def enable(sock: socket.socket) -> None:
    """Ask the kernel to stamp what this socket receives (a listener's accepted sockets inherit it)."""
    if KERNEL_STAMPS:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


class Read(NamedTuple):
    """One read: its bytes (empty at the peer's EOF), when they arrived and when the program read them (both on
    the perf_counter clock), and whether `arrived` is the kernel's stamp."""

    data: bytes
    arrived: float
    read_at: float
    kernel: bool


def receive(sock: socket.socket, size: int = READ_BYTES) -> Read:
    """Read up to `size` bytes of what is there (raises what `recv` raises, BlockingIOError when nothing is).

    Linux stamps a TCP read with the receive time of the *last* segment it copied from: a read that spans
    two segments gives the first one the second one's time. A caller that knows where a segment ends (an
    HTTP chunk, one server write) asks for no more than that."""
    if not KERNEL_STAMPS:
        data = sock.recv(size)
        now = time.perf_counter()
        return Read(data, now, now, False)
    data, ancillary, _, _ = sock.recvmsg(size, ANCILLARY_BYTES)
    now = time.perf_counter()
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
            seconds, nanoseconds = struct.unpack("qq", payload[:16])
            arrived = seconds + nanoseconds / 1e9 - realtime_offset()
            return Read(data, min(now, arrived), now, True)
    return Read(data, now, now, False)


def realtime_offset(tries: int = 5, tight_s: float = 20e-6) -> float:
    """CLOCK_REALTIME minus perf_counter, read between two perf_counter readings. A process descheduled between
    the two clock reads would put every stamp early by as long as it was away (tens to hundreds of ms on a busy
    machine), so the narrowest of a few brackets is kept, the first under `tight_s` at once."""
    best_width, best_offset = float("inf"), 0.0
    for _ in range(tries):
        before = time.perf_counter()
        realtime = time.clock_gettime(time.CLOCK_REALTIME)
        after = time.perf_counter()
        if after - before < best_width:
            best_width, best_offset = after - before, realtime - (before + after) / 2
        if best_width < tight_s:
            break
    return best_offset
