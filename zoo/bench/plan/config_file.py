"""``config.toml``: the whole :class:`~zoo.bench.plan.profiles.Config` a results folder was made
with, which ``zoo-bench --config <folder>/config.toml`` runs again (:func:`zoo.bench.plan.cli.parse`
checks each setting as it checks the flag of the same name).

Python reads TOML (``tomllib``) but does not write it; :func:`dumps` writes the flat tables
this file needs (strings, integers, floats, booleans and lists of them). A setting that is
``None`` (the preset's own value) has no TOML form: it is left out, and a comment names it.
The ``[versions]`` table records the versions the folder was made with, for information
only; a rerun does not check them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import tomllib
from importlib import metadata
from pathlib import Path

from zoo.bench.plan import parsing
from zoo.bench.plan.profiles import Config

__all__ = ["NAME", "UNSAVED", "dumps", "read", "render", "write", "write_settings"]

NAME = parsing.CONFIG
#: Config fields not in the file: the output folder is the one that holds it
UNSAVED = ("out",)
#: what a setting left as ``None`` means, for the file's comments
UNSET = {
    "data": "no user points",
    "net": "the zoo's own networks",
    "width": "the preset's network width (ScoreNet 256)",
    "learning_rate": "each family's preset value (zoo.presets)",
    "batch_size": "each family's preset value (zoo.presets)",
}
VERSIONS = ("jax", "jaxlib", "dm-haiku", "optax", "diffrax", "equinox", "numpy")

Scalar = str | int | float | bool


def _value(value: Scalar | list[Scalar] | tuple[Scalar, ...]) -> str:
    """One TOML value: a basic string, integer, float, boolean or array of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # the shortest form that reads back equal: 0.001, 1e-05, 128000.0
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's too
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_value, value)) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__} {value!r}")


def dumps(
    top: dict[str, Scalar | list], tables: dict[str, dict[str, Scalar | list]] | None = None
) -> str:
    """TOML text of the keys ``top`` and then one ``[table]`` per entry of ``tables``, all
    flat (no nested tables); ``tomllib.loads`` gives back ``{**top, **tables}``."""
    lines = [f"{key} = {_value(value)}" for key, value in top.items()]
    for name, table in (tables or {}).items():
        lines += ["", f"[{name}]", *(f"{key} = {_value(value)}" for key, value in table.items())]
    return "\n".join(lines) + "\n"


def _versions() -> dict[str, str]:
    import zoo

    found = {"python": platform.python_version(), "zoo": zoo.__version__}
    for package in VERSIONS:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def render(config: Config) -> str:
    """The text of ``config.toml`` for ``config``."""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in UNSAVED}
    unset = [k for k, v in fields.items() if v is None]
    header = [
        "# zoo-bench settings of this results folder. `zoo-bench --config <this file>` runs",
        "# them again into the folder that holds it (or --out), reusing its cache; a flag",
        "# given beside --config overrides the setting of the same name.",
    ]
    header += [f"# {k} is not set: {UNSET.get(k, 'the default')}" for k in unset]
    settings = dumps({k: v for k, v in fields.items() if v is not None})
    versions = dumps({}, {"versions": _versions()})
    note = "# For information only: what this folder was made with (a rerun does not check it)."
    return "\n".join([*header, settings, note]) + versions


def write(config: Config, folder: Path) -> Path:
    """Write ``folder/config.toml`` for ``config`` (atomically); returns its path."""
    from zoo.bench import cache

    path = Path(folder) / NAME
    cache.write_bytes(path, render(config).encode())
    return path


def write_settings(folder: Path, command: str, settings: dict[str, str | bool]) -> Path | None:
    """Write ``folder/config.toml`` for ``zoo-bench <command>``: ``settings`` (from
    :func:`zoo.bench.plan.parsing.settings`, each flag's value as given on the command line,
    which ``--config`` gives back to the same checks) and the versions; returns its path. A
    folder that holds another command's ``config.toml`` keeps it, and ``None`` is returned:
    ``zoo-bench gpu`` runs the speed benchmark into the comparison's folder."""
    from zoo.bench import cache

    path = Path(folder) / NAME
    if path.is_file() and not path.read_text().startswith(f"# zoo-bench {command} settings"):
        return None
    header = [
        f"# zoo-bench {command} settings of this results folder. `zoo-bench {command} --config",
        "# <this file>` runs them again into the folder that holds it (or --out); a flag given",
        "# beside --config overrides the setting of the same name. Each value is the flag's",
        "# text as it would be typed.",
    ]
    note = "# For information only: what this folder was made with (a rerun does not check it)."
    text = "\n".join([*header, dumps(settings), note]) + dumps({}, {"versions": _versions()})
    cache.write_bytes(path, text.encode())
    return path


def read(path: str | Path) -> dict:
    """The settings of a ``config.toml`` (its ``[versions]`` table dropped): Config field ->
    TOML value; ``ValueError`` naming an unreadable file or a key that is not a setting."""
    try:
        with open(path, "rb") as f:
            settings = tomllib.load(f)
    except OSError as e:
        raise ValueError(f"cannot read {str(path)!r}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{str(path)!r} is not valid TOML: {e}") from None
    settings.pop("versions", None)
    known = [f.name for f in dataclasses.fields(Config) if f.name not in UNSAVED]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(
            f"{str(path)!r} has unknown settings {', '.join(unknown)}; expected some of "
            f"{', '.join(known)}"
        )
    return settings
