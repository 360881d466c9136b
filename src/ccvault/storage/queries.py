"""Named SQL blocks loaded from the .sql files beside this module.

Each block starts with `-- name: <query_name>`; the comment lines after it say why the
query is shaped the way it is. Keeping SQL in .sql files keeps it readable and greppable.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse_blocks(text: str) -> dict[str, str]:
    """Split a .sql file into {name: statement}."""
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@cache
def load(filename: str, package: str = "ccvault.storage") -> dict[str, str]:
    """Return the named queries of one .sql file of a package, parsed once."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    return parse_blocks(text)
