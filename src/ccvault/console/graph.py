"""The lineage graph's layout, drawn by the server as SVG: ancestors in columns to the
left of the item, descendants to the right, one column per depth, an arrow from each
source to what was derived from it. Pure: lineage answers in, boxes and lines out."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from ccvault.domain.models import Lineage, LineageEntry

NODE_W = 190
NODE_H = 50
COL_GAP = 70
ROW_GAP = 22
PAD = 16


@dataclass(frozen=True)
class Node:
    """One item's box: where it is, what it is, and whether it is the item asked about."""

    item_id: UUID
    name: str
    item_type: str
    status: str
    deleted: bool
    column: int
    x: int
    y: int
    focus: bool


@dataclass(frozen=True)
class Edge:
    """An arrow from a source's right edge to its derived item's left edge."""

    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Graph:
    """Everything the template draws."""

    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def layout(ancestors: Lineage, descendants: Lineage) -> Graph:
    """Place the item (column 0), its ancestors (columns -1, -2, ...) and descendants
    (1, 2, ...); an item reached both ways (a cycle) is drawn once, where first met."""
    placed: dict[UUID, tuple[LineageEntry, int]] = {}
    for entry in ancestors.chain:
        placed.setdefault(entry.item_id, (entry, -entry.depth))
    for entry in descendants.chain:
        placed.setdefault(entry.item_id, (entry, entry.depth))
    columns = sorted({column for _, column in placed.values()})
    first = columns[0] if columns else 0
    rows: dict[int, int] = {}
    nodes: list[Node] = []
    for entry, column in placed.values():
        row = rows.get(column, 0)
        rows[column] = row + 1
        nodes.append(
            Node(
                item_id=entry.item_id,
                name=entry.name,
                item_type=entry.item_type.value,
                status=entry.status.value,
                deleted=entry.deleted_at is not None,
                column=column,
                x=PAD + (column - first) * (NODE_W + COL_GAP),
                y=PAD + row * (NODE_H + ROW_GAP),
                focus=entry.depth == 0,
            )
        )
    at = {node.item_id: node for node in nodes}
    edges = []
    for entry, _ in placed.values():
        source = _as_uuid(entry.source_item_id)
        if source is None or source not in at or entry.item_id not in at:
            continue
        s, d = at[source], at[entry.item_id]
        edges.append(Edge(s.x + NODE_W, s.y + NODE_H // 2, d.x, d.y + NODE_H // 2))
    width = 2 * PAD + max(1, len(columns)) * (NODE_W + COL_GAP) - COL_GAP
    height = 2 * PAD + max([*rows.values(), 1]) * (NODE_H + ROW_GAP) - ROW_GAP
    return Graph(nodes=nodes, edges=edges, width=width, height=height)


def _as_uuid(text: str | None) -> UUID | None:
    # Sources outside the vault (sessions, tools) are not UUIDs and have no box.
    if not text:
        return None
    try:
        return UUID(text)
    except ValueError:
        return None
