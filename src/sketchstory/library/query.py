"""What users type -> safe SQL: search words to an FTS5 query, filters to a WHERE clause."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# "quoted phrases" or runs of letters/digits; everything else (FTS5 operators, punctuation) is a
# separator, so no user input can form FTS5 syntax or raise a syntax error.
_TOKENS = re.compile(r'"([^"]*)"|([\w]+)', re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str, mode: Literal["all", "any"] = "all") -> str | None:
    """An FTS5 MATCH expression for ``text``: every word (or phrase) quoted, joined by AND or OR.

    Returns None when ``text`` holds no searchable word.
    """
    terms = []
    for phrase, word in _TOKENS.findall(text):
        words = _WORD.findall(phrase) if phrase else [word]
        if words:
            terms.append('"' + " ".join(words) + '"')
    if not terms:
        return None
    return (" AND " if mode == "all" else " OR ").join(terms)


Clauses = tuple[list[str], list[str]]  # SQL conditions joined by AND, and their arguments


@dataclass(frozen=True)
class Filters:
    """Exact-match restrictions: group, category and story are a text's (alias ``t``), ids a sketch's (``e``)."""

    group: str | None = None
    category: str | None = None
    story: str | None = None
    ids: tuple[str, ...] = ()

    def on_text(self) -> Clauses:
        clauses, args = [], []
        for column, value in (("grp", self.group), ("category", self.category), ("story", self.story)):
            if value is not None:
                clauses.append(f"t.{column} = ? COLLATE NOCASE")
                args.append(value)
        return clauses, args

    def on_entry(self) -> Clauses:
        if not self.ids:
            return [], []
        return [f"e.id IN ({', '.join('?' * len(self.ids))})"], list(self.ids)


EVERYTHING = Filters()  # no restriction (a frozen singleton, safe as a default argument)


def where(*parts: Clauses) -> tuple[str, list[str]]:
    """``WHERE a AND b ...`` (or nothing) and the arguments, from any number of clause lists."""
    clauses = [c for part in parts for c in part[0]]
    args = [a for part in parts for a in part[1]]
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args
