"""A workspace's recent answers as columns in memory, and the score histograms of a scope counted from
them with numpy: what a segmented report reads instead of the answers table (``answer_cache`` keeps it
fresh).

Each answer is a row of small integers: its day (days since the columns' first day), survey key,
question and metric (dictionary codes), score, and every declared dimension (``DECLARED``, ``kind``
too) as a dictionary code, 0 standing for "none". A report's conditions become comparisons of codes,
its groups an integer key counted with ``np.bincount``: the same histograms, per group, period and NPS
scale, that ``metrics._from_answers`` gets from PostgreSQL, so every figure built on them (groups with
too few answers, the previous period) is the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from services.scoring.domain import DECLARED
from services.scoring.queries.scope import GroupKey, Histograms, Scope
from shared.vocabulary import Interval

Array = npt.NDArray[Any]
DAY_LIMIT = int(np.iinfo(np.int16).max)
"""The last day the columns can hold (days since their first, in 16 bits: 89 years)."""
COLUMNS = ("response_key", "question_id", "survey_key", "metric", "day", "score", *DECLARED)
"""What each cached answer is loaded from (``day`` as days since the first day)."""


class Dictionary:
    """The codes of one column's values (0 is None)."""

    def __init__(self) -> None:
        self.codes: dict[str | None, int] = {None: 0}
        self.values: list[str | None] = [None]

    def encode(self, values: Sequence[str | None]) -> Array:
        codes, known = self.codes, self.values
        out = []
        for value in values:
            code = codes.get(value)
            if code is None:
                code = codes[value] = len(known)
                known.append(value)
            out.append(code)
        return np.asarray(out, dtype=np.uint32)

    def lookup(self, wanted: Sequence[str]) -> Array:
        """Return a table of booleans over the codes: whether a code is one of ``wanted``."""
        table = np.zeros(len(self.values), dtype=bool)
        for value in wanted:
            code = self.codes.get(value)
            if code is not None:
                table[code] = True
        return table


