"""TOML configs made of frozen dataclass tables, with ``--set table.key=value`` overrides.

The one config system of edge-slr's training: the student (edge_slr.training.config), the video
teacher (edge_slr.training.teacher.config) and the gloss corrector
(edge_slr.training.corrector.config). A config class derives from :class:`TomlConfig` and is a
frozen dataclass whose fields are the tables, each a frozen dataclass validated on construction.
Reading checks every key and coerces every value to the field's type, so a typo or a wrong type
is an InputError (FormatError naming the file) instead of a silently ignored setting. A table
given in a file only changes the keys it names: the others keep the config's own defaults for
that table (the teacher's [train] defaults are not the student's).

Overrides name a table and a key, ``train.lr=3e-4`` or ``model.conv_channels=[64,64,128,128]``;
the value is read as a TOML value (a bare word is taken as a string).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from edge_slr.errors import FormatError, InputError

C = TypeVar("C", bound="TomlConfig")


class TomlConfig:
    """Mixin for a frozen dataclass of config tables (each a frozen dataclass)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: section_dict(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any], where: str = "config") -> C:
        return build(cls, data, where)

    def with_overrides(self: C, overrides: Iterable[str]) -> C:
        """Apply ``table.key=value`` strings (as from ``--set``); InputError names a bad one."""
        data = self.to_dict()
        for item in overrides:
            section, key, value = parse_override(item)
            if section not in data:
                raise InputError(f"--set {item!r}: unknown table {section!r}; known: {list(data)}")
            data[section][key] = value
        return type(self).from_dict(data, where="--set")

    @classmethod
    def load(cls: type[C], path: str | Path | None = None, overrides: Iterable[str] = ()) -> C:
        """Read a TOML config (None: all defaults) and apply ``--set`` overrides."""
        config = cls()
        if path is not None:
            path = Path(path)
            try:
                config = cls.from_dict(read_toml(path), where=str(path))
            except InputError as err:
                raise FormatError(path, str(err)) from None
        return config.with_overrides(overrides)


def read_toml(path: Path) -> dict[str, Any]:
    """The tables of a TOML file; FormatError when it is missing or not TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError(path, "config file does not exist") from None
    try:
        return toml_module().loads(text)
    except Exception as err:  # tomllib.TOMLDecodeError carries the line in its message
        raise FormatError(path, f"not valid TOML ({err})") from None


def toml_module() -> Any:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from edge_slr._optional import require

        return require("tomli", "reading TOML configs on Python 3.10")
    return tomllib


def section_dict(section: Any) -> dict[str, Any]:
    """A table as TOML-like values (tuples become lists); its own to_dict() when it has one."""
    if hasattr(section, "to_dict"):
        return dict(section.to_dict())
    out = {}
    for f in fields(section):
        if not f.init:
            continue
        value = getattr(section, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def parse_override(item: str) -> tuple[str, str, Any]:
    """``table.key=value`` -> (table, key, value read as TOML, else the bare string)."""
    key, sep, text = item.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not section or not name:
        raise InputError(f"--set expects TABLE.KEY=VALUE (e.g. train.lr=3e-4), got {item!r}")
    try:
        value = toml_module().loads(f"v = {text.strip()}")["v"]
    except Exception:
        value = text.strip()  # a bare word: a string
    return section, name, value


def build(cls: type, data: Mapping[str, Any], where: str, table: str = "") -> Any:
    """Instantiate dataclass ``cls`` from ``data``, checking keys and coercing types.

    ``table`` names ``cls`` in messages ("" for a whole config, whose keys are tables). A field
    that is itself a dataclass (a table) starts from its default and takes the keys given.
    """
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init}
    unknown = sorted(set(data) - set(known))
    if unknown:
        what = f"{table} option(s)" if table else "table(s)"
        raise InputError(f"{where}: unknown {what} {unknown}; known: {sorted(known)}")
    values = {}
    for name, raw in data.items():
        expected = hints[name]
        if is_dataclass(expected):
            default = _default(known[name])
            if isinstance(raw, Mapping) and default is not None:
                raw = section_dict(default) | dict(raw)
            values[name] = build(typing.cast(type, expected), raw, f"{where} [{name}]", name)
        else:
            values[name] = _coerce(raw, expected, f"{where}: {name}")
    return cls(**values)


def _default(f: Any) -> Any:
    """The default value of dataclass field ``f`` (None when it has none)."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def _coerce(value: Any, expected: Any, where: str) -> Any:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(expected)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                try:
                    return _coerce(value, option, where)
                except InputError:
                    continue
        raise InputError(f"{where}: {value!r} is not a {expected}")
    if origin is tuple:
        args = typing.get_args(expected)
        if not isinstance(value, (list, tuple)) or (... not in args and len(value) != len(args)):
            raise InputError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        item_types = [args[0]] * len(value) if ... in args else list(args)
        return tuple(_coerce(v, t, where) for v, t in zip(value, item_types, strict=True))
    if expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if expected in (int, str, bool) and type(value) is expected:
        return value
    raise InputError(f"{where}: expected {getattr(expected, '__name__', expected)}, got {value!r}")
