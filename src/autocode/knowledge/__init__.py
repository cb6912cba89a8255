"""What the code systems say about each code: descriptions, terms, families, the lexicon
that finds those terms in notes, and label columns grouped by code system.

Built once from explicit `CodeSources` at a run's entry point; nothing here reads an
environment variable or imports `autocode.models`.
"""

from autocode.knowledge.code_knowledge import CodeKnowledge
from autocode.knowledge.columns import code_system, system_columns
from autocode.knowledge.label_terms import LabelTerms
from autocode.knowledge.lexicon import FULL_MATCH, CodeLexicon, TermMatches
from autocode.knowledge.sources import CodeSources
from autocode.knowledge.terms import code_group

__all__ = [
    "FULL_MATCH",
    "CodeKnowledge",
    "CodeLexicon",
    "CodeSources",
    "LabelTerms",
    "TermMatches",
    "code_group",
    "code_system",
    "system_columns",
]
