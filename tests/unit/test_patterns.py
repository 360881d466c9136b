"""Tenant patterns on RE2: hostile patterns are refused in our words, matching is whole-value
and bounded in work, and the cache stays within its count and memory bounds."""

from __future__ import annotations

import random

import pytest
import re2  # type: ignore[import-untyped]

from ccvault.domain.models import ValueType
from ccvault.domain.patterns import (
    CACHE_ENTRIES,
    CACHE_MEMORY,
    MAX_MATCH_WORK,
    MAX_PATTERN_MEMORY,
    PATTERN_BUDGETS,
    PATTERNS,
    MatchTooCostly,
    PatternCache,
    PatternError,
    compile_pattern,
    tenant_pattern,
)
from ccvault.domain.validation import QUICK_MATCH_CHARS, Rules, check_is_slow, check_value

SMALL = PATTERN_BUDGETS[0]

# (pattern, a word our message must contain)
REFUSED: list[tuple[str, str]] = [
    ("((((a{100}){100}){100}){100}){100}", "limited to 1000"),
    ("a{1000000}", "limited to 1000"),
    ("(a{1000}){1000}", "limited to 1000"),
    (r"\p{L}{1,200}", "KiB a pattern may use"),
    (r"[\p{L}\p{N}]{1,100}", "KiB a pattern may use"),
    (r"(\w+)\1", "backreferences"),
    (r"(?P<n>a)(?P=n)", "named backreferences"),
    (r"(?=a)a", "lookahead"),
    (r"a(?!b)", "negative lookahead"),
    (r"(?<=a)b", "lookbehind"),
    (r"(?<!a)b", "negative lookbehind"),
    (r"(?>a+)b", "atomic groups"),
    (r"a++", "possessive"),
    (r"a*+", "possessive"),
    (r"a\Z", r"\z"),
    (r"(?x) a b", "verbose"),
    (r"\u00e9", r"\x{XXXX}"),
    (r"\p{Letter}", r"\p{L}"),
    ("a{,5}", "{0,5}"),
    ("([A-Z", "not closed"),
    ("a)", "closes no group"),
    ("[z-a]", "range"),
    ("*", "repeats nothing"),
]


@pytest.mark.parametrize(("pattern", "word"), REFUSED)
def test_pattern_re2_cannot_run_within_limits_is_refused_in_our_words(
    pattern: str, word: str
) -> None:
    with pytest.raises(PatternError) as caught:
        compile_pattern(pattern)
    message = str(caught.value)
    assert word in message
    # RE2's own texts arrive as bytes: none of them is passed on as it is.
    assert "b'" not in message
    assert "compile failed" not in message


def test_pattern_longer_than_the_cap_is_refused() -> None:
    compile_pattern("a" * 1000)
    with pytest.raises(PatternError, match="1000 characters"):
        compile_pattern("a" * 1001)


@pytest.mark.parametrize("pattern", [r"a\{,5}", "[{,5}]", r"\Qa{,5}\E", "a{0,5}", "a{2,}"])
def test_brace_forms_re2_reads_like_python_are_accepted(pattern: str) -> None:
    compile_pattern(pattern)


def test_ordinary_pattern_gets_the_small_budget_and_a_large_one_the_large() -> None:
    assert compile_pattern(r"[A-Z]{2}\d{6}").budget == SMALL
    assert compile_pattern(r"\pL{1,20}").budget == MAX_PATTERN_MEMORY


def test_match_is_whole_value() -> None:
    pattern = compile_pattern(r"[A-Z]{2}\d{3}")
    assert pattern.fullmatch("AB123")
    for partial in ("AB123x", "xAB123", "AB12", "AB123\n"):
        assert not pattern.fullmatch(partial)


def test_match_counts_characters_not_bytes() -> None:
    pattern = compile_pattern(r"\p{L}{2}")
    assert pattern.fullmatch("éü")
    assert not pattern.fullmatch("é")


def test_nested_quantifiers_on_a_long_value_just_fail_to_match() -> None:
    pattern = compile_pattern("(a+)+$")
    assert not pattern.fullmatch("a" * 500_000 + "!")
    assert pattern.fullmatch("a" * 500_000)


