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


def _instant(when: datetime | str) -> datetime:
    """A datetime, or the ISO text the JSON reads carry."""
    return datetime.fromisoformat(when) if isinstance(when, str) else when


def ago(when: datetime | str | None, now: datetime | None = None) -> str:
    """'3 days ago' / 'in 2 hours' / 'just now' (the largest whole unit)."""
    if not when:
        return ""
    try:
        when = _instant(when)
    except ValueError:
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


def timestamp(when: datetime | str | None) -> Markup:
    """A <time> element: UTC text the page's script turns into the viewer's time zone,
    with the relative age beside it (ISO text, as job rows carry, is read first)."""
    if isinstance(when, str):
        try:
            when = _instant(when)
        except ValueError:
            return Markup("{}").format(when)
    if when is None:
        return Markup('<span class="muted">—</span>')
    utc = when.astimezone(UTC)
    # Built from digits and fixed words only, so no escaping is needed (and this runs a
    # few dozen times per profile page: Markup.format would be most of its render time).
    iso = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = utc.strftime("%Y-%m-%d %H:%M UTC")
    html = f'<time datetime="{iso}" title="{iso}">{text}</time> <span class="age">{ago(utc)}</span>'
    return Markup(html)  # noqa: S704 (digits and fixed words only)


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
    text = escape("deleted" if deleted else str(status))
    return Markup(f'<span class="badge b-{text}">{text}</span>')  # noqa: S704 (escaped above)


FILTERS = {
    "ago": ago,
    "timestamp": timestamp,
    "value_text": value_text,
    "percent": percent,
    "badge": badge,
}
