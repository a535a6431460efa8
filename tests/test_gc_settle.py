"""telemed._gc.settle: objects made in bulk are frozen at once on a tuned node,
and left alone anywhere else (a test, an embedding application)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from telemed import _gc


@pytest.fixture
def restored() -> Iterator[None]:
    tuned = _gc._tuned
    yield
    _gc._tuned = tuned
    gc.unfreeze()


def test_settle_does_nothing_where_the_collector_is_not_tuned(restored: None) -> None:
    _gc._tuned = False
    frozen = gc.get_freeze_count()
    rows = [[i] for i in range(1000)]  # lists: always tracked by the collector
    _gc.settle()
    assert gc.get_freeze_count() == frozen
    assert all(gc.is_tracked(r) for r in rows)


def test_settle_freezes_what_was_just_made_on_a_tuned_node(restored: None) -> None:
    _gc._tuned = True
    frozen = gc.get_freeze_count()
    rows = [[i] for i in range(1000)]  # lists: always tracked by the collector
    _gc.settle()
    assert gc.get_freeze_count() >= frozen + len(rows)
    del rows  # still freed by reference counting
