"""Configs as frozen dataclasses, read from YAML with strict checking and dotted overrides.

`load_config(Cls, path, overrides)` reads a YAML mapping into the dataclass `Cls`: an unknown
key or a value of the wrong type is a `ConfigError` naming the key, the file and (for YAML
files) the line. Overrides are `dotted.key=value` strings whose value is parsed as YAML
(`optim.lr=1e-4`, `lora.targets=[q,v]`, `lora=null`).

Supported field types: bool, int, float, str, `X | None`, `tuple[T, ...]`, `Literal[...]`,
nested dataclasses (a mapping, or null when the field is optional) and `dict`.
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, Iterable, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from scoder_jax.errors import ConfigError

_NONE = type(None)


def _lines(text: str) -> dict[str, int]:
    """dotted key -> 1-based line of that key in a YAML document (best effort)."""
    out: dict[str, int] = {}
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return out

    def walk(n, prefix):
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = f"{prefix}{k.value}"
                out[key] = k.start_mark.line + 1
                walk(v, key + ".")

    walk(node, "")
    return out


class _Where:
    def __init__(self, source: str, lines: dict[str, int] | None = None):
        self.source, self.lines = source, lines or {}

    def __call__(self, key: str) -> str:
        line = self.lines.get(key)
        return f"{self.source}:{line}" if line else self.source


def read_yaml(path: str | Path) -> tuple[dict, _Where]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: malformed YAML ({getattr(e, 'problem', None) or e})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data, _Where(str(path), _lines(text))


def parse_override(item: str) -> tuple[str, Any]:
    """'a.b=value' -> ('a.b', parsed YAML value)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected KEY=VALUE (e.g. optim.lr=1e-4)")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(data: dict, overrides: Iterable[str], cls: type | None = None) -> dict:
    """Returns a copy of `data` with each `dotted.key=value` override set (mappings created as needed)."""
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
        key, value = parse_override(item)
        parts = key.split(".")
        node = data
        for i, p in enumerate(parts[:-1]):
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: '{'.'.join(parts[:i + 1])}' is not a section")
            node = nxt
        node[parts[-1]] = value
    return data


def _type_name(t) -> str:
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


def _convert(value: Any, t, key: str, where: _Where) -> Any:
    origin = get_origin(t)
    if origin in (Union, types.UnionType):
        args = get_args(t)
        if value is None:
            if _NONE in args:
                return None
            raise ConfigError(f"{where(key)}: '{key}' must not be null")
        errors = []
        for a in args:
            if a is _NONE:
                continue
            try:
                return _convert(value, a, key, where)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if origin is Literal:
        if value not in get_args(t):
            raise ConfigError(f"{where(key)}: '{key}' = {value!r} is not one of {', '.join(map(repr, get_args(t)))}")
        return value
    if origin is tuple:
        args = get_args(t)
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where(key)}: '{key}' must be a list, got {type(value).__name__}")
        item_t = args[0] if args else Any
        return tuple(_convert(v, item_t, f"{key}[{i}]", where) for i, v in enumerate(value))
    if origin is dict or t is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where(key)}: '{key}' must be a mapping, got {type(value).__name__}")
        return dict(value)
    if dataclasses.is_dataclass(t):
        if isinstance(value, t):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where(key)}: '{key}' must be a mapping, got {type(value).__name__}")
        return from_dict(t, value, where=where, prefix=key + ".")
    if t is Any:
        return value
    if t is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where(key)}: '{key}' must be true or false, got {value!r}")
        return value
    if t is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where(key)}: '{key}' must be an integer, got {value!r}")
        return value
    if t is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML reads 1e-4 (no dot) as a string; accept numeric strings
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ConfigError(f"{where(key)}: '{key}' must be a number, got {value!r}")
        return float(value)
    if t is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where(key)}: '{key}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"{where(key)}: '{key}' has unsupported type {_type_name(t)}")


class FieldError(ConfigError):
    """A config value its dataclass rejects (`__post_init__`); `field` is the key within it.
    Raised by a config built in code, it reads "'field' message"; read from a file, the loader
    names the dotted key, the file and the line instead."""

    def __init__(self, field: str, message: str):
        super().__init__(f"'{field}' {message}")
        self.field, self.message = field, message


def require(ok: bool, field: str, message: str) -> None:
    """In a config's `__post_init__`: `field` (a key of that dataclass) must satisfy `ok`.
    The loader turns a failure into a ConfigError naming the dotted key, the file and line."""
    if not ok:
        raise FieldError(field, message)


def from_dict(cls, data: dict, *, where: _Where | str = "<config>", prefix: str = ""):
    """Builds dataclass `cls` from a mapping; unknown keys and wrong types raise ConfigError."""
    if isinstance(where, str):
        where = _Where(where)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = prefix + str(unknown[0])
        raise ConfigError(f"{where(key)}: unknown key '{key}' (known here: {', '.join(fields)})")
    kwargs = {k: _convert(v, hints[k], prefix + k, where) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except FieldError as e:
        key = prefix + e.field
        raise ConfigError(f"{where(key)}: '{key}' {e.message}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where.source}: {prefix.rstrip('.') or cls.__name__}: {e}") from None


def to_dict(obj) -> dict:
    """A dataclass config as plain YAML/JSON-able data (tuples become lists)."""

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(obj)


def load_config(cls, path: str | Path | None = None, overrides: Iterable[str] = (), *, section: str | None = None):
    """Reads `cls` from a YAML file (or defaults when `path` is None), then applies overrides.

    With `section`, a file whose top level has that key (a whole project config) is read from
    that key; otherwise the whole file is the section.
    """
    data: dict = {}
    where = _Where("<defaults>")
    prefix_lines = ""
    if path is not None:
        data, where = read_yaml(path)
        if section is not None and isinstance(data.get(section), dict):
            data = data[section]
            prefix_lines = section + "."
    if prefix_lines:
        where = _Where(where.source, {k[len(prefix_lines):]: v for k, v in where.lines.items()
                                      if k.startswith(prefix_lines)})
    overrides = list(overrides)
    data = apply_overrides(data, overrides)
    for item in overrides:  # errors in an override name the override, not the file
        key = parse_override(item)[0]
        where.lines.pop(key, None)
    try:
        return from_dict(cls, data, where=where)
    except ConfigError as e:
        for item in overrides:
            key = parse_override(item)[0]
            if f"'{key}" in str(e):
                raise ConfigError(f"{e} (from override {item!r})") from None
        raise


def dump_yaml(obj) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False)


__all__ = ["load_config", "from_dict", "require", "FieldError", "to_dict", "apply_overrides", "parse_override",
           "read_yaml", "dump_yaml"]
