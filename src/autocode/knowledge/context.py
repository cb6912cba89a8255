"""ConText: is a mention negated, hypothetical, uncertain, historical, or about a family
member?

An implementation of the trigger rules of ConText (Harkema, Dowling, Thornblade, Chapman,
"ConText: An algorithm for determining negation, experiencer, and temporal status from
clinical reports", J Biomed Inform 2009), which extends NegEx (Chapman et al. 2001):

1. Trigger phrases name a context. A forward trigger ("no", "denies", "history of")
   governs the words after it, a backward trigger ("was ruled out", "is unlikely") the
   words before it.
2. Pseudo-triggers ("no increase", "not only", "gram negative") contain a trigger but
   do not trigger: where one matches, the trigger inside it is ignored.
3. A trigger's scope runs to the end of its sentence, or to the first termination term
   ("but", "however", "which", …) in its direction, whichever comes first.

The trigger lists are the published ones, shortened to the phrases that occur in English
clinical narrative, with their Spanish counterparts written after them ("niega", "sin",
"ausencia de", "se descarta", "antecedentes familiares de"), since autocode codes Spanish
notes too (CodiEsp's originals). One list serves both languages, as their trigger words
hardly meet: "no" means no in both, and "sin embargo" (however) is a pseudo-trigger and
a terminator. Why not a library: medspacy, the maintained ConText, pins numpy < 2
on Python 3.11 (autocode runs numpy 2); negspacy needs a spaCy pipeline and, for
useful sentence and entity boundaries, a model download, which autocode never does at
run time. The rules themselves are small, and here they are tested one by one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

NEGATED = "negated"
HYPOTHETICAL = "hypothetical"  # "if", "risk of", "prophylaxis": not (yet) present
# "Suspected", "probable", "compatible with": a diagnosis not confirmed. Told apart from
# hypothetical as pyConText tells "probable existence" apart: the ICD-10-CM Official
# Guidelines code an uncertain diagnosis at an inpatient discharge as if it existed
# (Section II.H), and not in outpatient care (Section IV.H), so where it codes is a
# choice of setting. Its triggers are the guidelines' words (probable, suspected, likely,
# questionable, possible, compatible with, consistent with); "rule out" stays negation,
# as in NegEx.
UNCERTAIN = "uncertain"
HISTORICAL = "historical"
FAMILY = "family"
# Mentions in these contexts do not code, by default: "history of" often does (a chronic
# condition still treated), so historical mentions are blocked only where configured.
NOT_CODED = (NEGATED, HYPOTHETICAL, UNCERTAIN, FAMILY)

FORWARD = "forward"
BACKWARD = "backward"

# (context, direction) -> trigger phrases.
# fmt: off
TRIGGERS: dict[tuple[str, str], tuple[str, ...]] = {
    (NEGATED, FORWARD): (
        "no", "not", "denies", "denied", "denying", "without", "absence of", "absent",
        "negative for", "no evidence of", "no sign of", "no signs of", "free of",
        "rules out", "ruled out", "rule out", "r/o", "never had", "never developed",
        "cannot see", "fails to reveal", "failed to reveal", "nor",
        "not demonstrate", "no history of", "exclusion of", "neither",
        # Spanish
        "sin", "niega", "negó", "negaba", "niegan", "ni", "tampoco", "nunca", "ausencia de",
        "descarta", "descartó", "se descarta", "se descartó", "se descartan", "se descartaron",
        "descartaron", "descartándose", "para descartar",
        "negativo para", "negativa para", "libre de", "sin evidencia de", "sin signos de",
        "no presenta", "no presentaba", "no refiere", "no se observa", "no se observan",
        "no se objetiva", "no se evidencia", "no se aprecia", "no hay", "no existe",
        "exclusión de",
    ),
    (NEGATED, BACKWARD): (
        "was ruled out", "were ruled out", "is ruled out", "are ruled out",
        "has been ruled out", "have been ruled out", "was excluded", "were excluded",
        "is unlikely", "was unlikely", "is negative", "was negative", "were negative",
        "are negative", "free", "not seen", "was not found", "were not found",
        "not detected", "was absent", "were absent", "not present", "resolved",
        # Spanish
        "fue descartado", "fue descartada", "fueron descartados", "descartado", "descartada",
        # With their verb, as in English: a bare "negativo" also ends "carcinoma triple
        # negativo" and "estafilococo coagulasa negativo", which it does not negate.
        "es negativo", "es negativa", "fue negativo", "fue negativa", "fueron negativos",
        "fueron negativas", "resultó negativo", "resultó negativa", "resultaron negativos",
        "ausente", "no detectado", "no detectada",
    ),
    (HYPOTHETICAL, FORWARD): (
        "if", "should", "in case of", "return if", "come back if", "risk of", "at risk for",
        "to prevent", "prevention of", "prophylaxis", "prophylaxis of", "in the event of",
        "watch for", "monitor for", "screening for",
        # Spanish ("si" is left out: written for "sí", yes, and "SI" in English notes)
        "en caso de", "riesgo de", "prevención de", "profilaxis de",
    ),
    (UNCERTAIN, FORWARD): (
        "suspicion of", "suspected", "probable", "probably", "possible", "possibly",
        "likely", "questionable", "presumed", "presumably", "suspicious for",
        "compatible with", "consistent with", "suggestive of",
        # Spanish ("probable" is the same word)
        "sospecha de", "ante la sospecha de", "posible", "compatible con",
        "sugestivo de", "sugestiva de", "sugestivos de", "sugestivas de", "sugerente de",
    ),
    (UNCERTAIN, BACKWARD): (
        "cannot be excluded", "cannot be ruled out", "is suspected", "was suspected",
    ),
    (HISTORICAL, FORWARD): (
        "history of", "h/o", "previous", "previously", "prior", "past medical history",
        "past history of", "in the past", "years ago", "status post", "s/p",
        # Spanish
        "antecedentes de", "antecedente de", "historia de", "previamente", "hace años",
    ),
    (FAMILY, FORWARD): (
        "family history", "family history of", "mother", "father", "brother", "sister",
        "sibling", "siblings", "grandmother", "grandfather", "aunt", "uncle", "cousin",
        "maternal", "paternal", "parents", "his son", "her son", "his daughter",
        "her daughter", "relatives",
        # Spanish
        "antecedentes familiares", "antecedentes familiares de", "madre", "padre", "hermano",
        "hermana", "hermanos", "abuela", "abuelo", "tía", "tío", "primo", "prima", "padres",
        "su hijo", "su hija", "familiares",
    ),
    (FAMILY, BACKWARD): (
        "in the family", "in her family", "in his family", "runs in the family",
        "en la familia", "en su familia",
    ),
}
# fmt: on
# Phrases holding a trigger that do not trigger (NegEx/ConText pseudo-triggers).
PSEUDO_TRIGGERS = (
    "no increase",
    "no change",
    "no significant change",
    "no interval change",
    "not only",
    "not necessarily",
    "not certain if",
    "not certain whether",
    "no further",
    "gram negative",
    "gram-negative",
    "without difficulty",
    "not drain",
    "not cause",
    "not extend",
    "not rule out",
    "doesn't rule out",
    "does not rule out",
    "sign of infection free",
    "no suspicious change",
    "if any",
    "if possible",
    "as soon as possible",
    "whenever possible",
    "if needed",
    "as needed",
    "history and physical",
    "history and examination",
    "clinical history",
    "history was taken",
    "family history was",
    "free fluid",
    "free air",
    # Spanish
    "sin embargo",
    "no obstante",
    "sin cambios",
    "no solo",
    "no sólo",
    "gram negativo",
    "gramnegativo",
    "sin dificultad",
    "no descarta",
    "no se descarta",
    "no filiado",
    "no filiada",
    "sin cita",
    "sin cita previa",
    "por exclusión",
    "intervalo libre",
    "supervivencia libre",
    "sin conseguir",
    "sin obtener",
    "sin causa aparente",
    "sin otra causa",
    "sin nombre",
    "con su madre",
    "con su padre",
    "refieren los padres",
    "los padres refieren",
    "sus padres",
)  # fmt: skip
# Words that end a trigger's scope (ConText termination terms, all contexts).
TERMINATORS = (
    "but", "however", "although", "though", "yet", "except", "apart from", "aside from",
    "which", "who", "whose", "cause of", "causes of", "source of", "reason for",
    "secondary to", "due to", "presents", "presented", "presenting", "complains",
    "complained", "complaining", "consistent with", "compatible with", "diagnosed",
    "diagnosis of", "now", "currently",
    "was found", "revealed", "showed",
    # Spanish
    "pero", "sin embargo", "no obstante", "aunque", "excepto", "salvo", "el cual",
    "la cual", "causa de", "secundario a", "secundaria a", "debido a", "consulta",
    "consultó", "acude", "acudió", "ingresa", "ingresó", "remitido", "remitida",
    "presenta", "presentaba", "presentando", "presentó", "que presenta", "compatible con",
    "diagnosticado", "diagnosticada", "diagnóstico de", "actualmente", "se encontró",
    "reveló", "mostró", "de interés", "conocido", "conocida", "conocidos", "conocidas",
    "y con", "antecedentes personales",
)  # fmt: skip


@dataclass(frozen=True)
class ContextScope:
    """Characters [start, end) of a text that a trigger of `context` governs."""

    context: str
    start: int
    end: int


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    # Longest first, so "no evidence of" wins over "no"; whole words only.
    alternatives = sorted({re.escape(p).replace(r"\ ", r"\s+") for p in phrases}, key=len)
    return re.compile(r"(?<![\w/])(?:" + "|".join(reversed(alternatives)) + r")(?![\w/])", re.I)


_TRIGGER_PATTERNS = {key: _phrase_pattern(phrases) for key, phrases in TRIGGERS.items()}
_TEXT_WORD = re.compile(r"[\w/]+")
_PSEUDO = _phrase_pattern(PSEUDO_TRIGGERS)
_TERMINATOR = _phrase_pattern(TERMINATORS)


def context_scopes(sentence: str, offset: int = 0) -> list[ContextScope]:
    """The scopes of the triggers in one sentence; positions are `offset` + index.

    A trigger inside a pseudo-trigger, or inside a longer trigger ("history of" in
    "family history of"), does not trigger.
    """
    triggers = [
        (context, direction, match.span())
        for (context, direction), pattern in _TRIGGER_PATTERNS.items()
        for match in pattern.finditer(sentence)
    ]
    if not triggers:
        return []
    pseudo = [m.span() for m in _PSEUDO.finditer(sentence)]
    terminators = [m.span() for m in _TERMINATOR.finditer(sentence)]
    spans = [span for _, _, span in triggers]
    scopes = []
    for context, direction, (start, end) in triggers:
        if _inside(start, end, pseudo) or _inside(start, end, spans, strictly=True):
            continue
        if direction == FORWARD:
            stop = min((a for a, _ in terminators if a >= end), default=len(sentence))
            scope = (end, stop)
        else:
            begin = max((b for _, b in terminators if b <= start), default=0)
            scope = (begin, start)
        if scope[1] > scope[0]:
            scopes.append(ContextScope(context, scope[0] + offset, scope[1] + offset))
    return scopes


def _inside(
    start: int, end: int, spans: Iterable[tuple[int, int]], *, strictly: bool = False
) -> bool:
    return any(
        a <= start and end <= b and (not strictly or (a, b) != (start, end)) for a, b in spans
    )


@dataclass(frozen=True)
class TriggerWords:
    """What a text must hold for a trigger of some contexts to occur in it: a one-word
    trigger as a word, or the first two or three words of a longer one side by side ("is
    negative", "in the past": "is" and "in the" alone are in most sentences)."""

    words: frozenset[str]
    openings: frozenset[tuple[str, ...]]
    opening_words: frozenset[str]

    @classmethod
    def of(cls, contexts: Iterable[str]) -> TriggerWords:
        wanted = set(contexts)
        phrases = {p for (context, _), ps in TRIGGERS.items() if context in wanted for p in ps}
        openings = frozenset(tuple(p.split()[:3]) for p in phrases if " " in p)
        words = frozenset(p for p in phrases if " " not in p)
        return cls(words, openings, frozenset(opening[0] for opening in openings))

    def may_occur_in(self, text: str) -> bool:
        """False only where no trigger of these contexts occurs in `text`."""
        words = _TEXT_WORD.findall(text.lower())
        if not self.words.isdisjoint(words):
            return True
        if self.opening_words.isdisjoint(words):
            return False
        pairs = pairwise(words)
        triples = zip(words, words[1:], words[2:], strict=False)
        return not (self.openings.isdisjoint(pairs) and self.openings.isdisjoint(triples))


@lru_cache(maxsize=64)
def trigger_words(contexts: frozenset[str]) -> TriggerWords:
    """What a text must hold for a trigger of `contexts` to occur in it."""
    return TriggerWords.of(contexts)


_ANY_CONTEXT = frozenset(context for context, _ in TRIGGERS)


def has_trigger(text: str, contexts: Iterable[str] = _ANY_CONTEXT) -> bool:
    """Whether a trigger phrase of `contexts` (any by default) may occur in `text`: false
    only where none does (a quick test before `context_scopes`). A reader that only asks
    what blocks passes the blocking contexts: "history of" blocks nothing."""
    return trigger_words(frozenset(contexts)).may_occur_in(text)


def contexts_at(scopes: Iterable[ContextScope], start: int, end: int) -> frozenset[str]:
    """The contexts of a mention at [start, end): those of every scope it overlaps."""
    return frozenset(s.context for s in scopes if s.start < end and start < s.end)


def saved_blocking(blocking: Iterable[str], *, uncertain_apart: bool) -> tuple[str, ...]:
    """Blocking contexts as saved; for what was saved before uncertain mentions were told
    apart (not `uncertain_apart`), "hypothetical" then blocked "suspected …" as well."""
    blocking = tuple(blocking)
    if uncertain_apart or HYPOTHETICAL not in blocking or UNCERTAIN in blocking:
        return blocking
    return (*blocking, UNCERTAIN)
