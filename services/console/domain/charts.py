"""Charts drawn on the server as SVG: accessible (a title and a description; the page shows the same
numbers in a table), printable, testable, and allowed by the pages' policy (presentation attributes
only, no inline ``style``, no script). Pure: numbers in, markup out (escaped)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from markupsafe import Markup

INK, MUTED, ACCENT, BAND, GRID, BAD, GOOD = (
    "#1b1f24",
    "#57606a",
    "#0b5cad",
    "#c9def5",
    "#d0d7de",
    "#b42318",
    "#146c2e",
)


@dataclass(frozen=True)
class Point:
    day: date
    value: float | None
    low: float | None
    high: float | None
    n: int


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _open(width: int, height: int, title: str, desc: str, cls: str) -> str:
    return (
        f'<svg class="chart {cls}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{cls}-t {cls}-d" xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">'
        f'<title id="{cls}-t">{escape(title)}</title><desc id="{cls}-d">{escape(desc)}</desc>'
    )


def trend(points: Sequence[Point], *, title: str, lo: float, hi: float, cls: str = "trend") -> Markup:
    """A line of the score per period with its 95% interval as a band; periods without answers are gaps."""
    width, height, left, right, top, bottom = 720, 240, 44, 12, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    known = [p for p in points if p.value is not None]
    desc = (
        "; ".join(f"{p.day.isoformat()}: {_num(p.value)} (n={p.n})" for p in known if p.value is not None)
        or "No answers in this period."
    )
    out = [_open(width, height, title, desc, cls)]

    def y(v: float) -> float:
        return top + plot_h * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))

    def x(i: int) -> float:
        return left + (plot_w * i / (len(points) - 1) if len(points) > 1 else plot_w / 2)

    for tick in _ticks(lo, hi):
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11" fill="{MUTED}">{_num(tick)}</text>'
        )
    for segment in _segments(points):
        band = [(x(i), y(p.high)) for i, p in segment if p.high is not None]
        band += [(x(i), y(p.low)) for i, p in reversed(segment) if p.low is not None]
        if len(band) >= 3:
            coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in band)
            out.append(f'<polygon points="{coords}" fill="{BAND}" stroke="none"/>')
        line = " ".join(f"{x(i):.1f},{y(p.value):.1f}" for i, p in segment if p.value is not None)
        if len(segment) > 1:
            out.append(f'<polyline points="{line}" fill="none" stroke="{ACCENT}" stroke-width="2.5"/>')
        for i, p in segment:
            if p.value is not None:
                out.append(f'<circle cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="3.5" fill="{ACCENT}"/>')
    step = max(1, len(points) // 6)
    for i, p in enumerate(points):
        if i % step == 0 or i == len(points) - 1:
            out.append(
                f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="{_anchor(i, len(points))}" font-size="11" '
                f'fill="{MUTED}">'
                f"{p.day.strftime('%d %b')}</text>"
            )
    if not known:
        out.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="14" fill="{MUTED}">'
            "No answers in this period</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def _anchor(i: int, count: int) -> str:
    return "start" if i == 0 and count > 1 else "end" if i == count - 1 and count > 1 else "middle"


def _segments(points: Sequence[Point]) -> list[list[tuple[int, Point]]]:
    runs: list[list[tuple[int, Point]]] = [[]]
    for i, p in enumerate(points):
        if p.value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, p))
    return [r for r in runs if r]


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    step = 50 if span > 150 else 25 if span > 60 else 20 if span > 40 else 1 if span <= 7 else 10
    first = lo if lo % step == 0 else lo + (step - lo % step)
    ticks, t = [], first
    while t <= hi + 1e-9:
        ticks.append(t)
        t += step
    return ticks


def bars(
    rows: Sequence[Bar], *, title: str, lo: float, hi: float, unit: str = "", cls: str = "bars"
) -> Markup:
    """Horizontal bars with their 95% interval as a whisker; a row without a value says why (its note)."""
    row_h, label_w, width, pad = 30, 170, 720, 56
    height = max(1, len(rows)) * row_h + 24
    plot_w = width - label_w - pad
    desc = "; ".join(
        f"{r.label}: {_num(r.value)}{unit}" if r.value is not None else f"{r.label}: {r.note or 'no value'}"
        for r in rows
    )
    out = [_open(width, height, title, desc or "Nothing to show.", cls)]

    def x(v: float) -> float:
        return label_w + plot_w * (min(max(v, lo), hi) - lo) / (hi - lo)

    zero = x(0) if lo < 0 < hi else x(lo)
    out.append(f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="0" y2="{height - 20}" stroke="{MUTED}"/>')
    for i, r in enumerate(rows):
        top = i * row_h + 4
        mid = top + row_h / 2 - 2
        label = r.label if len(r.label) <= 22 else r.label[:21] + "…"
        out.append(
            f'<text x="{label_w - 8}" y="{mid + 4:.1f}" text-anchor="end" font-size="12" fill="{INK}">{escape(label)}</text>'
        )
        if r.value is None:
            out.append(
                f'<text x="{label_w + 6}" y="{mid + 4:.1f}" font-size="12" fill="{MUTED}">{escape(r.note or "no value")}</text>'
            )
            continue
        a, b = sorted((zero, x(r.value)))
        colour = BAD if r.value < 0 else ACCENT
        out.append(
            f'<rect x="{a:.1f}" y="{top + 4}" width="{max(b - a, 1):.1f}" height="{row_h - 12}" fill="{colour}" rx="2"/>'
        )
        if r.low is not None and r.high is not None:
            left_x, right_x = x(r.low), x(r.high)
            out.append(
                f'<line x1="{left_x:.1f}" x2="{right_x:.1f}" y1="{mid:.1f}" y2="{mid:.1f}" stroke="{INK}" stroke-width="1.5"/>'
                f'<line x1="{left_x:.1f}" x2="{left_x:.1f}" y1="{mid - 6:.1f}" y2="{mid + 6:.1f}" stroke="{INK}" stroke-width="1.5"/>'
                f'<line x1="{right_x:.1f}" x2="{right_x:.1f}" y1="{mid - 6:.1f}" y2="{mid + 6:.1f}" stroke="{INK}" stroke-width="1.5"/>'
            )
        out.append(
            f'<text x="{min(max(b, x(r.high or r.value)) + 6, width - 4):.1f}" y="{mid + 4:.1f}" font-size="12" '
            f'fill="{INK}">{_num(r.value)}{escape(unit)}</text>'
        )
    for tick in (lo, (lo + hi) / 2, hi):
        out.append(
            f'<text x="{x(tick):.1f}" y="{height - 6}" text-anchor="middle" font-size="11" fill="{MUTED}">{_num(tick)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def funnel(steps: Sequence[tuple[str, int]], *, title: str, cls: str = "funnel") -> Markup:
    """Bars of each step's count, as a share of the first step."""
    first = max((n for _, n in steps), default=0) or 1
    return bars(
        [Bar(label, 100 * n / first, note="") for label, n in steps],
        title=title,
        lo=0,
        hi=100,
        unit="%",
        cls=cls,
    )


def score_range(metric: str) -> tuple[float, float]:
    """The axis of a metric: net scores run −100…100, shares 0…100."""
    return (-100.0, 100.0) if metric in ("nps", "nls") else (0.0, 100.0)
