"""Tenant-supplied validation patterns on RE2: linear-time matching, a memory budget per
pattern and a bounded cache, so no definition can exhaust the server. Pure and
synchronous; async callers decide whether a call runs on a worker thread."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]

from ccvault.domain.bounds import MAX_PATTERN_LENGTH

# RE2's `max_mem` per pattern: its program and its DFA state cache stay within it, and a
# program that does not fit is refused. A pattern is compiled under the small budget first
# and gets the large one only when it needs it, so the cache can weigh every entry by the
# most it can ever use: ordinary patterns are charged 64 KiB. The large budget also bounds
# the compile itself, during which google-re2 holds the GIL (the event loop waits): 512 KiB
# admits `\pL{1,25}` and keeps the longest compile at 6-20 ms here (by load); 1 MiB doubles it.
PATTERN_BUDGETS = (64 * 1024, 512 * 1024)
MAX_PATTERN_MEMORY = PATTERN_BUDGETS[-1]
CACHE_ENTRIES = 1024
CACHE_MEMORY = 64 * 1024 * 1024
# A refusal is cached too (a stored pattern RE2 cannot compile would otherwise be compiled
# again on every write); it holds a message only.
_REFUSAL_WEIGHT = 1024
# RE2 matches in linear time, but when its DFA gives up (patterns like `[ab]*a[ab]{999}`
# have exponentially many states) it falls back to simulating the program, which costs up
# to value bytes x program instructions: ~5 ns a unit here, so 2**24 units stay under
# ~0.1 s of one core. Longer values are refused before matching, never half-matched.
MAX_MATCH_WORK = 1 << 24


class PatternError(ValueError):
    """A pattern RE2 cannot run within the limits; the message is ours, for the caller."""


class MatchTooCostly(ValueError):
    """The value is too long to be matched against this pattern within MAX_MATCH_WORK."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} bytes can be checked against this pattern")
        self.limit = limit


@dataclass(frozen=True, eq=False)
class TenantPattern:
    """A compiled tenant pattern and the budget it was compiled under."""

    source: str
    budget: int
    program_size: int
    regexp: Any

    @property
    def max_value_bytes(self) -> int:
        """The longest UTF-8 text this pattern is matched against (MAX_MATCH_WORK)."""
        return MAX_MATCH_WORK // max(1, self.program_size)

    def fullmatch(self, text: str) -> bool:
        """Whether the whole text matches; MatchTooCostly when it is too long to try."""
        data = text.encode("utf-8", "surrogatepass")
        if len(data) > self.max_value_bytes:
            raise MatchTooCostly(self.max_value_bytes)
        return self.regexp.fullmatch(data) is not None


def _options(budget: int) -> Any:
    options = re2.Options()
    options.max_mem = budget
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    options.never_capture = True  # groups are never read; without them RE2 skips work
    return options


def compile_pattern(pattern: str) -> TenantPattern:
    """Compile under the smallest budget that holds the program; PatternError otherwise."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"patterns are limited to {MAX_PATTERN_LENGTH} characters")
    if trap := _python_only_syntax(pattern):
        raise PatternError(trap)
    for budget in PATTERN_BUDGETS:
        if (compiled := _compile(pattern, budget)) is not None:
            return compiled
    raise PatternError(_explain("pattern too large"))


def _compile(pattern: str, budget: int) -> TenantPattern | None:
    """The pattern compiled under `budget`; None when its program needs more."""
    try:
        regexp = re2.compile(pattern, _options(budget))
    except re2.error as exc:
        reason = _reason(exc)
        if reason.startswith("pattern too large"):
            return None
        raise PatternError(_explain(reason)) from None
    except UnicodeError:
        raise PatternError("the pattern is not valid Unicode text") from None
    finally:
        # re2.compile also keeps its last 128 patterns in a module-level cache, outside
        # our cache's bounds: emptied at once, ours is the only one that holds them.
        re2.purge()
    return TenantPattern(pattern, budget, regexp.programsize, regexp)


def _reason(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


_NOT_RE2 = "patterns run on RE2, which guarantees linear-time matching but has no"
_OPERATORS = {
    "(?=": "lookahead (?=...)",
    "(?!": "negative lookahead (?!...)",
    "(?<=": "lookbehind (?<=...)",
    "(?<!": "negative lookbehind (?<!...)",
    "(?>": "atomic groups (?>...)",
    "(?(": "conditionals (?(...)...)",
    "(?#": "comments (?#...)",
    "(?x": "verbose mode (?x)",
    "(?R": "recursion (?R)",
    "(?P": "named backreferences (?P=name)",  # RE2 names only this much of (?P=name)
}


def _explain(reason: str) -> str:
    """Our words for RE2's refusal: what is wrong and what to write instead."""
    code, _, arg = reason.partition(": ")
    shown = arg if len(arg) <= 40 else arg[:37] + "..."
    if code.startswith("pattern too large"):
        kib = MAX_PATTERN_MEMORY // 1024
        return (
            f"the pattern needs more than the {kib} KiB a pattern may use: use fewer or "
            "smaller counted repetitions (`+` instead of `{1,200}`) over large classes"
        )
    if code == "invalid repetition size":
        return f"repetition counts are limited to 1000, nested counts multiplied together ({shown})"
    if code == "invalid escape sequence":
        if arg[1:2].isdigit() and arg[1:2] != "0":
            return f"{_NOT_RE2} backreferences ({shown})"
        if arg == "\\Z":
            return "\\Z is not supported: use \\z (or nothing: the whole value must match)"
        if arg == "\\u":
            return "\\uXXXX is not supported: write \\x{XXXX} or the character itself"
        return f"{_NOT_RE2} escape {shown}"
    if code == "invalid perl operator":
        for prefix, name in _OPERATORS.items():
            if arg.startswith(prefix):
                return f"{_NOT_RE2} {name}"
        return f"{_NOT_RE2} group syntax {shown}; flags are limited to i, m, s and U"
    if code == "bad repetition operator":
        if arg[-1:] == "+" and len(arg) == 2:
            return f"{_NOT_RE2} possessive quantifiers ({shown}): drop the trailing +"
        return f"a repetition operator cannot follow another ({shown})"
    if code == "invalid character class range" and arg.startswith("\\p"):
        return f"unknown Unicode class {shown}: use short names such as \\p{{L}} or \\p{{Greek}}"
    where = f" at '{shown}'" if shown else ""
    return f"invalid regular expression: {_PLAIN.get(code, code)}{where}"


