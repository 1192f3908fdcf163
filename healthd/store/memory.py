"""What the ledger holds in memory: the guards' window of rows, and the writes still waiting.

Owns: the row value (``Row``, made by ``from_decision``) and the checks of a row read back
(``from_file``: values of the types healthd writes, or ``BadRow``), the rows the guards read
(``Window``: written or not, with their latest outcome), the bounded queue of writes the
state file has not taken yet (``Backlog``) and its drop policy, and what a row read back
from the file becomes once what memory knows is added (``Window.latest``,
``Window.countable``). Must never: touch the file (that is ``ledger`` and ``statefile``) or
decide anything.

Ids: a row the file has taken carries the file's id (> 0); a waiting row carries a
temporary id (< 0) until it is written. The ledger maps the temporary ids it handed out
to the file's ids, so a caller's id stays valid for ``complete``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from healthd.core.model import Action, ActionRecord, Decision, Outcome

_PENDING, _SKIPPED = Outcome.PENDING.value, Outcome.SKIPPED.value
_ACTIONS = frozenset(a.value for a in Action)
_OUTCOMES = frozenset(o.value for o in Outcome)
_TEXT = ("container_id", "container", "action", "rule", "evidence", "explanation", "outcome")
_TEXT_OR_NULL = ("failure", "severity", "suppressed_by", "error")

COLUMNS = ("id", "at", "container_id", "container", "action", "rule", "failure", "severity",
           "evidence", "suppressed_by", "explanation", "outcome", "error", "completed_at",
           "retryable")
DEFAULT_LIMIT = 10_000  # rows held while the file cannot be written (~ a few MB)


@dataclass(frozen=True)
class HistoryRow:
    """One ledger row for ``healthd history``."""

    id: int
    at: float
    container: str
    action: str
    rule: str
    outcome: str
    explanation: str
    error: str | None
    completed_at: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


@dataclass
class Row:
    """One row of the ``actions`` table, in memory; mutable while its action is pending."""

    id: int
    at: float
    container_id: str
    container: str
    action: str
    rule: str
    failure: str | None
    severity: str | None
    evidence: str  # JSON list
    suppressed_by: str | None
    explanation: str
    outcome: str
    error: str | None
    completed_at: float | None
    retryable: bool = True

    def values(self) -> tuple[Any, ...]:
        """Column values in ``COLUMNS`` order, as SQLite takes them (``storable``); a
        temporary id is NULL: the file picks one."""
        return (self.id if self.id > 0 else None,
                *(storable(getattr(self, c)) for c in COLUMNS[1:]))

    def complete(self, done: Completion) -> None:
        """Take a pending action's outcome."""
        self.outcome, self.error = done.outcome, done.error
        self.completed_at, self.retryable = done.completed_at, done.retryable

    def record(self) -> ActionRecord:
        """The guards' view of the row."""
        return ActionRecord(container=self.container, action=Action(self.action), at=self.at,
                            outcome=Outcome(self.outcome), rule=self.rule, id=self.id,
                            retryable=bool(self.retryable))

    def history(self) -> HistoryRow:
        """The ``healthd history`` view of the row."""
        return HistoryRow(self.id, self.at, self.container, self.action, self.rule,
                          self.outcome, self.explanation, self.error, self.completed_at)


def from_decision(d: Decision, outcome: Outcome, error: str | None = None) -> Row:
    """A new row for a decision with its (first) outcome, id 0 until ``Backlog.add``."""
    return Row(0, d.at, d.target_id, d.target_name, d.action.value, d.rule,
               d.failure.value if d.failure else None, d.severity.value,
               json.dumps(list(d.evidence)), d.suppressed_by, d.explain(), outcome.value,
               error, None if outcome is Outcome.PENDING else d.at)


def storable(value: Any) -> Any:
    """``value``, but text SQLite cannot take (a lone surrogate: what Python makes of bytes
    that were not UTF-8) with such characters as their backslash escapes, e.g. '\\udc80'.

    Applied to what is written and to what is looked up, so a name finds its rows.
    """
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


