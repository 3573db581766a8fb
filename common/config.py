"""Typed configuration: one dataclass per stage, filled from one section of a TOML file."""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from common.errors import PipelineError

T = TypeVar("T")

def load_config(path: str | Path | None, schema: dict[str, type]) -> dict[str, Any]:
    """Every section of `schema` (name -> dataclass) from a config file, over the code's defaults.
    The file is merged over the base configs it names; every layer's sections and keys are checked
    against the whole schema (a misspelt one is refused naming its file, whichever stage reads it).
    The schema comes from the caller (pipeline.config.SCHEMA), so this module knows no stage."""
    merged: dict[str, Any] = {}
    where = "(defaults)"
    if path is not None:
        merged, layers = load_layers(path)
        for file, raw in layers:
            check_keys(raw, schema, file)
        where = str(path)
    return {name: from_dict(cls, merged.get(name), f"{where} [{name}]") for name, cls in schema.items()}


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{path}: invalid TOML ({exc})") from None


def load_layers(path: str | Path) -> tuple[dict[str, Any], list[tuple[Path, dict[str, Any]]]]:
    """A config file merged over the base configs it names (top-level `base = "other.toml"`, relative
    to the file), and each file's own content (so checks can name the file a key came from).

    Why: a config then holds only what differs from the code's defaults or from its base, so each
    value lives in one place. Sections merge key by key; a key's value (a list, a table of schemes)
    is replaced whole."""
    layers: list[tuple[Path, dict[str, Any]]] = []
    path = Path(path)
    while True:
        raw = load_toml(path)
        layers.append((path, raw))
        base = raw.pop("base", None)
        if base is None:
            break
        if not isinstance(base, str):
            raise PipelineError(f"{path}: base must be a file name, got {base!r}")
        path = (path.parent / base).resolve()
        if any(path == p.resolve() for p, _ in layers):
            raise PipelineError(f"{path}: base configs form a cycle")
    merged: dict[str, Any] = {}
    for _, raw in reversed(layers):
        for section, values in raw.items():
            if isinstance(values, dict) and isinstance(merged.get(section), dict):
                merged[section] = merged[section] | values
            else:
                merged[section] = values
    return merged, layers


def check_keys(raw: dict[str, Any], schema: dict[str, type], where: Path) -> None:
    """Refuse sections and keys that `schema` (section -> dataclass) does not know, naming the file:
    a misspelt section must not silently train on defaults."""
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise PipelineError(f"{where}: unknown section(s) {', '.join(unknown)}; known: {', '.join(schema)}")
    for section, values in raw.items():
        if not isinstance(values, dict):
            raise PipelineError(f"{where}: [{section}] must be a table")
        _check_fields(schema[section], values, f"{where} [{section}]")


def _check_fields(cls: type, values: dict[str, Any], where: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise PipelineError(f"{where}: unknown key(s) {', '.join(unknown)}")
    hints = get_type_hints(cls)
    for name, value in values.items():  # tables of dataclasses (mmcf.schemes): their keys too
        args = getattr(hints[name], "__args__", ())
        if getattr(hints[name], "__origin__", None) is list and args and dataclasses.is_dataclass(args[0]) \
                and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _check_fields(args[0], item, f"{where}.{name}[{i}]")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str) -> T:
    """Build dataclass `cls` from `data`, refusing unknown keys and wrong types so typos fail loudly."""
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise PipelineError(f"{where}: unknown key(s) {', '.join(unknown)}")
    hints = get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value, f"{where}.{name}")
        elif not _type_ok(value, hint):
            raise PipelineError(f"{where}.{name}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
        elif hint is float and isinstance(value, int):
            value = float(value)
        elif getattr(hint, "__origin__", None) is tuple:
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except PipelineError as exc:  # value checks in __post_init__: name the file too
        raise PipelineError(f"{where}: {exc}") from None


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def _type_ok(value: Any, hint: Any) -> bool:
    origin = getattr(hint, "__origin__", None)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True
