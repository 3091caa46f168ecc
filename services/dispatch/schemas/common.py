"""Field types every part of the dispatch API shares."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, StrictBool

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def one_line(value: str) -> str:
    """Return ``value`` when it can be one email header line; raise ValueError on CR, LF or any control
    character (a header injection, or every email of the workspace failing to build)."""
    if _CONTROL.search(value):
        raise ValueError(
            "must be one line without control characters (CR, LF, tab …): it becomes an email header"
        )
    return value


HeaderLine = Annotated[str, AfterValidator(one_line)]
"""Text that ends up in an email header: From, Reply-To, Subject, a sender name."""

Flag = StrictBool
"""A JSON boolean, true or false: "yes", "1" or 1 are refused (422), never read as true."""


def example(value: dict[str, Any]) -> ConfigDict:
    """The ``model_config`` of a body whose documentation shows ``value`` as its example."""
    return ConfigDict(json_schema_extra={"examples": [value]})
