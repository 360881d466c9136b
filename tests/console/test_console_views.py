"""The console's pure parts: relative ages, timestamps, badges, the lineage layout and
the session cookie codec."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ccvault import console
from ccvault.console.graph import NODE_H, NODE_W, layout
from ccvault.console.present import ago, badge, timestamp, value_text
from ccvault.console.security import Session, SessionCodec, SignInLimiter
from ccvault.domain.models import Lineage, LineageEntry

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def test_ages_name_the_largest_whole_unit() -> None:
    assert ago(NOW - timedelta(days=3, hours=5), NOW) == "3 days ago"
    assert ago(NOW - timedelta(hours=1), NOW) == "1 hour ago"
    assert ago(NOW + timedelta(days=800), NOW) == "in 2 years"
    assert ago(NOW - timedelta(seconds=20), NOW) == "just now"
    assert ago(None) == ""


def test_timestamps_are_utc_time_elements_and_badges_escape() -> None:
    html = str(timestamp(NOW))
    assert '<time datetime="2026-12-04T12:00:00Z"' in html
    assert "2026-12-04 12:00 UTC" in html
    assert "—" in str(timestamp(None))
    assert "&lt;script&gt;" in str(badge("<script>"))
    assert str(badge("active", deleted=True)).count("deleted") == 2
    assert value_text({"a": 1}) == '{"a": 1}'
    assert value_text("x") == "x"


def _entry(item: uuid.UUID, depth: int, source: uuid.UUID | None) -> LineageEntry:
    return LineageEntry(
        depth=depth,
        item_id=item,
        item_type="profile_field",
        name=f"f{depth}",
        status="active",
        source_item_id=str(source) if source else None,
    )


def test_the_layout_puts_ancestors_left_and_descendants_right_with_arrows() -> None:
    grand, parent, item, child = (uuid.uuid4() for _ in range(4))
    me = _entry(item, 0, parent)
    field = {
        "id": item,
        "name": "f0",
        "value": 1,
        "value_type": "integer",
        "status": "active",
        "source": "user_provided",
        "confidence": 1.0,
        "verified": False,
        "requires_confirmation": False,
        "collected_at": NOW,
        "updated_at": NOW,
        "is_orphaned": False,
    }
    up = Lineage.model_validate(
        {
            "item": field,
            "chain": [me, _entry(parent, 1, grand), _entry(grand, 2, None)],
            "truncated": False,
            "cycle_detected": False,
        }
    )
    down = Lineage.model_validate(
        {
            "item": field,
            "chain": [me, _entry(child, 1, item)],
            "truncated": False,
            "cycle_detected": False,
        }
    )
    graph = layout(up, down)
    x = {node.item_id: node.x for node in graph.nodes}
    assert x[grand] < x[parent] < x[item] < x[child]
    assert [n.item_id for n in graph.nodes if n.focus] == [item]
    assert len(graph.edges) == 3
    assert all(e.x1 < e.x2 for e in graph.edges)
    assert graph.width >= 4 * NODE_W and graph.height >= NODE_H


def test_the_cookie_is_encrypted_signed_and_refused_when_altered() -> None:
    codec = SessionCodec("secret")
    value = codec.dumps(Session(key="ccv_key", admin=False, csrf="t"))
    assert "ccv_key" not in value
    assert codec.loads(value) == Session(key="ccv_key", admin=False, csrf="t")
    assert codec.loads(value[:-2] + "xx") is None
    assert SessionCodec("other").loads(value) is None
    assert codec.loads(None) is None


def test_the_limiter_counts_attempts_per_address() -> None:
    limiter = SignInLimiter(limit=2, window=60)
    assert [limiter.allow("a"), limiter.allow("a"), limiter.allow("a")] == [True, True, False]
    assert limiter.allow("b")
    assert limiter.retry_after("a") >= 1


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_every_text_colour_of_the_stylesheet_meets_wcag_aa() -> None:
    css = (Path(console.__file__).parent / "static" / "console.css").read_text()

    def six(value: str) -> str:
        return "#" + "".join(c * 2 for c in value[1:]) if len(value) == 4 else value

    variables = {k: six(v) for k, v in re.findall(r"--([a-z-]+): (#[0-9a-f]{3,6})\b", css)}

    def colour(value: str) -> str:
        value = value.strip()
        return variables[value[6:-1]] if value.startswith("var(--") else six(value)

    pairs = [
        ("fg", "bg"),
        ("fg", "card"),
        ("muted", "bg"),
        ("muted", "card"),
        ("accent", "card"),
        ("accent", "bg"),
        ("accent-fg", "accent"),
    ]
    checked = [(variables[f], variables[b], f"{f} on {b}") for f, b in pairs]
    # Every rule that sets both a background and a text colour (badges, buttons, notes).
    for rule in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        body = dict(
            (k.strip(), v.strip())
            for k, v in (d.split(":", 1) for d in rule[1].split(";") if ":" in d)
        )
        bg, fg = body.get("background"), body.get("color")
        if bg and fg and re.fullmatch(r"#[0-9a-f]{3,6}|var\(--[a-z-]+\)", bg):
            checked.append((colour(fg), colour(bg), rule[0].strip()))
    failing = [(name, round(_contrast(f, b), 2)) for f, b, name in checked if _contrast(f, b) < 4.5]
    assert len(checked) > 15
    assert failing == []


def test_ages_and_timestamps_read_the_iso_text_of_json_reads() -> None:
    assert ago((NOW - timedelta(days=2)).isoformat().replace("+00:00", "Z"), NOW) == "2 days ago"
    assert "2026-12-04 12:00 UTC" in str(timestamp("2026-12-04T12:00:00Z"))
    assert ago("not a time") == ""
