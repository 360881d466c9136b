"""Generates `_sync.py` (`Vault`) from `_async.py` (`AsyncVault`).

Why generation: the two clients must have the same methods, signatures, docstrings and
behaviour, and a blocking twin written by hand would drift. Everything that is not I/O
(requests, answers, errors, retry decisions) is shared in `_core.py`; what remains differs
between the two only in keywords and names, which this rewrites mechanically:

    python src/ccvault/client/_unasync.py          # rewrite _sync.py
    python src/ccvault/client/_unasync.py --check  # exit 1 if _sync.py is stale (a test runs it)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SOURCE = HERE / "_async.py"
TARGET = HERE / "_sync.py"
HEADER = "# Generated from _async.py by `python src/ccvault/client/_unasync.py`: do not edit.\n"
DOCSTRING = '''"""`Vault`: the vault's HTTP API as blocking, resource-shaped methods.

Generated from `_async.py` (`AsyncVault`), which is the client written by hand: edit that
and regenerate. Requests, answers, errors and retry decisions are shared in `_core.py`."""
'''

# (pattern, replacement), applied in order.
RULES: list[tuple[str, str]] = [
    (r"\basync (def|for|with)\b", r"\1"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"^import asyncio$", "import time"),
    (r"\bawaitable\b", "blocking"),
    # AsyncVault -> Vault, AsyncIterator -> Iterator, httpx.AsyncClient -> httpx.Client...
    (r"\b(_?)Async(?=[A-Z])", r"\1"),
]


def generate(source: str) -> str:
    """The blocking twin of the async module's text."""
    # The async module's own docstring speaks of itself; the twin gets its own.
    start = source.index('"""')
    end = source.index('"""', start + 3) + 4
    text = source[end:]
    for pattern, replacement in RULES:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    text = source[:start] + DOCSTRING + text
    return HEADER + _format(text)


def _format(text: str) -> str:
    # Dropping `await` shortens lines and leaves loops `yield from` says better; ruff (the
    # repo's linter and formatter) settles both as it would on a file written by hand.
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    name = ["--stdin-filename", str(TARGET), "-"]
    fix = [ruff, "check", "--fix", "--unsafe-fixes", "--select", "I,UP028", "--quiet", *name]
    for command in (fix, [ruff, "format", *name]):
        text = subprocess.run(  # noqa: S603 (our own tools on our own text)
            command, input=text, capture_output=True, text=True, check=False
        ).stdout
    return text


def main(argv: list[str]) -> int:
    """Write _sync.py, or with --check only compare."""
    wanted = generate(SOURCE.read_text())
    if "--check" in argv:
        if TARGET.read_text() != wanted:
            print(f"{TARGET} is stale: run python src/ccvault/client/_unasync.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
