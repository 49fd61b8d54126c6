"""A frozen dataclass field whose value may be handed over as "how to work it out".

Some values cost more than the work that finds them and are read by only some callers:
the text a person wrote this time (quotes and signatures cut), which most verdicts never
need in the daemon; the backtracking warnings of the rules' patterns, which only
``check`` and the daemon's start report (issue 12: parse → classify and ``classify``'s
start-up). The field is set to :class:`Later` (a function), called on the first read and
kept; equality, ``repr`` and :func:`dataclasses.replace` read it, so they see the value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Later(Generic[T]):
    """How to work out a :class:`LazyField`'s value (a function of no arguments)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], T]) -> None:
        self.make = make


class LazyField(Generic[T]):
    """A data descriptor for a frozen dataclass field: a value, or a :class:`Later`."""

    def __init__(self, default: T) -> None:
        self.default = default
        self.slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_lazy_{name}"

    def __get__(self, obj: object | None, owner: type | None = None) -> T:
        if obj is None:
            return self.default  # what the dataclass takes as the field's default
        store: dict[str, Any] = obj.__dict__
        value = store[self.slot]
        if isinstance(value, Later):
            value = store[self.slot] = value.make()
        return value  # type: ignore[no-any-return]

    def __set__(self, obj: object, value: T | Later[T]) -> None:
        obj.__dict__[self.slot] = value
