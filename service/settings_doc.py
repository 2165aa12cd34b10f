"""The settings reference, ``docs/settings.md``, built from the pydantic-settings classes.

``python -m service.settings_doc > docs/settings.md`` regenerates it; `tests/test_docs.py`
fails while the committed file and `render_settings_reference` differ. Every field of
`service.settings.Settings` is listed under the deployables that read it, which follow from
the class that first declares it (`CoreSettings` -> `IngestSettings`, `InferenceSettings`,
`PublishSettings` -> `Settings`); the JSON objects inside settings (`SiteConfig`,
`SubscriberConfig`) follow. Secret values (``SecretStr``, or a model holding one) are never
printed, defaults included.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel, SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python
from pydantic_settings import BaseSettings

from core.settings import ENV_PREFIX, CoreSettings
from ingest.settings import IngestSettings
from service.publish.settings import PublishSettings
from service.settings import InferenceSettings, Settings

COMMAND = "python -m service.settings_doc > docs/settings.md"
HIDDEN_DEFAULT = "(holds secrets: not shown)"
_CONSTRAINTS = (
    ("gt", "> {}"),
    ("ge", ">= {}"),
    ("lt", "< {}"),
    ("le", "<= {}"),
    ("multiple_of", "multiple of {}"),
    ("min_length", "length >= {}"),
    ("max_length", "length <= {}"),
    ("pattern", "matches {}"),
)
_COLUMNS = ("type", "default", "constraints", "description")


@dataclass(frozen=True)
class Layer:
    """A settings class and the deployables that read the fields it declares first."""

    settings_class: type[BaseSettings]
    module: str
    title: str
    readers: str


def layers() -> list[Layer]:
    """The settings classes, bottom first: a field belongs to the first that declares it."""
    return [
        Layer(
            CoreSettings,
            "core/settings.py",
            "Every deployable",
            "the ingest worker, the inference worker, the publisher and the API",
        ),
        Layer(IngestSettings, "ingest/settings.py", "Ingest", "the ingest worker and the API"),
        Layer(
            InferenceSettings,
            "service/settings.py",
            "Inference",
            "the inference worker and the API",
        ),
        Layer(
            PublishSettings,
            "service/publish/settings.py",
            "Publishing",
            "the publisher and the API",
        ),
        Layer(Settings, "service/settings.py", "API", "the API only"),
    ]


def declaring_layer(name: str, stack: list[Layer]) -> Layer:
    """The first layer of ``stack`` whose class has the field ``name``."""
    return next(layer for layer in stack if name in layer.settings_class.model_fields)


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables a settings field is read from: its aliases, else
    ``NOWCAST_`` + the name in capitals."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    if isinstance(alias, str):
        return [alias]
    return [ENV_PREFIX + name.upper()]


def type_name(annotation: Any) -> str:
    """A short readable name of a type annotation: ``Path | None``, ``tuple[str, ...]``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if origin is Literal:
        return "Literal[" + ", ".join(json.dumps(arg) for arg in args) + "]"
    if origin is not None:
        inner = ", ".join("..." if arg is Ellipsis else type_name(arg) for arg in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    return str(getattr(annotation, "__name__", annotation))


def holds_secret(annotation: Any) -> bool:
    """True when a value of ``annotation`` is or contains a secret (SecretStr, SecretBytes)."""
    if annotation in (SecretStr, SecretBytes):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(holds_secret(f.annotation) for f in annotation.model_fields.values())
    return any(holds_secret(arg) for arg in get_args(annotation))


def default_text(field: FieldInfo) -> str:
    """The default as it would be written in the environment (JSON for containers),
    ``required``, ``unset`` for None, or a placeholder for a secret."""
    if holds_secret(field.annotation):
        return HIDDEN_DEFAULT
    value = field.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    plain = to_jsonable_python(value)
    return plain if isinstance(plain, str) else json.dumps(plain)


def constraints_text(field: FieldInfo) -> str:
    """The constraints pydantic keeps in the field's metadata (bounds, pattern), joined."""
    found = []
    for item in field.metadata:
        for attribute, template in _CONSTRAINTS:
            value = getattr(item, attribute, None)
            if value is not None:
                found.append(template.format(value))
    return ", ".join(found)


def cell(text: str, code: bool = False) -> str:
    """``text`` made safe for a Markdown table cell (pipes escaped), in backticks if ``code``."""
    if not text:
        return ""
    safe = text.replace("|", "\\|").replace("\n", " ")
    return f"`{safe}`" if code else safe


def field_row(first: str, field: FieldInfo) -> str:
    """One table row: ``first`` (already rendered), type, default, constraints, description."""
    cells = [
        first,
        cell(type_name(field.annotation), code=True),
        cell(default_text(field), code=True),
        cell(constraints_text(field), code=True),
        cell(field.description or ""),
    ]
    return "| " + " | ".join(cells) + " |"


def table_head(first: str) -> list[str]:
    """The header and rule lines of a table whose first column is ``first``."""
    names = (first, *_COLUMNS)
    return ["| " + " | ".join(names) + " |", "|" + " --- |" * len(names)]


def layer_section(layer: Layer, names: list[str]) -> list[str]:
    """The lines of one deployable group: heading, who reads it, a row per field in ``names``."""
    fields = Settings.model_fields
    lines = [
        f"## {layer.title}",
        "",
        f"Declared by `{layer.settings_class.__name__}` (`{layer.module}`); "
        f"used by {layer.readers}.",
        "",
        *table_head("variable"),
    ]
    for name in names:
        variables = " or ".join(f"`{env}`" for env in env_names(name, fields[name]))
        lines.append(field_row(variables, fields[name]))
    return [*lines, ""]


def nested_models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a settings value holds (e.g. `SubscriberConfig` in a tuple)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in nested_models(arg)]