class BadRow(ValueError):
    """A row of the state file holds a value healthd does not write there (another tool,
    a newer healthd, damage SQLite does not see)."""

    def __init__(self, row_id: Any, column: str, value: Any) -> None:
        super().__init__(f"row {row_id}: {column} {value!r:.80} is not what healthd writes"
                         " there")
        self.row_id = row_id


def _time(value: Any) -> float | None:
    return float(value) if (isinstance(value, (int, float)) and not isinstance(value, bool)
                            and math.isfinite(value)) else None


def _bad_column(v: dict[str, Any]) -> str | None:
    if type(v["id"]) is not int:
        return "id"
    if _time(v["at"]) is None:
        return "at"
    for c in _TEXT:
        if not isinstance(v[c], str):
            return c
    for c in _TEXT_OR_NULL:
        if v[c] is not None and not isinstance(v[c], str):
            return c
    if v["completed_at"] is not None and _time(v["completed_at"]) is None:
        return "completed_at"
    return None


def from_file(values: tuple[Any, ...]) -> Row:
    """A row read from the file (``COLUMNS`` order), checked: ``BadRow`` names the first
    column whose value is not of the type healthd writes there. A ``retryable`` that is not
    a number reads as the column's default."""
    v = dict(zip(COLUMNS, values, strict=True))
    bad = _bad_column(v)
    if bad is not None:
        raise BadRow(v["id"], bad, v[bad])
    retry = v["retryable"]
    return Row(**{**v, "at": _time(v["at"]), "completed_at": _time(v["completed_at"]),
                  "retryable": bool(retry) if isinstance(retry, (int, float)) else True})


def for_guards(values: tuple[Any, ...]) -> Row:
    """``from_file``, and an action and outcome this version knows (guards count them)."""
    row = from_file(values)
    if row.action not in _ACTIONS:
        raise BadRow(row.id, "action", row.action)
    if row.outcome not in _OUTCOMES:
        raise BadRow(row.id, "outcome", row.outcome)
    return row


@dataclass(frozen=True)
class Completion:
    """How a pending action ended (``Ledger.complete``), waiting to be written."""

    outcome: str
    error: str | None
    completed_at: float
    retryable: bool


class Backlog:
    """Writes the state file has not taken yet, in the order they were made.

    limit: rows held at most; beyond it the oldest held-back (skipped) row is dropped
    first, then the oldest finished one, then the oldest of all; ``dropped`` counts them.
    Completions and meta values only keep their latest value per row or key.
    """

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = max(1, limit)
        self.rows: OrderedDict[int, Row] = OrderedDict()  # by id, oldest first
        self.updates: dict[int, Completion] = {}  # by the file's row id
        self.meta: dict[str, str] = {}
        self.abandon_at: float | None = None  # a deferred ``abandon_pending``
        self.dropped = 0
        self._ids = itertools.count(-1, -1)

    def __len__(self) -> int:
        return (len(self.rows) + len(self.updates) + len(self.meta)
                + (self.abandon_at is not None))

    def add(self, row: Row) -> int:
        """Queue a new row under a fresh temporary id (returned); drop one if full."""
        row.id = next(self._ids)
        self.rows[row.id] = row
        while len(self.rows) > self.limit:
            self._drop_one()
        return row.id

    def requeue_first(self, rows: list[Row]) -> None:
        """Put rows the file lost back at the front (they keep their ids), oldest first."""
        for row in sorted(rows, key=lambda r: r.id, reverse=True):
            self.rows[row.id] = row
            self.rows.move_to_end(row.id, last=False)
        while len(self.rows) > self.limit:
            self._drop_one()

    def _drop_one(self) -> None:
        victim = next((k for k, r in self.rows.items() if r.outcome == _SKIPPED), None)
        if victim is None:
            victim = next((k for k, r in self.rows.items() if r.outcome != _PENDING), None)
        if victim is None:
            victim = next(iter(self.rows))
        del self.rows[victim]
        self.dropped += 1