def test_value_beyond_the_work_bound_is_refused_before_matching() -> None:
    # A DFA with 2**999 states: RE2 falls back to its slower linear simulation.
    pattern = compile_pattern(r"[ab]*a[ab]{999}")
    assert pattern.max_value_bytes == MAX_MATCH_WORK // pattern.program_size
    rng = random.Random(7)
    fits = "".join(rng.choice("ab") for _ in range(pattern.max_value_bytes - 1000)) + "a" * 1000
    assert pattern.fullmatch(fits)
    with pytest.raises(MatchTooCostly) as caught:
        pattern.fullmatch("a" * (pattern.max_value_bytes + 1))
    assert caught.value.limit == pattern.max_value_bytes


def test_too_long_value_is_a_regex_error_not_a_crash() -> None:
    rules = Rules(ValueType.string, validation_regex=r"[ab]*a[ab]{999}")
    checked = check_value("a" * 200_000, rules)
    assert [p.code for p in checked.problems] == ["regex_error"]
    assert "too long" in checked.problems[0].msg


def test_stored_pattern_re2_refuses_is_a_config_error_on_writes() -> None:
    checked = check_value("aa", Rules(ValueType.string, validation_regex=r"(a)\1"))
    assert [p.code for p in checked.problems] == ["config_error"]
    assert "backreferences" in checked.problems[0].msg


def test_cache_keeps_at_most_its_count_of_patterns() -> None:
    cache = PatternCache(max_entries=8, max_bytes=CACHE_MEMORY)
    for i in range(50):
        cache.get(f"id-{i}-[0-9]+")
        assert len(cache) <= 8
    assert cache.holds("id-49-[0-9]+")
    assert not cache.holds("id-0-[0-9]+")


def test_cache_keeps_at_most_its_memory_of_patterns() -> None:
    cache = PatternCache(max_entries=1000, max_bytes=3 * SMALL)
    for i in range(10):
        cache.get(f"id-{i}-[0-9]+")
        assert cache.bytes <= 3 * SMALL
    assert len(cache) == 3
    cache.get(r"\pL{1,20}")  # one large pattern alone outweighs the bound: it stays alone
    assert len(cache) == 1
    assert cache.bytes == MAX_PATTERN_MEMORY


def test_cache_evicts_the_least_recently_used() -> None:
    cache = PatternCache(max_entries=2)
    cache.get("a+")
    cache.get("b+")
    cache.get("a+")
    cache.get("c+")
    assert cache.holds("a+")
    assert not cache.holds("b+")


def test_cache_remembers_refusals_and_raises_them_again() -> None:
    cache = PatternCache(max_entries=4)
    for _ in range(3):
        with pytest.raises(PatternError, match="backreferences"):
            cache.get(r"(a)\1")
    assert cache.holds(r"(a)\1")
    assert len(cache) == 1


def test_process_cache_stays_bounded_past_its_count() -> None:
    PATTERNS.clear()
    for i in range(CACHE_ENTRIES + 50):
        tenant_pattern(f"bound-{i}-[A-Z]{{2}}")
    assert len(PATTERNS) == CACHE_ENTRIES
    assert PATTERNS.bytes <= CACHE_MEMORY
    PATTERNS.clear()


def test_re2_module_cache_does_not_keep_our_patterns() -> None:
    # re2.compile caches 128 patterns of its own; the bounds above hold only if it is emptied.
    compile_pattern("kept-nowhere-else-[0-9]+")
    assert re2._Regexp._make.cache_info().currsize == 0


def test_check_is_slow_for_a_new_pattern_or_a_long_value() -> None:
    PATTERNS.clear()
    rules = Rules(ValueType.string, validation_regex="slow-[0-9]+")
    assert check_is_slow("slow-1", rules)
    check_value("slow-1", rules)
    assert not check_is_slow("slow-1", rules)
    assert check_is_slow("x" * (QUICK_MATCH_CHARS + 1), rules)
    assert not check_is_slow("x" * (QUICK_MATCH_CHARS + 1), Rules(ValueType.string))
