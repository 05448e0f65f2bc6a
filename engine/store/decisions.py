"""People's decisions: a supervisor's release of a quarantined unit, an engineer's release of a recipe.

Each is kept in the audit log. Only the store's worker thread calls these, inside durable transactions.
"""

from __future__ import annotations

import time

from engine.messages import unit_released
from engine.outcome import Outcome, UnitStatus
from engine.record import Attempt, Decision, RecipeRef
from engine.store import outbox
from engine.store.reading import released
from engine.store.recovery import audit
from engine.store.rows import AttemptWriter
from engine.store.worker import Tx

DECISIONS = ("done", "not-done")


def release_unit(
    tx: Tx, write: AttemptWriter, shown: str, serial: str, decision: str, by: str, note: str | None
) -> str:
    """A supervisor's decision on a quarantined unit's interrupted irreversible step; says what it did."""
    found = tx.row(f"SELECT status, claimed_by FROM units WHERE serial = ?{tx.for_update}", (serial,))
    if found is None:
        raise LookupError(f"unit {serial} is not in the store {shown}")
    status, holder = found
    if status != UnitStatus.QUARANTINED:
        raise ValueError(f"unit {serial} is not quarantined (it is {status}): there is nothing to release")
    if holder is not None and tx.alive(holder):
        raise ValueError(f"unit {serial} is being run by a station ({holder}): release it when it has stopped")
    intent = tx.row(
        "SELECT id, stage, step, attempt, recipe, recipe_version, recipe_hash, lot FROM intents "
        "WHERE serial = ? AND decision IS NULL AND (outcome IS NULL OR outcome IN ('ERROR', 'ABORTED')) "
        "ORDER BY id DESC",
        (serial,),
    )
    now = time.time()
    what = "no interrupted step was found"
    if intent is not None:
        ident, stage, step, number, recipe, version, content_hash, lot = intent
        outcome = Outcome.PASS if decision == "done" else Outcome.NOT_DONE
        note_text = f"{by} decided: {decision}" + (f" ({note})" if note else "")
        write(
            tx,
            [Attempt(serial, stage, step, number, outcome, now, now, RecipeRef(recipe, version, content_hash),
                     lot, None, 0, by, (), note_text, None)],
        )  # fmt: skip
        tx.run("UPDATE intents SET decision = ? WHERE id = ?", (decision, ident))
        what = f"'{stage}' counts as {'done' if decision == 'done' else 'not done: it may run again'}"
    tx.run(
        "UPDATE units SET status = ?, reason = ?, claimed_by = NULL, updated = ? WHERE serial = ?",
        (UnitStatus.IN_ROUTE, f"released by {by}: {what}", now, serial),
    )
    audit(tx, by, f"release-{decision}", serial, note or what)
    if write.source is not None:
        outbox.put_one(tx, write.source, unit_released(write.source, serial, decision, by, note, now))
    return what


def release_recipe(tx: Tx, recipe: str, version: int, content_hash: str, source: str, by: str) -> Decision | None:
    """Record a recipe's content as released for production; the earlier release if it already was."""
    earlier = released(tx, content_hash)
    if earlier is not None:
        return earlier
    tx.run(
        "INSERT INTO releases (recipe_hash, recipe, version, source, released_by, released_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (content_hash, recipe, version, source, by, time.time()),
    )
    audit(tx, by, "recipe-release", content_hash, f"{recipe} v{version} from {source}")
    return None