class Window:
    """The rows guards read, by id: every row of this run, and the file's rows since
    ``loaded_since`` once loaded. Trimmed to what ``records`` was last asked for.

    Each change to a row goes through here first, so a row here is never older than the
    file's copy of it.
    """

    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}
        self.loaded_since: float | None = None  # None: the file's rows are not loaded
        self._alias: dict[int, int] = {}  # temporary id handed out -> the file's id
        # ``records`` as last built: every decision reads it, rows change far less often.
        self._records: list[ActionRecord] | None = None

    def changed(self) -> None:
        """A row here changed in place (an outcome came in): rebuild the guards' view."""
        self._records = None

    def add(self, row: Row) -> None:
        """A new row of this run. Rows of no action and decisions held back (skipped: they
        never change afterwards) are not the guards' business; keeping them made a busy
        host's window, and each guard's scan of it, grow with every held decision."""
        if _guarded(row):
            self.rows[row.id] = row
            self._records = None

    def needs_load(self, since: float) -> bool:
        """True when the file may hold rows at or after ``since`` that are not here."""
        return self.loaded_since is None or since < self.loaded_since

    def latest(self, values: tuple[Any, ...], updates: dict[int, Completion]) -> Row:
        """A row read from the file (``BadRow`` if healthd would not have written it), with
        what memory knows that the file does not yet."""
        row = self.rows.get(values[0])
        if row is None:
            row = from_file(values)
            done = updates.get(row.id)
            if done is not None:
                row.complete(done)
        return row

    def countable(self, rows: list[Any], left_out: Callable[[BadRow], None]) -> list[Row]:
        """The file's rows (not already here) that guards can count; one they cannot is
        passed to ``left_out`` and left out: a bad row must not stop every decision."""
        out = []
        for values in rows:
            if values[0] in self.rows:
                continue
            try:
                out.append(for_guards(values))
            except BadRow as exc:
                left_out(exc)
        return out

    def merge(self, rows: list[Row], since: float, updates: dict[int, Completion]) -> None:
        """Take the file's rows at or after ``since``, with completions still waiting."""
        for row in rows:
            if row.id in self.rows or not _guarded(row):
                continue
            done = updates.get(row.id)
            if done is not None:
                row.complete(done)
            self.rows[row.id] = row
        self.loaded_since = since
        self._records = None

    def records(self, since: float, container: str | None = None,
                everyone_since: float | None = None) -> list[ActionRecord]:
        """The guards' view at or after ``since``, oldest first; older rows are let go.

        container: only its rows, and everyone's at or after ``everyone_since``: a decision
        then costs a scan, not a record and a sort of each row on the host.
        """
        if self.loaded_since is not None and since > self.loaded_since:
            self.loaded_since = since
        for rid in [rid for rid, r in self.rows.items() if r.at < since]:
            del self.rows[rid]
            self._records = None
        if self._records is None:
            self._records = sorted((r.record() for r in self.rows.values()), key=lambda r: r.at)
        if container is None:
            return list(self._records)
        everyone = math.inf if everyone_since is None else everyone_since
        return [r for r in self._records if r.container == container or r.at >= everyone]

    def written(self, row: Row, old: int) -> None:
        """``row`` (known as ``old`` until now) is in the file under ``row.id``."""
        if self.rows.pop(old, None) is not None:
            self.rows[row.id] = row
            self._records = None
        if row.outcome == _PENDING:
            self._alias[old] = row.id  # the caller still holds ``old`` for ``complete``

    def resolve(self, handle: int) -> int:
        """The current id of the row ``record`` returned ``handle`` for."""
        return self._alias.pop(handle, handle)

    def abandon(self, at: float, error: str, waiting: set[int]) -> None:
        """Pending rows of the file (not those still ``waiting`` to go in) end abandoned."""
        for r in self.rows.values():
            if r.id > 0 and r.outcome == _PENDING and r.id not in waiting:
                r.complete(Completion(Outcome.ABANDONED.value, error, at, bool(r.retryable)))
                self._records = None

    def in_file(self) -> list[Row]:
        """Rows that carry the file's ids."""
        return [r for r in self.rows.values() if r.id > 0]

    def newest_acted(self, container: str) -> Row | None:
        """The newest row about ``container`` that was not held back."""
        mine = [r for r in self.rows.values() if r.container == container and r.outcome != _SKIPPED]
        return max(mine, key=lambda r: r.at) if mine else None


def _guarded(row: Row) -> bool:
    """Whether the guards count ``row``: an action that was (or is being) sent."""
    return row.action != Action.NONE.value and row.outcome != _SKIPPED
