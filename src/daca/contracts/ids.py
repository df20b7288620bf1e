"""The one definition of a valid id (user, session, turn), used by every API, event and key.

An id is 1..128 characters of letters, digits and ``. _ ~ @ + = -``, starting with a letter or
a digit. So an id is always one safe URL path segment (no ``/ ? # %``, no spaces, never ``.``
or ``..``), and it never contains ``:``, which the memory service reserves as the separator of
its state keys (``session:{id}:page:{n}``), nor ``||``, Dapr's key-prefix separator; so no two
different ids can make the same key.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

MAX_IDENTIFIER_LENGTH = 128
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~@+=-]{0,127}$"
IDENTIFIER_RULE = (
    "1..128 characters: letters, digits and . _ ~ @ + = -, starting with a letter or digit"
)
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


def validate_identifier(value: str) -> str:
    """Return ``value`` if it is a valid id, else raise ``ValueError`` saying what an id is."""
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(f"must be {IDENTIFIER_RULE}")
    return value


Identifier = Annotated[
    str,
    AfterValidator(validate_identifier),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": IDENTIFIER_PATTERN,
            "minLength": 1,
            "maxLength": MAX_IDENTIFIER_LENGTH,
            "description": IDENTIFIER_RULE,
        }
    ),
]
"""A user, session or turn id (see the module docstring)."""
