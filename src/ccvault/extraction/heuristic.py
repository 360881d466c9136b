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
            r"\bborn\b",
            r"birthday",
            r"\bage\b",
            r"\baged?\s+(?:over|under|at least|\d{2})",
            r"\bover \d{2}\b",
            r"\bunder \d{2}\b",
            r"\b\d{2} (?:years|yrs)(?: old)?",
            r"\b\d{2} or (?:older|over|younger|under)\b",
            r"\b(?:older|younger) than \d{2}\b",
            r"\bhow old\b",
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
            r"\be-?mail",
            r"email address",
            r"mail address",
            r"\binbox\b",
        ),
    ),
    Term(
        "phone_number",
        "Phone number",
        ValueType.phone,
        0.7,
        (
            r"\b(?:tele)?phone(?: number)?s?\b",
            r"\bmobile (?:number|phone)",
            r"\bcell(?:phone| number)",
            r"\bsms\b",
            r"text message",
            r"\bcall (?:them|the customer|back)",
            r"\botp\b",
        ),
    ),
    Term(
        "address",
        "Postal address",
        ValueType.string,
        0.7,
        (
            # Not "email address", and not the verb ("address the customer by name").
            r"(?<!email )(?<!e-mail )(?<!mail )(?<!ip )\baddress"
            r"(?!\s+(?:the|them|him|her|it|their|your|this|that)\b)",
            r"\bship(?:ping)? to",
            r"\bdeliver(?:y|ed)? to",
            r"\bpostal\b",
            r"\bpost ?code",
            r"\bzip ?code",
            r"\bstreet\b",
            r"place of residence",
            r"\bdoor(?:step)?\b",
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
            r"\btax (?:id|number)",
            r"\bnin\b",
        ),
    ),
    Term(
        "annual_income",
        "Annual income",
        ValueType.number,
        0.7,
        (
            r"\bincomes?\b",
            r"\bsalary\b",
            r"\bearn(?:s|ed|ing|ings)?\b",
            r"\bwages?\b",
            r"\brevenue\b",
            r"\bmakes? (?:per|a|each) (?:year|annum)\b",
            r"\bbefore tax\b",
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
            r"(?:customer|their|legal)'?s? name",
            r"\bsurname\b",
        ),
    ),
    Term(
        "country",
        "Country of residence",
        ValueType.string,
        0.6,
        (
            r"\bcountry\b",
            r"\bnationality\b",
            r"\bcitizenship\b",
            r"\bresidents? (?:of|in)\b",
            r"\blives? (?:in|abroad)",
            r"\binternational\b",
            r"\bdomestic\b",
            r"\babroad\b",
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
            r"\bemploy(?:ed|ment|er)\b",
            r"self-employed",
            r"\boccupation\b",
            r"\bjob\b",
            r"\bretired\b",
        ),
    ),
    Term(
        "marital_status",
        "Marital status",
        ValueType.string,
        0.6,
        (
            r"\bmarital\b",
            r"\bmarried\b",
            r"\bspouse\b",
            r"\b(?:civil|life|domestic) partner(?:ship)?\b",
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
            r"\bopt(?:ed)?[- ]in\b",
            r"\bnewsletter\b",
        ),
    ),
)

# "the emergency contact's phone" is not the customer's phone.
_THIRD_PARTY = re.compile(
    r"\b(?:spouse|partner|contact|child|parent|doctor|employer|friend|"
    r"relative|guardian|beneficiary)'s\s+(?:\w+\s+){0,2}$"
)
# "never ask for the date of birth" needs no date of birth.
_NEGATED = re.compile(
    r"\b(?:never|do not|don't|must not|should not|no need to)\s+"
    r"(?:ask|collect|request|store|record|require)\b[^.;]*$"
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
        claimed = [span for d in definitions for span in _definition_spans(d, text)]
        for term, pattern in _vocabulary():
            hit = next((m for m in pattern.finditer(text) if _counts(m, text, claimed)), None)
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


def _definition_spans(definition: FieldDefinition, text: str) -> list[tuple[int, int]]:
    """Where the agent's own definition is named in the text (those words are taken)."""
    phrases = (
        definition.name.replace("_", " "),
        definition.display_name,
        *definition.extraction_examples,
    )
    return [
        (m.start(), m.end())
        for phrase in phrases
        if len(phrase) > 2
        for m in _phrase(phrase).finditer(text)
    ]


def _counts(hit: re.Match[str], text: str, claimed: list[tuple[int, int]]) -> bool:
    """A vocabulary hit counts unless a definition already took those words, it belongs
    to someone else ("the contact's phone"), or the text says not to ask for it."""
    if any(start < hit.end() and hit.start() < end for start, end in claimed):
        return False
    before = text[max(0, hit.start() - 80) : hit.start()]
    return not (_THIRD_PARTY.search(before) or _NEGATED.search(before))
