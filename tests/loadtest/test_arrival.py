"""Kernel receive stamps moved onto perf_counter's clock: a process descheduled between its clock reads must
not move stamps."""

from __future__ import annotations

import socket
import time

from components.loadtest import arrival


def scripted_clocks(monkeypatch, perf: list[float], realtime: list[float]) -> None:
    perf_iter, real_iter = iter(perf), iter(realtime)
    monkeypatch.setattr(time, "perf_counter", lambda: next(perf_iter))
    monkeypatch.setattr(time, "clock_gettime", lambda _clock: next(real_iter))


def test_a_deschedule_between_the_clock_reads_is_not_taken_as_the_offset(monkeypatch) -> None:
    """True offset 1000 s. The first bracket is 200 ms wide (descheduled after the first perf_counter read, as
    a busy machine does), so its midpoint is 100 ms off; the second bracket is 2 us wide and is kept."""
    scripted_clocks(monkeypatch, perf=[10.0, 10.2, 20.0, 20.000002], realtime=[1010.2, 1020.000001])
    assert abs(arrival.realtime_offset() - 1000.0) < 1e-5


def test_the_narrowest_bracket_wins_when_none_is_tight(monkeypatch) -> None:
    perf = [0.0, 0.5, 1.0, 1.3, 2.0, 2.1, 3.0, 3.4, 4.0, 4.9]
    realtime = [100.5, 101.3, 102.05, 103.4, 104.9]  # each read at the end of its bracket; offset 100
    scripted_clocks(monkeypatch, perf, realtime)
    assert abs(arrival.realtime_offset() - 100.0) <= 0.05 + 1e-9  # the 0.1 s bracket: off by at most half of it


def test_stamps_of_a_real_socket_fall_between_the_send_and_the_read() -> None:
    """Loopback TCP: the stamp is taken when the byte arrived, before a read that comes 50 ms later (a busy
    machine only makes that gap longer)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()) as left:
            right, _ = server.accept()
            with right:
                arrival.enable(right)
                sent = time.perf_counter()
                left.sendall(b"x")
                time.sleep(0.05)
                read = arrival.receive(right)
    assert read.data == b"x"
    assert sent - 0.002 <= read.arrived <= read.read_at
    if read.kernel:
        assert read.read_at - read.arrived >= 0.04, "the kernel's stamp, not the late read's time"
