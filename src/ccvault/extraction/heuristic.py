"""The offline extractor: maps words in the text to fields, with honest confidences.

First the agent's own definitions (their names, display names, extraction examples and
hints), then a built-in vocabulary of common customer fields. A name or display name
found word for word is a strong signal (0.9); an extraction example 0.75; a hint word or
a vocabulary phrase is fuzzier (0.55-0.75), so those land below the review threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ccvault.domain.models import ValueType
from ccvault.domain.schema import FieldDefinition
from ccvault.extraction.models import ProposedField, SourceText, TextPart

NAME_MATCH = 0.9
EXAMPLE_MATCH = 0.75
HINT_MATCH = 0.55


@dataclass(frozen=True)
class Term:
    """A common customer field and the phrases that point to it."""

    field_name: str
    display_name: str
    value_type: ValueType
    confidence: float
    patterns: tuple[str, ...]


VOCABULARY: tuple[Term, ...] = (
    Term(
        "date_of_birth",
        "Date of birth",
        ValueType.date,
        0.75,
        (
            r"date of birth",
            r"birth ?date",
            r"\bdob\b",
            r"born",
            r"birthday",
            r"\bage\b",
            r"aged? (?:over|under|at least)",
            r"over \d{2}\b",
            r"under \d{2}\b",
            r"\d{2} (?:years|yrs)(?: old)?",
            r"\badults?\b",
            r"\bminors?\b",
            r"of legal age",
        ),
    ),
    Term(
        "email",
        "Email address",
        ValueType.email,
        0.75,
        (
            r"e-?mail",
            r"email address",
            r"mail address",
            r"inbox",
        ),
    ),
    Term(
        "phone_number",
        "Phone number",
        ValueType.phone,
        0.7,
        (
            r"phone",
            r"mobile (?:number|phone)",
            r"cell(?:phone| number)",
            r"telephone",
            r"\bsms\b",
            r"text message",
            r"call (?:them|the customer|back)",
            r"\botp\b",
        ),
    ),
    Term(
        "address",
        "Postal address",
        ValueType.string,
        0.7,
        (
            r"(?<!email )(?<!e-mail )(?<!mail )(?<!ip )address",
            r"ship(?:ping)? to",
            r"deliver(?:y|ed)? to",
            r"postal",
            r"post ?code",
            r"zip ?code",
            r"street",
            r"place of residence",
            r"where (?:they|the customer) lives?",
        ),
    ),
    Term(
        "national_id",
        "National ID number",
        ValueType.string,
        0.7,
        (
            r"national id",
            r"\bssn\b",
            r"social security",
            r"identity (?:card|number|document)",
            r"\bid card\b",
            r"passport number",
            r"tax (?:id|number)",
            r"\bnin\b",
        ),
    ),
    Term(
        "annual_income",
        "Annual income",
        ValueType.number,
        0.7,
        (
            r"income",
            r"salary",
            r"earn(?:s|ings)?",
            r"wages?",
            r"revenue",
        ),
    ),
    Term(
        "full_name",
        "Full name",
        ValueType.string,
        0.6,
        (
            r"full name",
            r"first and last name",
            r"(?:customer|their|legal) name",
            r"surname",
        ),
    ),
    Term(
        "country",
        "Country of residence",
        ValueType.string,
        0.6,
        (
            r"country",
            r"nationality",
            r"citizenship",
            r"resident of",
            r"lives? (?:in|abroad)",
            r"international",
            r"domestic",
            r"abroad",
        ),
    ),
    Term(
        "bank_account",
        "Bank account (IBAN)",
        ValueType.string,
        0.7,
        (
            r"\biban\b",
            r"bank account",
            r"account number",
            r"direct debit",
            r"sort code",
        ),
    ),
    Term(
        "employment_status",
        "Employment status",
        ValueType.string,
        0.6,
        (
            r"employ(?:ed|ment|er)",
            r"self-employed",
            r"occupation",
            r"\bjob\b",
            r"retired",
        ),
    ),
    Term(
        "marital_status",
        "Marital status",
        ValueType.string,
        0.6,
        (
            r"marital",
            r"married",
            r"spouse",
            r"partner(?:ship)?",
        ),
    ),
    Term(
        "policy_number",
        "Policy number",
        ValueType.string,
        0.7,
        (
            r"policy (?:number|no\.?|id)",
            r"insurance policy",
            r"existing policy",
        ),
    ),
    Term(
        "credit_score",
        "Credit score",
        ValueType.integer,
        0.7,
        (
            r"credit (?:score|rating|check)",
            r"creditworth",
        ),
    ),
    Term(
        "consent_marketing",
        "Marketing consent",
        ValueType.boolean,
        0.6,
        (
            r"marketing (?:consent|opt-?in)",
            r"opt(?:ed)?[- ]in",
            r"newsletter",
        ),
    ),
)


@lru_cache(maxsize=512)
def _phrase(text: str) -> re.Pattern[str]:
    """A case-insensitive, whole-word pattern for a literal phrase."""
    return re.compile(r"(?<!\w)" + re.escape(text.strip().lower()) + r"(?!\w)")


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[tuple[Term, re.Pattern[str]], ...]:
    return tuple((t, re.compile("|".join(f"(?:{p})" for p in t.patterns))) for t in VOCABULARY)


_STOP = {
    "the",
    "a",
    "an",
    "of",
    "and",
    "or",
    "to",
    "for",
    "is",
    "are",
    "be",
    "in",
    "on",
    "with",
    "their",
    "your",
    "customer",
    "user",
    "ask",
    "value",
    "field",
    "number",
}


def _definition_match(definition: FieldDefinition, text: str) -> tuple[float, str] | None:
    names = {definition.name.replace("_", " "), definition.display_name}
    for name in names:
        if len(name) > 2 and _phrase(name).search(text):
            return NAME_MATCH, f"mentions {name!r}"
    for example in definition.extraction_examples:
        if len(example) > 2 and _phrase(example).search(text):
            return EXAMPLE_MATCH, f"matches the example {example!r}"
    if definition.extraction_prompt_hint:
        words = {w for w in re.findall(r"[a-z]{4,}", definition.extraction_prompt_hint.lower())}
        hits = sorted(w for w in words - _STOP if _phrase(w).search(text))
        if len(hits) >= 2:
            return HINT_MATCH, f"shares the hint words {', '.join(hits[:3])}"
    return None


class HeuristicExtractor:
    """The default when no LLM is configured: deterministic, offline, explainable."""

    name = "heuristic"

    async def extract(
        self, source: SourceText, definitions: list[FieldDefinition]
    ) -> list[ProposedField]:
        """Fields mentioned by each piece of text, in the order the text mentions them."""
        return [p for part in source.parts for p in self._from_part(part, definitions)]

    def _from_part(self, part: TextPart, definitions: list[FieldDefinition]) -> list[ProposedField]:
        text = part.text.lower()
        found: dict[str, tuple[int, ProposedField]] = {}

        def offer(position: int, proposal: ProposedField) -> None:
            seen = found.get(proposal.field_name)
            if seen is None or proposal.confidence > seen[1].confidence:
                found[proposal.field_name] = (
                    min(position, seen[0]) if seen else position,
                    proposal,
                )

        defined = {d.name for d in definitions}
        for definition in definitions:
            match = _definition_match(definition, text)
            if match is not None:
                confidence, reason = match
                offer(
                    _first_position(definition, text),
                    ProposedField(
                        field_name=definition.name,
                        confidence=confidence,
                        reason=reason,
                        step_id=part.step_id,
                    ),
                )
        for term, pattern in _vocabulary():
            hit = pattern.search(text)
            if hit is None:
                continue
            # A vocabulary word that names one of the agent's own fields counts as that.
            offer(
                hit.start(),
                ProposedField(
                    field_name=term.field_name,
                    confidence=term.confidence,
                    reason=f"the text says {hit.group(0)!r}",
                    step_id=part.step_id,
                    value_type=None if term.field_name in defined else term.value_type,
                    display_name=term.display_name,
                ),
            )
        return [proposal for _, proposal in sorted(found.values(), key=lambda item: item[0])]


def _first_position(definition: FieldDefinition, text: str) -> int:
    positions = [
        m.start()
        for phrase in (
            definition.name.replace("_", " "),
            definition.display_name,
            *definition.extraction_examples,
        )
        if len(phrase) > 2 and (m := _phrase(phrase).search(text)) is not None
    ]
    return min(positions, default=len(text))
