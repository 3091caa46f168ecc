"""Token buckets per key (an integration, a kiosk and client address): in-process state only, so
a limit holds per replica. The clock is passed in, so tests move it."""

from __future__ import annotations


class TokenBuckets:
    """``rate`` tokens per second refill each key's bucket, up to ``burst``."""

    def __init__(self, *, rate: float, burst: float, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str, now: float, *, rate: float | None = None, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; return 0 when allowed, else the seconds to wait before retrying.

        A per-key ``rate`` (say, one integration's own limit) scales the burst with it.
        """
        rate = rate or self.rate
        burst = max(self.burst * rate / self.rate, cost)
        tokens, last = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens >= cost:
            if key not in self._buckets and len(self._buckets) >= self.max_keys:
                self._evict(now)
            self._buckets[key] = (tokens - cost, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (cost - tokens) / rate if rate > 0 else 60.0

    def _evict(self, now: float) -> None:
        """Forget full buckets (they hold nothing a new one would not), else the oldest tenth."""
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.burst
        ]
        for key in full or list(self._buckets)[: max(1, self.max_keys // 10)]:
            del self._buckets[key]
