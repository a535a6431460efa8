"""Checks on the few private parts of aiortc and aioice the worker relies on.

Where the worker reaches into a dependency (:mod:`media.ice` wraps aioice's
host-address gathering, :mod:`media.tap` stands in for aiortc's decoder
queue), it records the SHA-256 digest of the pinned version's source of
every function that reliance rests on. :func:`check` compares them when the
worker starts: an upgrade that changes any of them stops the worker with a
clear error (and fails the tests) instead of silently doing something else.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
from collections.abc import Callable, Mapping
from typing import Any


class DependencyChanged(RuntimeError):
    """A dependency's source is not the one the worker's code was written against."""


def digest(function: Callable[..., Any]) -> str:
    """SHA-256 of a function's source text."""
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def changed(functions: Mapping[str, Callable[..., Any]], expected: Mapping[str, str]) -> list[str]:
    """The names in ``functions`` whose source digest is not the expected one."""
    return [name for name, function in functions.items() if digest(function) != expected.get(name)]


def check(package: str, functions: Mapping[str, Callable[..., Any]], expected: Mapping[str, str], where: str) -> None:
    """Raise :class:`DependencyChanged` unless every function's source is the pinned one."""
    differ = changed(functions, expected)
    if differ:
        version = importlib.metadata.version(package)
        raise DependencyChanged(
            f"{package} {version} changed what {where} relies on ({', '.join(differ)}): "
            f"re-check {where} against it and update its digests (see its docstring)"
        )