class Columns:
    """One workspace's answers from ``first_day`` on, appended in batches (capacity doubles)."""

    def __init__(self, first_day: date) -> None:
        self.first_day = first_day
        self.size = 0
        self.ordered = 0
        """The first ``ordered`` answers are sorted by metric and day (``order``); the rest by arrival."""
        self.dictionaries = {name: Dictionary() for name in ("question_id", "metric", *DECLARED)}
        self.arrays: dict[str, Array] = {}
        self._dtypes = {
            "day": np.int16,
            "survey_key": np.int32,
            "score": np.int8,
            "question_id": np.uint16,
            "metric": np.uint8,
            **dict.fromkeys(DECLARED, np.uint16),
        }
        for name, dtype in self._dtypes.items():
            self.arrays[name] = np.empty(0, dtype=dtype)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (their capacity, not only the answers in them)."""
        return sum(a.nbytes for a in self.arrays.values())

    def append(self, rows: Sequence[Sequence[Any]]) -> None:
        """Add answers given as rows of ``COLUMNS`` (``response_key`` is not kept)."""
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        by_name = dict(zip(COLUMNS, columns, strict=True))
        new = {
            "day": np.asarray(by_name["day"], dtype=np.int64),
            "survey_key": np.asarray(by_name["survey_key"], dtype=np.int64),
            "score": np.asarray(by_name["score"], dtype=np.int64),
        }
        for name, dictionary in self.dictionaries.items():
            new[name] = dictionary.encode(by_name[name])
        self._grow(self.size + len(rows))
        end = self.size + len(rows)
        for name, values in new.items():
            self._widen(name, values)
            self.arrays[name][self.size : end] = values
        self.size = end

    def _grow(self, needed: int) -> None:
        capacity = len(self.arrays["day"])
        if needed <= capacity:
            return
        capacity = max(needed, capacity + capacity // 4, 65_536)
        for name, array in self.arrays.items():
            grown = np.empty(capacity, dtype=array.dtype)
            grown[: self.size] = array[: self.size]
            self.arrays[name] = grown

    def _widen(self, name: str, values: Array) -> None:
        """Give a column a wider type when its codes or values no longer fit (e.g. > 65,535 agents)."""
        array = self.arrays[name]
        if len(values) and int(values.max()) > np.iinfo(array.dtype).max:
            self.arrays[name] = array.astype(np.int64)

    def column(self, name: str) -> Array:
        return self.arrays[name][: self.size]

    def order(self) -> None:
        """Sort every answer by metric and day and give back the arrays' spare room: a report then reads
        a metric's days as one slice of the sorted part, and scans only what arrived after (the cache
        sorts again once that is a quarter of the answers)."""
        by = np.lexsort((self.column("day"), self.column("metric")))
        for name in self.arrays:
            self.arrays[name] = self.column(name)[by]
        self.ordered = self.size

    def _slices(self, metric: int, since: int, until: int) -> list[slice]:
        """Return where the answers of ``metric`` between days ``since`` and ``until`` can be."""
        metrics, days = self.column("metric")[: self.ordered], self.column("day")[: self.ordered]
        m, d = (
            metrics.dtype.type,
            days.dtype.type,
        )  # the same type as the array's, or numpy converts the whole array
        low, high = metrics.searchsorted(m(metric), "left"), metrics.searchsorted(m(metric), "right")
        first = low + days[low:high].searchsorted(d(since), "left")
        last = low + days[low:high].searchsorted(d(until), "right")
        return [slice(int(first), int(last)), slice(self.ordered, self.size)]

    def covers(self, scope: Scope) -> bool:
        """Whether the columns can answer ``scope``: its days are in them, its dimensions declared."""
        if scope.since is None or scope.since < self.first_day:
            return False
        if scope.group_by not in (None, "survey") and scope.group_by not in DECLARED:
            return False
        return all(c.dimension in DECLARED for c in scope.segment.conditions)

    def histograms(self, scope: Scope, *, metric: str, question_id: str | None) -> Histograms:
        """Return what ``metrics._from_answers`` returns for ``scope`` (which ``covers`` accepts)."""
        rows = self._selected(scope, metric=metric, question_id=question_id)
        if not len(rows):
            return {}
        day, survey = self.column("day")[rows], self.column("survey_key")[rows]
        scales = sorted({scope.scale_of(k) for k in scope.surveys})
        scale_of = _table(scope.surveys, survey, lambda k: scales.index(scope.scale_of(k)))
        groups, group_values = self._groups(scope, rows, survey)
        periods, starts = _periods(self.first_day, day, scope.interval)
        score = self.column("score")[rows].astype(np.int64)
        span = int(score.max()) + 1
        key = ((groups * len(starts) + periods) * len(scales) + scale_of[survey]) * span + score
        out: dict[tuple[GroupKey, date | None], dict[Any, dict[int, int]]] = {}
        for k, count in _counted(key, len(group_values) * len(starts) * len(scales) * span):
            rest, score_value = divmod(k, span)
            rest, scale = divmod(rest, len(scales))
            group, period = divmod(rest, len(starts))
            value = group_values[group]
            if scope.group_by == "survey" and value is not None:
                value = scope.surveys[value].survey_id
            histogram = out.setdefault((value, starts[period]), {}).setdefault(scales[scale], {})
            histogram[score_value] = count
        return out

    def _selected(self, scope: Scope, *, metric: str, question_id: str | None) -> Array:
        """Return the positions of the answers in the scope."""
        code = self.dictionaries["metric"].codes.get(metric)
        if code is None:
            return np.zeros(0, dtype=np.int64)
        assert scope.since is not None
        since = (scope.since - self.first_day).days
        until = min((scope.until - self.first_day).days if scope.until else DAY_LIMIT, DAY_LIMIT)
        found = []
        for part in self._slices(code, since, until):
            if part.start >= part.stop:
                continue
            mask = self._matching(scope, part, question_id=question_id)
            if part.start >= self.ordered:  # the unsorted part: days and metric too
                day = self.arrays["day"][part]
                mask &= (day >= since) & (day <= until) & (self.arrays["metric"][part] == code)
            found.append(np.flatnonzero(mask) + part.start)
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def _matching(self, scope: Scope, part: slice, *, question_id: str | None) -> Array:
        """Return whether each answer in ``part`` has the scope's surveys, kinds, question and segment."""
        survey = self.arrays["survey_key"][part]
        mask = _table(scope.surveys, survey, lambda _: 1).astype(bool)[survey]
        if question_id is not None:
            mask &= self._in("question_id", [question_id], part)
        if scope.kinds is not None:
            mask &= self._in("kind", scope.kinds, part)
        for c in scope.segment.conditions:
            if c.include:
                mask &= self._in(c.dimension, c.include, part)
            if c.exclude:
                mask &= ~self._in(c.dimension, c.exclude, part)
        return mask

    def _in(self, name: str, values: Sequence[str], part: slice) -> Array:
        """Whether each answer in ``part`` has one of ``values`` in column ``name`` (None never does)."""
        codes = self.arrays[name][part]
        table = self.dictionaries[name].lookup(values)
        if table.sum() == 1:
            return codes == int(np.flatnonzero(table)[0])
        return table[codes]

    def _groups(self, scope: Scope, rows: Array, survey: Array) -> tuple[Array, list[Any]]:
        """Return each selected answer's group number and each number's value (its code's value)."""
        if scope.group_by is None:
            return np.zeros(len(rows), dtype=np.int64), [None]
        if scope.group_by == "survey":
            keys = sorted(scope.surveys)
            number = _table(scope.surveys, survey, lambda k: keys.index(k))
            return number[survey], list(keys)
        codes = self.column(scope.group_by)[rows].astype(np.int64)
        return codes, list(self.dictionaries[scope.group_by].values)


def _counted(keys: Array, span: int) -> list[tuple[int, int]]:
    """Return each distinct key and how many times it occurs (a bincount when the keys are few)."""
    if span <= 4_000_000:
        counts = np.bincount(keys, minlength=0)
        found = np.flatnonzero(counts)
        return list(zip(found.tolist(), counts[found].tolist(), strict=True))
    values, counts = np.unique(keys, return_counts=True)
    return list(zip(values.tolist(), counts.tolist(), strict=True))


def _table(surveys: dict[int, Any], keys: Array, value: Any) -> Array:
    """Return a table indexed by survey key: ``value(key)`` for the scope's surveys, 0 for the others."""
    size = max(int(keys.max()) if len(keys) else 0, max(surveys, default=0)) + 1
    table = np.zeros(size, dtype=np.int64)
    for k in surveys:
        table[k] = value(k)
    return table


def _periods(first_day: date, day: Array, interval: Interval | None) -> tuple[Array, list[date | None]]:
    """Return each answer's period number and each number's first day (as ``scope.period_of``)."""
    if interval is None:
        return np.zeros(len(day), dtype=np.int64), [None]
    low, high = int(day.min()), int(day.max())
    starts_of = [_start(first_day + timedelta(days=d), interval) for d in range(low, high + 1)]
    distinct = sorted(set(starts_of))
    number = np.asarray([distinct.index(s) for s in starts_of], dtype=np.int64)
    return number[day.astype(np.int64) - low], list(distinct)


def _start(day: date, interval: Interval) -> date:
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)
