"""Status lifecycles of orders and approvals, as data.

Why: events arrive late and twice (webhooks are retried, polls overlap), so the engine must
not let a stale event move a record backwards — an "approval pending" event delivered after
the approval was granted would otherwise put an approved order back into pending_approval.
Before it overwrites a status, the engine asks `can_transition(entity, old, new)`.

`ORDER_TRANSITIONS` and `APPROVAL_TRANSITIONS` list the direct moves. `can_transition` also
accepts moves that skip intermediate states along them (draft → approved), because a poll
only sees the latest state: the pending_approval in between may never have been observed.
The one backward move, rejected → draft (an order resubmitted after a rejection), is a
restart: from rejected the whole lifecycle starting at draft is reachable again, but a late
"draft" can never undo pending_approval, approved, fulfilled or cancelled.

Customers have statuses but no lifecycle (any status may follow any other).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from hub.canonical import _check

ORDER_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"pending_approval", "cancelled"}),
    "pending_approval": frozenset({"approved", "rejected", "cancelled"}),
    "approved": frozenset({"fulfilled", "cancelled"}),
    "rejected": frozenset({"draft", "cancelled"}),
    "fulfilled": frozenset(),
    "cancelled": frozenset(),
}

APPROVAL_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "pending": frozenset({"approved", "rejected", "withdrawn"}),
    "approved": frozenset(),
    "rejected": frozenset(),
    "withdrawn": frozenset(),
}

TRANSITIONS: Mapping[str, Mapping[str, frozenset[str]]] = {
    "order": ORDER_TRANSITIONS,
    "approval": APPROVAL_TRANSITIONS,
}

# Backward edges: a new round of the lifecycle, not a step of the current one.
RESTARTS: Mapping[str, Mapping[str, str]] = {"order": {"rejected": "draft"}}


@cache
def _forward(entity: str, status: str) -> frozenset[str]:
    """Statuses reachable from `status` without taking a restart edge."""
    graph, restarts = TRANSITIONS[entity], RESTARTS.get(entity, {})
    seen: set[str] = set()
    todo = [status]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen and restarts.get(node) != nxt:
                seen.add(nxt)
                todo.append(nxt)
    return frozenset(seen)


def can_transition(entity: str, old: str | None, new: str) -> bool:
    """Whether a record of `entity` may go from status `old` to `new` (same status: True).

    `old` is None for a record without a status yet. A status outside the lifecycle is
    refused, since nothing can be said about where it sits.
    """
    _check(entity)
    graph = TRANSITIONS.get(entity)
    if graph is None:
        return True
    if new not in graph or (old is not None and old not in graph):
        return False
    if old is None or old == new or new in _forward(entity, old):
        return True
    restart = RESTARTS.get(entity, {}).get(old)
    return restart is not None and (new == restart or new in _forward(entity, restart))
