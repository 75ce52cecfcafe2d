"""What both benchmarks read from /proc: CPU per process tree, the machine's busy time,
and waiting for the rest of the machine to quieten down before measuring. Linux only."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """utime + stime (all threads) of each of the given processes, in seconds."""
    cpu = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (14, 15)
    return cpu


def cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_by_pid(pids).values())


class CpuSampler:
    """CPU used by a changing set of processes over a time window.

    Polls /proc every ``interval`` seconds, so that processes that exit during the window
    (a PostgreSQL backend of a connection the pool closed, say) keep the CPU last seen;
    processes born during the window count from zero.
    """

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.25) -> None:
        self._pids = pids
        self._interval = interval
        self._baseline: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._baseline = cpu_by_pid(self._pids())
        self._last = dict(self._baseline)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        for pid, cpu in cpu_by_pid(self._pids()).items():
            self._last[pid] = max(cpu, self._last.get(pid, 0.0))

    def _poll(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    @property
    def seconds(self) -> float:
        return sum(self._last.values()) - sum(self._baseline.values())


def _cpu_line() -> list[int]:
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores), from /proc/stat, steal included."""
    fields = _cpu_line()
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def steal_seconds() -> float:
    """CPU time the hypervisor gave to other virtual machines while this one had work:
    the machine itself running slow (0 on bare metal)."""
    fields = _cpu_line()
    return (fields[7] if len(fields) > 7 else 0) / CLK_TCK


def wait_until_quiet(
    limit: float, threshold: float, own: Callable[[], list[int]], log: Callable[[str], None]
) -> float:
    """Wait (up to ``limit`` s) until the rest of the machine uses < ``threshold`` cores;
    return the cores it used in the last look.

    Other work on a 2-core machine (a test suite, a browser) shifts every figure; this
    only delays the run, and the measured leftover is reported per row anyway.
    """
    deadline = time.monotonic() + limit
    while True:
        busy0, wall0 = machine_busy_seconds(), time.monotonic()
        with CpuSampler(own) as mine:
            time.sleep(1.5)
        busy = machine_busy_seconds() - busy0 - mine.seconds
        cores = max(busy, 0.0) / (time.monotonic() - wall0)
        if cores < threshold or time.monotonic() >= deadline:
            if cores >= threshold:
                log(f"the machine is still busy elsewhere ({cores:.2f} cores); measuring anyway")
            return cores
        log(f"waiting for the machine to quieten: {cores:.2f} cores busy elsewhere")
        time.sleep(3.0)
