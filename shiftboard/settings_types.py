"""What the settings model is made of: the ``SHIFTBOARD_*`` names, value types (ports, flags,
choices) and validation errors turned into one line that names the variable and the fix.

A secret's value (a ``SecretStr`` field) never appears in an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

ENV_PREFIX = "SHIFTBOARD_"


class SettingsError(ValueError):
    """A setting has a value it cannot take; the message names the variable and the fix."""


def env_name(field_name: str) -> str:
    """The environment variable of a setting, e.g. ``gateway_port`` -> ``SHIFTBOARD_GATEWAY_PORT``."""
    return ENV_PREFIX + field_name.upper()


def env_value(value: Any) -> str:
    """A setting's value as its environment variable spells it (secrets in clear: for child processes)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError("is not a valid port (0-65535): pick a free port in that range")
    return value


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def one_of(*choices: str) -> AfterValidator:
    """A text setting that takes one of ``choices``."""
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"is not a valid choice: use {', '.join(choices[:-1])} or {choices[-1]}")
        return value
    return AfterValidator(check)


Port = Annotated[int, AfterValidator(_port)]
Flag = Annotated[bool, BeforeValidator(_stripped)]  # 1/true/yes/on, 0/false/no/off, any case

_PROBLEMS = {
    "int_parsing": "is not a valid int: give a whole number",
    "int_from_float": "is not a valid int: give a whole number",
    "int_type": "is not a valid int: give a whole number",
    "float_parsing": "is not a valid float: give a number",
    "float_type": "is not a valid float: give a number",
    "bool_parsing": "is not a valid bool: use true or false",
    "bool_type": "is not a valid bool: use true or false",
    "string_type": "is not text",
}


def explain(exc: ValidationError, fields: Mapping[str, FieldInfo]) -> str:
    """Every error of ``exc`` (validating a model with ``fields``) on one line: the variable, its value
    (never a secret's), the problem and the fix."""
    return "; ".join(_explain_one(error, fields) for error in exc.errors())


def _explain_one(error: ErrorDetails, fields: Mapping[str, FieldInfo]) -> str:
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "value_error":
        problem = str(ctx.get("error", error["msg"]))
    elif kind == "greater_than_equal":
        problem = f"must be at least {ctx['ge']}"
    elif kind == "greater_than":
        problem = "must be positive" if ctx["gt"] == 0 else f"must be above {ctx['gt']}"
    else:
        problem = _PROBLEMS.get(kind, error["msg"])
    field = str(error["loc"][0]) if error["loc"] else ""
    info = fields.get(field)
    if info is None:  # no field: a check across settings, whose message names them, or an unknown name
        return f"{field} is not a setting (deploy/.env.example lists them)" if field else problem
    if info.annotation is SecretStr:
        return f"{env_name(field)} {problem}"
    default = f" (default: {env_value(info.default)})" if info.default not in ("", None) else ""
    return f"{env_name(field)}={error['input']!r} {problem}{default}"
