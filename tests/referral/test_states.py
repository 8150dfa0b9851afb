"""The lifecycle as pure code: the transition table, and a property test over random action sequences
(hypothesis): whatever is tried, no illegal transition is ever reached."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onetrip.referral.states import (
    OPEN,
    TERMINAL,
    TRANSITIONS,
    Action,
    IllegalTransition,
    Status,
    allowed_actions,
    fhir_status,
    next_status,
)

# The lifecycle of issue 6 §1, written out independently of the table in states.py.
LEGAL = {
    ("draft", "submit"): "submitted", ("draft", "cancel"): "cancelled",
    ("submitted", "accept"): "accepted", ("submitted", "reject"): "rejected",
    ("submitted", "cancel"): "cancelled", ("submitted", "expire"): "expired",
    ("accepted", "schedule"): "scheduled", ("accepted", "arrive"): "arrived", ("accepted", "cancel"): "cancelled",
    ("scheduled", "reschedule"): "scheduled", ("scheduled", "arrive"): "arrived", ("scheduled", "cancel"): "cancelled",
    ("arrived", "complete"): "completed",
}


def test_table_is_exactly_the_issue_lifecycle():
    assert {(s.value, a.value): t.value for (s, a), t in TRANSITIONS.items()} == LEGAL


def test_terminal_states_accept_nothing():
    assert {s.value for s in TERMINAL} == {"rejected", "completed", "cancelled", "expired"}
    for s in TERMINAL:
        assert allowed_actions(s) == []
        for a in Action:
            with pytest.raises(IllegalTransition):
                next_status(s, a)


def test_every_state_has_a_fhir_status():
    for s in Status:
        sr, task = fhir_status(s)
        assert sr in {"draft", "active", "revoked", "completed"}
        assert task in {"draft", "requested", "accepted", "rejected", "in-progress", "completed", "cancelled",
                        "failed"}


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list(Action) + ["bogus"]), max_size=30))
def test_random_action_sequences_never_reach_an_illegal_transition(actions):
    status = Status.draft.value
    path = [status]
    for a in actions:
        try:
            new = next_status(status, a).value
        except IllegalTransition:
            assert (status, a) not in LEGAL  # refused only when the lifecycle forbids it
            continue
        assert LEGAL[(status, a)] == new  # and every step taken is one the lifecycle allows
        status = new
        path.append(status)
    for before, after in zip(path, path[1:], strict=False):
        assert before in {s.value for s in OPEN}  # nothing ever leaves a terminal state
        assert any(k[0] == before and v == after for k, v in LEGAL.items())
