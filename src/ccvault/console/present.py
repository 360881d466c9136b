"""How values look on a page: relative ages, timestamps, values of any JSON type. Pure
functions, registered as template filters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

_UNITS = (
    ("year", 365 * 86400),
    ("month", 30 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
)


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """'3 days ago' / 'in 2 hours' / 'just now' (the largest whole unit)."""
    if when is None:
        return ""
    now = now or datetime.now(UTC)
    seconds = (now - when).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in _UNITS:
        if seconds >= size:
            n = int(seconds // size)
            text = f"{n} {unit}{'' if n == 1 else 's'}"
            return f"in {text}" if future else f"{text} ago"
    return "in a moment" if future else "just now"


def timestamp(when: datetime | None) -> Markup:
    """A <time> element: UTC text the page's script turns into the viewer's time zone,
    with the relative age beside it."""
    if when is None:
        return Markup('<span class="muted">—</span>')
    utc = when.astimezone(UTC)
    iso = utc.isoformat().replace("+00:00", "Z")
    text = utc.strftime("%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{}" title="{}">{}</time> <span class="age">{}</span>').format(
        iso, iso, text, ago(utc)
    )


def value_text(value: Any) -> str:
    """A stored value as text: strings as they are, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def percent(confidence: float | None) -> str:
    """A confidence as a whole percentage."""
    return "—" if confidence is None else f"{round(confidence * 100)}%"


def badge(status: object, deleted: bool = False) -> Markup:
    """A status badge (its colour comes from the stylesheet's class of that status)."""
    text = "deleted" if deleted else str(status)
    return Markup('<span class="badge b-{}">{}</span>').format(escape(text), escape(text))


FILTERS = {
    "ago": ago,
    "timestamp": timestamp,
    "value_text": value_text,
    "percent": percent,
    "badge": badge,
}
