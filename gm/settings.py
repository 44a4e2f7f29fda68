"""The type and range of every setting gm reads, checked by one rule.

An entry point declares its settings as a table ``{"data.batch_size": Setting(int, low=1),
...}``; ``check_settings`` walks a composed config against it and refuses the first value
of the wrong type or out of range with one sentence. Keys the table does not name are the
business of the library they are passed to (Lightning for most ``trainer.*``), whose
errors the entry points turn into sentences too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gm.errors import UserError


def _number(value: float) -> str:
    """``4294967295`` and ``0.5``, not ``4.29497e+09``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "text", list: "a list"}


@dataclass(frozen=True)
class Setting:
    """What one key accepts: values of ``kind``, within ``[low, high]`` (``open_low``: above
    ``low``, not equal), or one of ``choices``; ``nullable``: null too. A ``str`` setting
    with choices accepts only those; for other kinds they are extra values (``"modified"``
    as well as a number)."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    length: int | None = None  # a list's length
    item: Setting | None = None  # what each item of a list accepts

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is of this setting's kind and in its range or choices."""
        if value is None:
            return self.nullable
        if any(value == c and type(value) is type(c) for c in self.choices):
            return True
        if (self.kind is str and self.choices) or not self._of_kind(value):
            return False
        if self.kind in (int, float):
            return math.isfinite(value) and self._in_range(value)
        if self.kind is list:
            length_ok = self.length is None or len(value) == self.length
            return length_ok and (self.item is None or all(map(self.item.accepts, value)))
        return True

    def _in_range(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.open_low else value >= self.low)
        below = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return above and below

    def _of_kind(self, value: Any) -> bool:
        if isinstance(value, bool) or self.kind is bool:  # bool is an int to Python; not here
            return isinstance(value, bool) and self.kind is bool
        if self.kind is float:
            return isinstance(value, (int, float))
        return isinstance(value, self.kind)

    def describe(self) -> str:
        """What this setting accepts, in words (``an integer >= 1``)."""
        if self.kind is str and self.choices:
            text = "one of " + ", ".join(map(str, self.choices))
        else:
            text = _NAMES[self.kind]
            if self.low is not None and self.high is not None:
                left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
                text += f" in {left}{_number(self.low)}, {_number(self.high)}{right}"
            elif self.low is not None:
                text += f" {'>' if self.open_low else '>='} {_number(self.low)}"
            elif self.high is not None:
                text += f" {'<' if self.open_high else '<='} {_number(self.high)}"
            if self.length is not None:
                text = f"a list of {self.length}"
            if self.item is not None:
                text += f"{'' if self.length else ' of'} items, each {self.item.describe()}"
            if self.choices:
                text += " or " + ", ".join(map(str, self.choices))
        return text + (" or null" if self.nullable else "")


# Seeds reach numpy through Lightning's seed_everything, which takes these.
SEED = Setting(int, low=0, high=2**32 - 1)


def check_settings(cfg: DictConfig, table: Mapping[str, Setting]) -> None:
    """Refuse the first key of ``table`` whose value in ``cfg`` it does not accept.

    Keys absent from ``cfg`` (a model family without that option) and values still to be
    filled in (``???``) are skipped.
    """
    for key, setting in table.items():
        try:
            value = OmegaConf.select(cfg, key, default=_ABSENT)
        except OmegaConfBaseException as e:  # an interpolation that does not resolve
            raise UserError(f"{key} cannot be read: {str(e).splitlines()[0]}") from e
        if value is _ABSENT:
            continue
        if isinstance(value, ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        _check(key, setting, value)


def check_values(values: Mapping[str, Any], table: Mapping[str, Setting]) -> None:
    """``check_settings`` for plain data read from a file (a checkpoint, a bundle): the
    same rule, and nothing is ever handed to OmegaConf, whose resolver would run an
    interpolation written into the file. A dotted key is looked up level by level."""
    for key, setting in table.items():
        value: Any = values
        for part in key.split("."):
            value = value.get(part, _ABSENT) if isinstance(value, Mapping) else _ABSENT
        if value is not _ABSENT:
            _check(key, setting, value)


def _check(key: str, setting: Setting, value: Any) -> None:
    if not setting.accepts(value):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."  # a value from a file may be huge
        raise UserError(f"{key} must be {setting.describe()}, got {shown}")


_ABSENT = object()
