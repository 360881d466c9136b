"""The offline extractor: reads each sentence for the fields it asks for and the terms
it sets, with honest confidences. Standard library only (regular expressions).

Fields: first the agent's own definitions (their names, display names, extraction
examples and hints), then a built-in vocabulary of common customer fields mapping
synonyms to one canonical name, then names made from the text's own noun phrases (the
objects of "ask for", "collect", "we need", "X is required"...). A name or display name
found word for word is a strong signal (0.9); an extraction example 0.75; a hint word, a
vocabulary phrase or a derived name is fuzzier (0.55-0.75), so those land below the
review threshold.

Terms: "must", "need", "required" and plain instructions make a field `hard`; "ideally",
"if possible", "optional" make it `soft` (skipped while missing). Age thresholds in an
eligibility sentence ("must be over 18") become `min_age`/`max_age` on the date of birth;
"with income above 2000 EUR" a `min` on that field; "for transfers above 1000 EUR" and
"if the customer is a business" a `when_condition` over a context value or a field.
Documents ("proof of address", "a copy of the passport") become a field naming the
document. Conditions, documents and bounds always go to review.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from ccvault.domain.models import ValueType
from ccvault.domain.schema import FallbackAction, FieldDefinition, RequiredLevel
from ccvault.extraction.models import (
    ProposedField,
    SourceText,
    SuggestedConstraints,
    TextPart,
)
from ccvault.extraction.plan import merge

NAME_MATCH = 0.9
EXAMPLE_MATCH = 0.75
HINT_MATCH = 0.55
DERIVED = 0.6
"""A name made from the text's own words: a suggestion, below the review threshold."""


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
            r"\bnin\b",
        ),
    ),
    Term(
        "passport_number",
        "Passport number",
        ValueType.string,
        0.75,
        (r"passport (?:number|no\.?)",),
    ),
    Term(
        "tax_id",
        "Tax ID",
        ValueType.string,
        0.75,
        (
            r"\btax (?:id|identification number|number|code)\b",
            r"\btin\b",
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
            r"bank account number",
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


# -- sentence reading ---------------------------------------------------------------------

_CUSTOMER = (
    r"(?:customer|client|guest|patient|passenger|traveller|traveler|applicant|owner|"
    r"account holder|policyholder|policy holder|donor|driver|caller|user|buyer|member|"
    r"person|employee|visitor|tenant|borrower|holder)"
)
_FILLERS = re.compile(
    r"^(?:(?:the|a|an|their|its|his|her|your|our|my|each|every|also|any|some|all|both|"
    r"new|valid|this|that|these|those|whose|which)\s+|" + _CUSTOMER + r"s?'s?\s+)"
)
_TRIGGER = re.compile(
    r"\b(?:ask(?:s|ed)?(?:\s+(?:every|each|the|all|any)\s+" + _CUSTOMER + r"s?)?"
    r"\s+(?:for|about)"
    r"|ask\s+(?:whether|if)\s+(?:the\s+" + _CUSTOMER + r"|they)\s+"
    r"(?:wants?|would\s+(?:like|accept)|has|have|needs?)"
    r"|collect(?:s|ed)?|record(?:s|ed)?|need(?:s|ed)?|require(?:s|d)?|note|"
    # "get" asks only as an instruction ("get photos"), not in "customers get a discount".
    r"(?:^|(?<=, )|(?<=and )|(?<=please )|(?<=also )|(?<=then ))get|"
    r"tell\s+us(?:\s+about)?|show|provide|enter|capture|request|obtain|gather|confirm|"
    r"verify|take\s+down|store)\b"
)
_SUBJECT = re.compile(
    r"(?:^|[,;:]\s*)(?P<np>[a-z][a-z0-9' -]{1,60}?)\s+(?:is|are)\s+(?:also\s+)?"
    r"(?:needed|required|mandatory|compulsory|optional|necessary)\b"
)
# Where an object list ends: a new clause.
_CLAUSE_END = re.compile(
    r"[.;:!?()]|\b(?:if|so|but|when|unless|before|after|because|while|then|where|which|"
    r"who|that|in every case|in all cases)\b"
)
# Where one item of the list ends: what follows qualifies it ("the email for the
# e-ticket", "the phone number to port"); "the reason for the visit" keeps its "for".
_ITEM_END = re.compile(r"\b(?:to|from|by|at|in|on|with|via|until|since|as)\b|(?<!reason )\bfor\b")
_SPLIT = re.compile(r",|\band\b|\bor\b|&|/")
# Soft wording: a leading marker softens what follows it, a trailing one what precedes it.
_SOFT_LEADING = re.compile(
    r"\b(?:ideally|if possible|where possible|when possible|optionally|if available|"
    r"if (?:the " + _CUSTOMER + r"|they|he|she) (?:agrees?|wants?|likes?|wishes|wish)|"
    r"nice to have|may also|can also)\b"
)
_SOFT_TRAILING = re.compile(
    r"\b(?:is|are) optional\b|\bif (?:the " + _CUSTOMER + r"|they|he|she) "
    r"(?:has|have|owns?) (?:one|any|it)\b|\bif (?:known|available|applicable)\b|"
    r"\b(?:is|are) nice to have\b"
)
# Parenthetical soft clauses inside a list ("X and, if possible, Y") must not end it.
_SOFT_INSIDE = re.compile(r",\s*(?:" + _SOFT_LEADING.pattern + r")\s*,")
_CUSTOMER_TYPE = re.compile(
    r"\bif (?:the )?" + _CUSTOMER + r" is (?:a|an) (?P<type>[a-z][a-z -]{1,30}?)"
    r"(?=,|\.|;|$| we | then | ask| record| collect| please | they )"
)
_CURRENCY = r"(?:eur|euros?|usd|dollars?|gbp|pounds?|chf|sek|nok|dkk|pln|€|\$|£)"
_AMOUNT = re.compile(
    r"(?P<field>(?:[a-z-]+ ){0,2}?[a-z-]+) "
    r"(?P<op>above|over|exceeding|of more than|more than|greater than|of at least|from|"
    r"below|under|of less than|less than|up to)\s+"
    r"(?:" + _CURRENCY + r"\s?)?(?P<n>\d[\d,]*(?:\.\d+)?)(?:\s?(?P<unit>[a-z€$£]+))?"
)
_AMOUNT_OPS = {
    "above": ">",
    "over": ">",
    "exceeding": ">",
    "of more than": ">",
    "more than": ">",
    "greater than": ">",
    "of at least": ">=",
    "from": ">=",
    "below": "<",
    "under": "<",
    "of less than": "<",
    "less than": "<",
    "up to": "<=",
}
_HAVE_AT_LEAST = re.compile(
    r"\b(?:must|should|need to|needs to|have to|has to)\s+(?:have|earn|employ)\s+"
    r"(?P<op>at least|more than|over|at most|fewer than|less than)\s+"
    r"(?:" + _CURRENCY + r"\s?)?(?P<n>\d[\d,]*)\s?(?P<unit>[a-z]+)?"
)
_WEIGH = re.compile(
    r"\bweighs?\s+(?P<op>at least|more than|over|at most|less than|under)\s+"
    r"(?P<n>\d+(?:\.\d+)?)"
)
_ELIGIBILITY = re.compile(
    r"\b(?:must|only|available to|eligible|required|requires?|have to|has to|need to|"
    r"needs to|restricted)\b"
)
_NOT_AGE = r"(?!\s?(?:" + _CURRENCY + r"|%|kg|cm|km|[a-z]+s\b|\d))"
_AGE_RANGE = re.compile(r"\b(?:between|aged?) (\d{1,3}) (?:and|to|-) (\d{1,3})" + _NOT_AGE)
_AGE_MIN = re.compile(
    r"\b(?:over|older than|above|at least|aged? at least|minimum age of) (\d{1,3})"
    + _NOT_AGE
    + r"|\b(\d{1,3}) (?:or|and) (?:older|over|above)\b|\b(\d{1,3})\+"
)
_AGE_MAX = re.compile(r"\b(?:under|younger than|below) (\d{1,3})" + _NOT_AGE)
_AGE_MAX_INCLUSIVE = re.compile(r"\b(?:at most|no older than|not older than) (\d{1,3})" + _NOT_AGE)
_COPY = re.compile(
    r"^(?:certified\s+)?(?:copy|copies|scan|photo|photocopy|picture) of (?:the |a |an |their "
    r"|your |his |her )?(?P<doc>[a-z][a-z' -]*)$"
)
_PROOF = re.compile(r"^proof of (?:the |their |your )?(?P<what>[a-z][a-z -]*)$")
_DOCUMENT_HEADS = {
    "report",
    "certificate",
    "licence",
    "license",
    "letter",
    "statement",
    "bill",
    "payslip",
    "payslips",
    "passport",
    "contract",
    "invoice",
    "receipt",
    "permit",
    "visa",
}
# Words before a vocabulary phrase that keep its meaning ("home address" is the address);
# any other word makes it a different field ("beneficiary IBAN", "billing address").
_SAME_CONCEPT = {
    "postal",
    "home",
    "residential",
    "current",
    "contact",
    "mobile",
    "personal",
    "private",
    "full",
    "legal",
    "email",
    "e-mail",
    "own",
    "main",
    "primary",
    "delivery",
    "installation",
    "annual",
    "yearly",
    "gross",
    "net",
    "exact",
}
_GENERIC = {
    "identity",
    "customer",
    "customers",
    "client",
    "guest",
    "patient",
    "details",
    "detail",
    "information",
    "info",
    "data",
    "everything",
    "something",
    "anything",
    "us",
    "them",
    "it",
    "one",
    "this",
    "that",
    "first",
    "last",
    "more",
    "help",
    "time",
    "way",
    "case",
    "answer",
    "confirmation",
    "approval",
    "customer consent",
    "review",
    "check",
    "them to",
    "you",
    "we",
    "they",
    "he",
    "she",
    "what",
    "how",
    "why",
    "who",
    "which",
    "value",
    "field",
    "order",
    "booking",
    "account",
    "room",
    "card",
}
_VERB_START = re.compile(
    r"^(?:to|be|is|are|was|were|have|has|do|does|can|will|would|should|must|may|go|get|"
    r"make|send|call|use|look|offer|check|help|let|keep|give|see|try|ask|tell|know|"
    r"not|no|never|please|only|always|then|also|just|already|whether|if|how|what|why|"
    r"when|who|it|there)\b|.*\b(?:is|are|was|were|been|do|does|did|can|will|gets?)\b"
)
# "last year's earnings" are the customer's earnings, not the year's.
_TIME_POSSESSIVE = re.compile(r"\b(?:(?:last|previous|this|next) )?(?:year|month|week)'s\s+")
_KNOWN_TO = re.compile(r"^to (?:know|see|have|collect|verify|record|confirm|check) ")


@dataclass(frozen=True)
class Mention:
    """A field the sentence names, where, and what kind of evidence it is."""

    start: int
    end: int
    field_name: str
    confidence: float
    reason: str
    value_type: ValueType | None = None
    display_name: str | None = None
    document: bool = False
    definition: bool = False


@dataclass
class Terms:
    """What one sentence says about its fields: which parts are optional, which apply
    under a condition, which bounds it sets, and which spans are not field names."""

    soft: list[tuple[int, int]]
    conditions: list[tuple[int, int, str]]
    bounds: list[tuple[Mention, SuggestedConstraints]]
    excluded: list[tuple[int, int]]


def _slug(words: str) -> str | None:
    """A field name from words: snake_case, the articles left out."""
    words = re.sub(r"'s\b", "", words)
    tokens = [t for t in re.split(r"[^a-z0-9]+", words) if t and t not in {"the", "a", "an"}]
    name = "_".join(tokens)[:50].strip("_")
    if not name or not re.match(r"^[a-z]", name):
        return None
    return name


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ses") or word.endswith("xes"):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _literal(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(s < end and start < e for s, e in spans)


def _clean(chunk: str) -> str:
    """A noun phrase without its leading articles, possessive pronouns and the
    customer's own possessive ("the customer's full name" → "full name")."""
    chunk = chunk.strip(" ,'\"-")
    chunk = _KNOWN_TO.sub("", chunk)
    chunk = _TIME_POSSESSIVE.sub("", chunk)
    previous = None
    while previous != chunk:
        previous = chunk
        chunk = _FILLERS.sub("", chunk).strip()
    return chunk


def _vocabulary_hit(chunk: str) -> tuple[Term, re.Match[str]] | None:
    best: tuple[Term, re.Match[str]] | None = None
    for term, pattern in _vocabulary():
        hit = pattern.search(chunk)
        if hit is not None and (best is None or hit.start() < best[1].start()):
            best = (term, hit)
    return best


def _resolve(
    chunk: str, start: int, end: int, definitions: list[FieldDefinition]
) -> Mention | None:
    """The field a noun phrase names: the agent's definition, a document, the vocabulary's
    canonical name when the phrase means the same thing, else a name from its words."""
    phrase = _clean(chunk)
    if not phrase or phrase in _GENERIC or len(phrase) < 3 or _VERB_START.match(phrase):
        return None
    if len(phrase.split()) > 6 or re.search(r"\d", phrase):
        return None
    for definition in definitions:
        match = _definition_match(definition, phrase)
        if match is not None and match[0] >= EXAMPLE_MATCH:
            return Mention(start, end, definition.name, match[0], match[1], definition=True)
    if (copy := _COPY.match(phrase)) is not None:
        name = _slug(_clean(copy.group("doc")) + " copy")
        if name:
            return Mention(
                start, end, name, DERIVED, f"the text asks for {phrase!r}", document=True
            )
    if (proof := _PROOF.match(phrase)) is not None:
        name = _slug("proof of " + proof.group("what"))
        if name:
            return Mention(
                start, end, name, DERIVED, f"the text asks for {phrase!r}", document=True
            )
    found = _vocabulary_hit(phrase)
    if found is not None:
        term, hit = found
        before = phrase[: hit.start()].strip()
        modifiers = [w for w in re.split(r"\s+", before) if w]
        third_party = "'" in before
        if not third_party and all(w in _SAME_CONCEPT for w in modifiers):
            return Mention(
                start,
                end,
                term.field_name,
                term.confidence,
                f"the text says {hit.group(0)!r}",
                value_type=term.value_type,
                display_name=term.display_name,
            )
    name = _slug(phrase)
    if name is None or name in _GENERIC:
        return None
    head = phrase.split()[-1]
    return Mention(
        start,
        end,
        name,
        DERIVED,
        f"the text asks for {phrase!r}",
        value_type=found[0].value_type
        if found and found[0].value_type is not ValueType.date
        else (ValueType.date if head == "date" else None),
        document=head in _DOCUMENT_HEADS,
    )


def _object_spans(sentence: str) -> tuple[str, list[tuple[int, int]]]:
    """The noun phrases a sentence asks for: the list after each asking verb, and the
    subject of "X is required/optional"."""
    # Blank soft asides and parentheses (same length) so they do not end a list.
    masked = _SOFT_INSIDE.sub(lambda m: "," + " " * (len(m.group(0)) - 1), sentence)
    masked = re.sub(r"\([^)]*\)", lambda m: " " * len(m.group(0)), masked)
    spans: list[tuple[int, int]] = []
    triggers = list(_TRIGGER.finditer(masked))
    for index, trigger in enumerate(triggers):
        start = trigger.end()
        stop = triggers[index + 1].start() if index + 1 < len(triggers) else len(masked)
        segment = masked[start:stop]
        ending = _CLAUSE_END.search(segment)
        # "need to know the X": the list starts after the infinitive.
        known = _KNOWN_TO.match(segment.lstrip())
        if known is not None:
            lead = len(segment) - len(segment.lstrip()) + known.end()
            start += lead
            segment = segment[lead:]
            ending = _CLAUSE_END.search(segment)
        if ending is not None:
            segment = segment[: ending.start()]
        position = start
        for piece in _SPLIT.split(segment):
            offset = masked.index(piece, position) if piece else position
            position = offset + len(piece)
            item_end = _ITEM_END.search(piece)
            if item_end is not None:
                piece = piece[: item_end.start()]
            if piece.strip():
                lead = len(piece) - len(piece.lstrip())
                spans.append((offset + lead, offset + len(piece.rstrip())))
    for subject in _SUBJECT.finditer(masked):
        np = subject.group("np")
        np_start = subject.start("np")
        # The subject is the end of the clause: "for orders above N, a PO number is required".
        cut = max(np.rfind(","), np.rfind(" we "))
        if cut >= 0:
            np_start += cut + 1
        spans.append((np_start, subject.end("np")))
    return masked, spans


def _terms(sentence: str, definitions: list[FieldDefinition]) -> Terms:
    """What the sentence says beyond its field names: optional spans, conditions (customer
    kind, amounts, counts), bounds (amounts on a field, counts, weight, age) and the
    spans those phrases take, which name no field themselves."""
    soft: list[tuple[int, int]] = []
    for marker in _SOFT_LEADING.finditer(sentence):
        soft.append((marker.start(), len(sentence)))
    for marker in _SOFT_TRAILING.finditer(sentence):
        clause = max(sentence.rfind(",", 0, marker.start()), sentence.rfind(":", 0, marker.start()))
        soft.append((clause + 1, marker.end()))
    conditions: list[tuple[int, int, str]] = []
    bounds: list[tuple[Mention, SuggestedConstraints]] = []
    excluded: list[tuple[int, int]] = []
    for kind in _CUSTOMER_TYPE.finditer(sentence):
        value = kind.group("type").strip()
        condition = f"customer_type == {value!r}".replace("'", '"')
        excluded.append((kind.start(), kind.end()))
        if kind.start() < 3 or not sentence[: kind.start()].strip(" ,"):
            conditions.append((kind.end(), len(sentence), condition))
        else:
            clause = sentence.rfind(",", 0, kind.start())
            conditions.append((max(clause, 0), kind.start(), condition))
    for amount in _AMOUNT.finditer(sentence):
        unit = amount.group("unit") or ""
        words = amount.group("field").split()
        before = sentence[: amount.start()]
        currency = bool(
            re.search(_CURRENCY + r"\s?$", amount.group(0)[: amount.start("n") - amount.start()])
        ) or bool(re.fullmatch(_CURRENCY, unit))
        value = _number(amount.group("n"))
        op = _AMOUNT_OPS[amount.group("op")]
        counted = not currency and unit.endswith("s") and len(unit) > 2
        if not currency and not counted:
            continue  # a bare number: an age, or nothing we read
        with_field = re.search(r"\bwith (?:an? |their |its )?$", before) is not None
        for word in ("with", "for", "of", "on", "to"):
            if word in words:
                with_field = with_field or word == "with"
                words = words[len(words) - words[::-1].index(word) :]
        if not words:
            continue
        target = " ".join(words)
        phrase_start = amount.start()
        field = (
            _resolve(target, amount.start(), amount.start("n"), definitions) if currency else None
        )
        if field is not None and (
            with_field or field.value_type in {ValueType.number, ValueType.integer}
        ):
            bound = (
                SuggestedConstraints(min=value)
                if op in {">", ">="}
                else SuggestedConstraints(max=value)
            )
            if field.value_type is None:
                # A bound on a new field makes it a number (bounds need one).
                field = replace(field, value_type=ValueType.number)
            bounds.append((field, bound))
            excluded.append((phrase_start, amount.end()))
            continue
        head = _singular(words[-1])
        if head in {"with", "for", "of", "aged", "age", "be", "is", "are"}:
            continue
        name = f"number_of_{unit}" if counted else f"{head}_amount"
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,49}", name):
            continue
        conditions.append((0, len(sentence), f"{name} {op} {_literal(value)}"))
        excluded.append((phrase_start, amount.end()))
    for have in _HAVE_AT_LEAST.finditer(sentence):
        unit = have.group("unit") or ""
        value = _number(have.group("n"))
        lower = have.group("op") in {"at least", "more than", "over"}
        if have.group("op") == "more than" or have.group("op") == "over":
            value += 1
        if not unit.endswith("s") or re.fullmatch(_CURRENCY, unit):
            continue
        name = f"number_of_{unit}"
        mention = Mention(
            have.start(),
            have.end(),
            name,
            DERIVED,
            f"the text says {have.group(0)!r}",
            value_type=ValueType.integer,
        )
        bounds.append(
            (mention, SuggestedConstraints(min=value) if lower else SuggestedConstraints(max=value))
        )
        excluded.append((have.start(), have.end()))
    for weigh in _WEIGH.finditer(sentence):
        value = _number(weigh.group("n"))
        lower = weigh.group("op") in {"at least", "more than", "over"}
        mention = Mention(
            weigh.start(),
            weigh.end(),
            "weight",
            DERIVED,
            f"the text says {weigh.group(0)!r}",
            value_type=ValueType.number,
        )
        bounds.append(
            (mention, SuggestedConstraints(min=value) if lower else SuggestedConstraints(max=value))
        )
        excluded.append((weigh.start(), weigh.end()))
    if _ELIGIBILITY.search(sentence):
        age = _age(sentence, excluded)
        if age is not None:
            start, end, bound = age
            mention = Mention(
                start,
                end,
                "date_of_birth",
                0.75,
                f"the text sets an age limit: {sentence[start:end]!r}",
                value_type=ValueType.date,
                display_name="Date of birth",
            )
            bounds.append((mention, bound))
    return Terms(soft, conditions, bounds, excluded)


def _age(
    sentence: str, excluded: list[tuple[int, int]]
) -> tuple[int, int, SuggestedConstraints] | None:
    """An age limit in an eligibility sentence: `min_age`/`max_age` in whole years
    (inclusive, so "under 70" is at most 69)."""

    def fine(match: re.Match[str]) -> bool:
        # The limit is what eligibility asks ("must be over 18", "only offered to
        # applicants under 70"), not who a rule is about ("customers under 18 must...").
        return not _overlaps(match.start(), match.end(), excluded) and bool(
            _ELIGIBILITY.search(sentence[: match.start()])
        )

    ranged = next((m for m in _AGE_RANGE.finditer(sentence) if fine(m)), None)
    if ranged is not None:
        low, high = int(ranged.group(1)), int(ranged.group(2))
        if 0 < low <= high <= 130:
            return ranged.start(), ranged.end(), SuggestedConstraints(min_age=low, max_age=high)
    low_hit = next((m for m in _AGE_MIN.finditer(sentence) if fine(m)), None)
    high_hit = next((m for m in _AGE_MAX.finditer(sentence) if fine(m)), None)
    inclusive = next((m for m in _AGE_MAX_INCLUSIVE.finditer(sentence) if fine(m)), None)
    bound = SuggestedConstraints()
    spans: list[re.Match[str]] = []
    if low_hit is not None:
        value = int(next(g for g in low_hit.groups() if g))
        if 0 < value <= 130:
            bound = bound.model_copy(update={"min_age": value})
            spans.append(low_hit)
    if high_hit is not None:
        value = int(high_hit.group(1))
        if 0 < value <= 130:
            bound = bound.model_copy(update={"max_age": value - 1})
            spans.append(high_hit)
    elif inclusive is not None:
        value = int(inclusive.group(1))
        if 0 < value <= 130:
            bound = bound.model_copy(update={"max_age": value})
            spans.append(inclusive)
    if bound.is_empty():
        return None
    return min(m.start() for m in spans), max(m.end() for m in spans), bound


def _sentences(text: str) -> list[tuple[int, str]]:
    """Sentences (and a title before a colon) with their offsets."""
    pieces: list[tuple[int, str]] = []
    start = 0
    for stop in re.finditer(r"(?<=[.!?;])\s+|:\s+|\n+", text):
        pieces.append((start, text[start : stop.start()]))
        start = stop.end()
    pieces.append((start, text[start:]))
    return [(offset, piece) for offset, piece in pieces if piece.strip()]


def _read_sentence(
    sentence: str, step_id: str | None, definitions: list[FieldDefinition]
) -> list[tuple[int, ProposedField]]:
    terms = _terms(sentence, definitions)
    mentions: list[Mention] = []
    claimed: list[tuple[int, int]] = []
    for definition in definitions:
        match = _definition_match(definition, sentence)
        if match is not None:
            spans = _definition_spans(definition, sentence)
            position = _first_position(definition, sentence)
            mentions.append(
                Mention(position, position, definition.name, match[0], match[1], definition=True)
            )
            claimed.extend(spans)
    masked, spans = _object_spans(sentence)
    objects = [span for span in spans if not _overlaps(*span, terms.excluded)]
    for start, end in objects:
        if _overlaps(start, end, claimed):
            continue
        if _NEGATED.search(sentence[max(0, start - 80) : start]):
            continue
        mention = _resolve(masked[start:end], start, end, definitions)
        if mention is not None:
            mentions.append(mention)
    taken = claimed + objects + terms.excluded
    for term, pattern in _vocabulary():
        hit = next(
            (m for m in pattern.finditer(sentence) if _counts(m, sentence, taken)),
            None,
        )
        if hit is None:
            continue
        mentions.append(
            Mention(
                hit.start(),
                hit.end(),
                term.field_name,
                term.confidence,
                f"the text says {hit.group(0)!r}",
                value_type=term.value_type,
                display_name=term.display_name,
            )
        )
    mentions.extend(mention for mention, _ in terms.bounds)
    bounds: dict[str, SuggestedConstraints] = {}
    for mention, bound in terms.bounds:
        bounds[mention.field_name] = bound.merged(bounds.get(mention.field_name))
    defined = {d.name for d in definitions}
    found: list[tuple[int, ProposedField]] = []
    for mention in mentions:
        soft = any(s <= mention.start < e for s, e in terms.soft)
        condition = next((c for s, e, c in terms.conditions if s <= mention.start < e), None)
        weak = mention.confidence < EXAMPLE_MATCH and mention.definition
        level = RequiredLevel.soft if soft else (None if weak else RequiredLevel.hard)
        limits = bounds.get(mention.field_name)
        reason = mention.reason
        if condition:
            reason = f"{reason}; only when {condition}"
        if limits is not None:
            reason = f"{reason}; {limits.describe()}"
        found.append(
            (
                mention.start,
                ProposedField(
                    field_name=mention.field_name,
                    confidence=mention.confidence,
                    reason=reason[:500],
                    required_level=level,
                    fallback_action=FallbackAction.skip if soft else None,
                    when_condition=condition,
                    constraints=limits,
                    needs_review=mention.document or condition is not None or limits is not None,
                    step_id=step_id,
                    value_type=None if mention.field_name in defined else mention.value_type,
                    display_name=None if mention.field_name in defined else mention.display_name,
                ),
            )
        )
    return found


class HeuristicExtractor:
    """The default when no LLM is configured: deterministic, offline, explainable."""

    name = "heuristic"

    async def extract(
        self, source: SourceText, definitions: list[FieldDefinition]
    ) -> list[ProposedField]:
        """Fields needed by each piece of text, in the order the text mentions them."""
        return [p for part in source.parts for p in read(part, definitions)]


def read(part: TextPart, definitions: list[FieldDefinition]) -> list[ProposedField]:
    """One piece of text: its fields, each once (the stricter reading wins), in order."""
    text = part.text.lower()
    merged: dict[str, tuple[int, ProposedField]] = {}
    for offset, sentence in _sentences(text):
        for position, proposal in _read_sentence(sentence, part.step_id, definitions):
            seen = merged.get(proposal.field_name)
            if seen is None:
                merged[proposal.field_name] = (offset + position, proposal)
            else:
                merged[proposal.field_name] = (
                    min(seen[0], offset + position),
                    merge(seen[1], proposal),
                )
    return [proposal for _, proposal in sorted(merged.values(), key=lambda item: item[0])]


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
    """A vocabulary hit counts unless other words already took it (a definition, an
    object phrase, a condition), it belongs to someone else ("the contact's phone"), or
    the text says not to ask for it."""
    if any(start < hit.end() and hit.start() < end for start, end in claimed):
        return False
    before = text[max(0, hit.start() - 80) : hit.start()]
    return not (_THIRD_PARTY.search(before) or _NEGATED.search(before))
