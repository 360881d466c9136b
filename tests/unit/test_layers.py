"""The layering DESIGN §8 asks for, read from the import statements: entry points call
services only, the domain is pure, storage looks down only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ccvault"
# Entry points: HTTP routes and their plumbing, the MCP server, the console, the CLI and
# the client. None of them may reach storage/.
ENTRY_POINTS = ["api", "mcp", "console", "client", "cli.py"]


def _modules(part: str) -> list[Path]:
    path = PACKAGE / part
    if path.suffix == ".py":
        return [path]
    return sorted(path.rglob("*.py")) if path.is_dir() else []


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (imports inside functions count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _offences(parts: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for part in parts
        for path in _modules(part)
        for module in sorted(_imports(path))
        if module.startswith(forbidden)
    ]


def test_entry_points_never_import_storage() -> None:
    # runtime.py, the composition root that wires stores to services, is theirs to open.
    assert _offences(ENTRY_POINTS, ("ccvault.storage",)) == []


def test_entry_points_do_not_reach_the_stores_through_the_app_state() -> None:
    # app.state.vault holds the stores; only app.py (which opens and closes it) reads it.
    offences = [
        str(path.relative_to(PACKAGE))
        for part in ENTRY_POINTS
        for path in _modules(part)
        if path.name != "app.py" and "state.vault" in path.read_text()
    ]
    assert offences == []


def test_the_domain_imports_nothing_of_ours_but_the_domain() -> None:
    offences = [o for o in _offences(["domain"], ("ccvault.",)) if "ccvault.domain" not in o]
    assert offences == []


@pytest.mark.parametrize("layer", ["storage", "domain", "extraction"])
def test_lower_layers_never_import_upwards(layer: str) -> None:
    upward = ("ccvault.api", "ccvault.services", "ccvault.runtime", "ccvault.cli")
    if layer == "storage":
        upward += ("ccvault.extraction",)
    assert _offences([layer], upward) == []
