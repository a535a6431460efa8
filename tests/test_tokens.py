"""Ids carried by tokens and payloads."""

from __future__ import annotations

import pytest

from telemed.exceptions import BadRequest
from telemed.tokens import check_id


def test_ids_are_path_safe() -> None:
    for bad in (".", "..", ".hidden", "a/b", "", "x" * 65, "c1\n"):
        with pytest.raises(BadRequest):
            check_id(bad, "clinic")
    assert check_id("clinic-1.east_2", "clinic") == "clinic-1.east_2"
