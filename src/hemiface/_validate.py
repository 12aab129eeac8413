"""Small validation helpers whose messages name the parameter, the allowed values and the received one."""

from __future__ import annotations

from typing import Iterable

from ._errors import HemifaceError


class OptionError(HemifaceError, ValueError):
    """An option had a value outside its allowed set or range."""


def check_option(name: str, value, allowed: Iterable) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise OptionError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    value = float(value)
    if not (value > 0 or (allow_zero and value == 0)) or value != value:
        bound = ">= 0" if allow_zero else "> 0"
        raise OptionError(f"{name} must be {bound}; got {value!r}")
    return value
