"""What a benchmark measures while a run lasts: RSS and CPU time of the processes (psutil), and
request counts from the emulators' control APIs."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import psutil

from bench.stack import Proc

MB = 1024 * 1024


@dataclass
class ProcStats:
    start_rss: int = 0
    peak_rss: int = 0
    end_rss: int = 0
    cpu_s: float = 0.0


class Sampler:
    """Samples the RSS of the given processes every `interval` seconds while a run lasts."""

    def __init__(self, procs: list[Proc], interval: float) -> None:
        self.procs = procs
        self.interval = interval
        self.stats: dict[str, ProcStats] = {}
        self._cpu0: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _rss(proc: Proc) -> int:
        try:
            return int(proc.ps.memory_info().rss)
        except psutil.Error:
            return 0

    @staticmethod
    def _cpu(proc: Proc) -> float:
        try:
            t = proc.ps.cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return 0.0

    def sample(self) -> None:
        for proc in self.procs:
            rss = self._rss(proc)
            st = self.stats[proc.name]
            st.peak_rss = max(st.peak_rss, rss)
            if rss:
                st.end_rss = rss

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        for proc in self.procs:
            rss = self._rss(proc)
            self.stats[proc.name] = ProcStats(start_rss=rss, peak_rss=rss, end_rss=rss)
            self._cpu0[proc.name] = self._cpu(proc)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> dict[str, ProcStats]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()
        for proc in self.procs:
            self.stats[proc.name].cpu_s = self._cpu(proc) - self._cpu0[proc.name]
        return self.stats


# -------------------------------------------------------------------------------------------------
# Emulator statistics
# -------------------------------------------------------------------------------------------------


def _template(key: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/{id}", key)


class ProviderCounter:
    """Per-endpoint request counts from an emulator's control API."""

    def __init__(self, client: httpx.AsyncClient, provider: str, url: str) -> None:
        self.client, self.provider, self.url = client, provider, url

    async def snapshot(self) -> tuple[Counter[str], dict[str, Any]]:
        if self.provider == "mailchimp":
            data = (await self.client.get(f"{self.url}/_control/stats")).json()
            return Counter(data["requests"]), data
        data = (await self.client.get(f"{self.url}/_control/state")).json()
        counts: Counter[str] = Counter()
        for key, n in data["request_counts"].items():
            counts[_template(key)] += n
        return counts, data

    async def reset_mailchimp_peaks(self) -> None:
        if self.provider == "mailchimp":
            await self.client.post(f"{self.url}/_control/stats/reset")


async def onoffice_counts(client: httpx.AsyncClient, url: str) -> tuple[int, Counter[str]]:
    data = (await client.get(f"{url}/_control/state", params={"addresses": "false"})).json()
    return int(data["http_requests"]), Counter(data["request_counts"])


def writes(counts: Mapping[str, int]) -> int:
    return sum(n for key, n in counts.items() if not key.startswith("GET"))