def model_section(model: type[BaseModel], used_by: list[str]) -> list[str]:
    """The lines of one JSON object's table: its fields, and the settings holding it."""
    holders = ", ".join(f"`{env}`" for env in used_by)
    lines = [f"### `{model.__name__}`", "", f"In {holders}.", "", *table_head("field")]
    for name, field in model.model_fields.items():
        lines.append(field_row(f"`{name}`", field))
    return [*lines, ""]


def objects_section() -> list[str]:
    """The section on the JSON objects inside settings, one table per model."""
    holders: dict[type[BaseModel], list[str]] = {}
    for name, field in Settings.model_fields.items():
        for model in nested_models(field.annotation):
            holders.setdefault(model, []).extend(env_names(name, field))
    lines = [
        "## JSON objects inside settings",
        "",
        "Fields of the objects that some settings hold, written as JSON in the variable.",
        "",
    ]
    for model, used_by in holders.items():
        lines.extend(model_section(model, used_by))
    return lines


def header() -> list[str]:
    """The title and the introduction: generated by which command, how values are read."""
    return [
        "# Settings reference",
        "",
        "Generated from the settings classes by",
        "",
        f"    {COMMAND}",
        "",
        "Do not edit it by hand: change the field's `description=` (or the field) in its",
        "settings module and rerun the command; `tests/test_docs.py` fails while they differ.",
        "",
        "Every setting is an environment variable: `NOWCAST_` and the field name in capitals,",
        "except the Redis URL (`REDIS_URL`). Lists, mappings and objects are written as JSON,",
        'e.g. `NOWCAST_METHODS=\'["convlstm", "persistence"]\'`. The `nowcast` command',
        "refuses a `NOWCAST_*` variable that is no setting (misspelled?) before any verb runs",
        "(`nowcast health` reports it as unhealthy), and a value that breaks a constraint",
        "stops the process; errors name the setting, never its value. Rules beyond the",
        "constraints below (e.g. `dbz_max` above `dbz_min`) are checked by validators and",
        "given in the descriptions.",
        "",
        "Which deployables use a setting follows from the settings class that declares it. A",
        "process may load a class holding more than it uses: the API and the all-in-one demo",
        "(`nowcast demo`) load `Settings`, which holds them all. Secret values (and defaults",
        "of settings that hold secrets) are never shown here.",
        "",
    ]


def render_settings_reference() -> str:
    """The whole reference as Markdown (the content of ``docs/settings.md``)."""
    stack = layers()
    groups: dict[str, list[str]] = {layer.title: [] for layer in stack}
    for name in Settings.model_fields:
        groups[declaring_layer(name, stack).title].append(name)
    lines = header()
    for layer in stack:
        lines.extend(layer_section(layer, groups[layer.title]))
    lines.extend(objects_section())
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    """Write the reference to standard output."""
    sys.stdout.write(render_settings_reference())


if __name__ == "__main__":
    main()
