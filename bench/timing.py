from __future__ import annotations

import time
from collections.abc import Callable


def best_of(repeat: int, fn: Callable[[], None]) -> float:
    """Best wall time of `repeat` runs: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def line(name: str, n: int, seconds: float, baseline_name: str, baseline_seconds: float) -> str:
    rate = n / seconds
    base = n / baseline_seconds
    return (f"{name}: {rate:,.0f} rows/s  |  baseline {baseline_name}: {base:,.0f} rows/s  "
            f"|  ratio {rate / base:.2f}")
