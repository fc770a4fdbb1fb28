"""What the erpnext connector does beyond plain POST/PUT, declared as data.

Decisions. An approval decided in the OA reaches ERPNext as a document lifecycle step, not as a
field: Frappe submits a document (docstatus 0 -> 1) and cancels a submitted one (1 -> 2), and
refuses every other move (a draft cannot be cancelled). A mapping asks for a decision by writing
its value into the pseudo-field `synchub_decision`; the connector takes it out of the payload
and runs the steps `DECISIONS[doctype][value]` lists, from the document's current docstatus:
steps already behind the document are skipped, so a retry after a failure between two steps
resumes instead of failing. A value the table does not know for the doctype rejects the record.

Lookups. A Link field must hold the linked document's name (`HR-EMP-00007`), which an OA does
not know; it knows the person's name, e-mail or employee number. `LOOKUPS[doctype][field]`
names the linked doctype and the fields of it that may hold such a value, tried in order: the
first field with a match decides; among several matches the `prefer`red one (an Active
employee) wins; none, or still several, rejects that record only. Values are compared without
case, as MariaDB's default collation compares them.

Both tables are plain data: extending them to another doctype is one entry, no code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DECISION_FIELD = "synchub_decision"
SUBMIT = "submit"
CANCEL = "cancel"
STEP_DOCSTATUS = {SUBMIT: 1, CANCEL: 2}


@dataclass(frozen=True)
class Decision:
    """Fields set with the decision (on a draft), then lifecycle steps in order."""

    steps: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def final_docstatus(self) -> int | None:
        """The docstatus the document ends in, or None when the decision moves nothing."""
        return STEP_DOCSTATUS[self.steps[-1]] if self.steps else None


DECISIONS: dict[str, dict[str, Decision]] = {
    # The contract approval of a draft order: approved releases it; rejected ends it as
    # Cancelled, which Frappe reaches from a draft only through a submit (see
    # mappings/erpnext/Sales Order.approval.yaml for why not "On Hold" or a deleted draft).
    "Sales Order": {
        "approved": Decision((SUBMIT,)),
        "rejected": Decision((SUBMIT, CANCEL)),
    },
    # HRMS submits a Leave Application only with status Approved or Rejected (on_submit); the
    # mapping writes the status, the decision submits. Open and Cancelled stay drafts.
    "Leave Application": {
        "approved": Decision((SUBMIT,), {"status": "Approved"}),
        "rejected": Decision((SUBMIT,), {"status": "Rejected"}),
        "pending": Decision((), {"status": "Open"}),
        "withdrawn": Decision((), {"status": "Cancelled"}),
    },
}


@dataclass(frozen=True)
class Lookup:
    """A Link field the hub fills with a human value: where to look it up, and how."""

    doctype: str
    match: tuple[str, ...]
    prefer: tuple[str, Any] | None = None  # (field, value) that wins among several matches

    @property
    def fields(self) -> list[str]:
        extra = [self.prefer[0]] if self.prefer and self.prefer[0] not in self.match else []
        return list(dict.fromkeys(["name", *self.match, *extra]))


LOOKUPS: dict[str, dict[str, Lookup]] = {
    "Leave Application": {
        # The Employee id itself, the company's employee number, then the ERPNext user and the
        # e-mail addresses, then the full name (the least unique, so the last one tried).
        "employee": Lookup("Employee", ("name", "employee_number", "user_id", "company_email", "personal_email",
                                        "employee_name"), prefer=("status", "Active")),
    },
}


def decision_for(doctype: str, value: Any) -> Decision | None:
    """The decision a `synchub_decision` value asks of this doctype, or None if it has none."""
    return DECISIONS.get(doctype, {}).get(str(value))


def steps_to_run(decision: Decision, docstatus: int) -> tuple[str, ...] | None:
    """The steps still to run from `docstatus`; None when the document is already past them.

    A cancelled document cannot be submitted again, so an `approved` decision meeting a
    cancelled order is refused rather than reported done.
    """
    final = decision.final_docstatus
    if final is None:
        return ()
    if docstatus > final:
        return None
    return tuple(step for step in decision.steps if STEP_DOCSTATUS[step] > docstatus)


def normalized(value: Any) -> str:
    return str(value).strip().casefold()


def resolve(lookup: Lookup, values: Iterable[str], rows: list[dict[str, Any]]) -> dict[str, tuple[str | None, int]]:
    """Each value's linked document name (None unless exactly one wins) and how many matched."""
    index: dict[str, dict[str, list[dict[str, Any]]]] = {f: {} for f in lookup.match}
    for row in rows:
        for name in lookup.match:
            if row.get(name) not in (None, ""):
                index[name].setdefault(normalized(row[name]), []).append(row)
    found: dict[str, tuple[str | None, int]] = {}
    for value in values:
        found[value] = (None, 0)
        for name in lookup.match:
            hits = {str(row["name"]): row for row in index[name].get(normalized(value), [])}
            if hits:
                found[value] = (_single(lookup, list(hits.values())), len(hits))
                break
    return found


def _single(lookup: Lookup, rows: list[dict[str, Any]]) -> str | None:
    if len(rows) > 1 and lookup.prefer is not None:
        fieldname, wanted = lookup.prefer
        preferred = [row for row in rows if row.get(fieldname) == wanted]
        rows = preferred or rows
    return str(rows[0]["name"]) if len(rows) == 1 else None