_PLAIN = {
    "missing )": "a group is not closed",
    "unexpected )": "a ) closes no group",
    "missing ]": "a character class is not closed",
    "trailing \\": "it ends with a lone backslash",
    "no argument for repetition operator": "a repetition operator repeats nothing",
    "invalid character class range": "a character range runs backwards or is not a range",
    "invalid character class": "a character class is malformed",
    "invalid named capture group": "a group name is malformed",
    "invalid UTF-8": "it is not valid UTF-8",
}


def _python_only_syntax(pattern: str) -> str | None:
    """A construct Python reads one way and RE2 silently another, or None.

    `{,n}` means "0 to n times" to Python and the literal text "{,n}" to RE2: a pattern
    written for Python would quietly stop matching what it used to.
    """
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if pattern.startswith("\\Q", i):  # literal text up to \E
                end = pattern.find("\\E", i + 2)
                i = len(pattern) if end < 0 else end + 2
                continue
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            # A ] right after [ or [^ is a literal member, not the end of the class.
            i += 2 if pattern.startswith("^]", i + 1) else 1
            i += 1 if pattern.startswith("]", i) else 0
            continue
        elif char == "{" and pattern.startswith(",", i + 1):
            end = pattern.find("}", i)
            if end > i + 2 and pattern[i + 2 : end].isdigit():
                bound = pattern[i + 2 : end]
                return (
                    f"write {{0,{bound}}} for up to {bound} repetitions: RE2 reads "
                    f"{{,{bound}}} as literal text (escape the brace to mean the text)"
                )
        i += 1
    return None


class PatternCache:
    """Compiled patterns and refusals by source, least recently used out first, bounded
    both in count and in the memory budgets of what it holds; safe across threads."""

    def __init__(self, max_entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_MEMORY) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, TenantPattern | PatternError] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The memory budgets of the cached patterns added up: the most they can use."""
        return self._bytes

    def holds(self, pattern: str) -> bool:
        """Whether `get` would answer without compiling."""
        return pattern in self._entries

    def get(self, pattern: str) -> TenantPattern:
        """The compiled pattern, compiled on a miss; PatternError when RE2 refuses it."""
        with self._lock:
            entry = self._entries.get(pattern)
            if entry is not None:
                self._entries.move_to_end(pattern)
        if entry is None:
            # Compiled outside the lock: a slow compile must not hold up cache hits.
            try:
                entry = compile_pattern(pattern)
            except PatternError as exc:
                entry = exc
            self._put(pattern, entry)
        if isinstance(entry, PatternError):
            raise PatternError(str(entry))
        return entry

    def _put(self, pattern: str, entry: TenantPattern | PatternError) -> None:
        weight = _weight(entry)
        with self._lock:
            previous = self._entries.pop(pattern, None)
            if previous is not None:
                self._bytes -= _weight(previous)
            self._entries[pattern] = entry
            self._bytes += weight
            while len(self._entries) > self.max_entries or (
                self._bytes > self.max_bytes and len(self._entries) > 1
            ):
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= _weight(evicted)

    def clear(self) -> None:
        """Forget every pattern."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


def _weight(entry: TenantPattern | PatternError) -> int:
    return entry.budget if isinstance(entry, TenantPattern) else _REFUSAL_WEIGHT


PATTERNS = PatternCache()


def tenant_pattern(pattern: str) -> TenantPattern:
    """The process-wide cached compile of a tenant pattern; PatternError when refused."""
    return PATTERNS.get(pattern)
