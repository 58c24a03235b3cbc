"""The library's SQLite index: one row per sketch, an FTS5 full-text index over its words, thumbnails.

The index is the single source of truth about what a library holds: a sketch file that is not in
the index does not exist for search, export or story references. The schema is versioned with
``PRAGMA user_version`` so that a newer sketchstory can migrate an old library and an older one
refuses a newer library instead of misreading it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sketchstory.library.query import EVERYTHING, Filters, fts_query, where
from sketchstory.provenance import fingerprint

SCHEMA_VERSION = 1
FORMAT = "sketchstory/library"
GROUPS = ("story", "sundry", "user")

# bm25 weights of the FTS columns (prompt, tags, category, story, scene): tags and categories are
# chosen words, so a hit there says more than a word somewhere in a long generated prompt.
_WEIGHTS = (1.0, 3.0, 2.0, 1.5, 1.5)

# A story scene's K candidates share one text (prompt, tags, story, scene): the words are stored
# and full-text indexed once per text, not once per sketch, which keeps the FTS index 20-80 times
# smaller than the sketch count on a thesis-shaped library and search time with it.
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE texts (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    grp TEXT NOT NULL CHECK (grp IN {GROUPS!r}),
    prompt TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    category TEXT,
    story TEXT,
    scene TEXT,
    scene_index INTEGER
);
CREATE INDEX texts_order ON texts (grp, story, scene_index, category, prompt);
CREATE TABLE entries (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    text_id INTEGER NOT NULL REFERENCES texts (id),
    candidate INTEGER,
    seed INTEGER,
    source TEXT,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    file TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX entries_text ON entries (text_id, candidate, id);
CREATE TABLE thumbs (id TEXT PRIMARY KEY, png BLOB NOT NULL);
CREATE TABLE jobs (key TEXT PRIMARY KEY, entry TEXT, done REAL NOT NULL);
CREATE VIRTUAL TABLE texts_fts USING fts5 (
    prompt, tags, category, story, scene,
    content='texts', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER texts_fts_insert AFTER INSERT ON texts BEGIN
    INSERT INTO texts_fts (rowid, prompt, tags, category, story, scene)
    VALUES (new.id, new.prompt, new.tags, new.category, new.story, new.scene);
END;
"""


class LibraryError(ValueError):
    """A library that cannot be used as asked; the message says what to do."""


@dataclass(frozen=True)
class Meta:
    """What a sketch shows and where it came from (everything but the pixels)."""

    group: str
    prompt: str
    tags: tuple[str, ...] = ()
    category: str | None = None
    story: str | None = None
    scene: str | None = None
    scene_index: int | None = None
    candidate: int | None = None
    seed: int | None = None
    source: str | None = None  # the stage-1 model, or the imported file's name


@dataclass(frozen=True)
class Entry:
    id: str
    hash: str
    meta: Meta
    width: int
    height: int
    file: str  # relative to the library folder
    created: float

    @property
    def label(self) -> str:
        """Where the sketch belongs, for listings: story / scene #candidate, or the category."""
        m = self.meta
        if m.group == "story":
            return f"{m.story} / {m.scene} #{m.candidate}"
        return m.category or m.group


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float  # bm25: lower is better


_TEXT_COLUMNS = ("grp", "prompt", "tags", "category", "story", "scene", "scene_index")
_ENTRY_COLUMNS = ("id", "hash", "text_id", "candidate", "seed", "source", "width", "height", "file", "created")
_SELECT = ", ".join([*(f"e.{c}" for c in _ENTRY_COLUMNS), *(f"t.{c}" for c in _TEXT_COLUMNS)])
_FROM = "entries e JOIN texts t ON t.id = e.text_id"
_ORDER = "t.grp, t.story, t.scene_index, t.category, t.prompt, e.candidate, e.id"


def _entry(row: Sequence[Any]) -> Entry:
    e = dict(zip(_ENTRY_COLUMNS, row))
    t = dict(zip(_TEXT_COLUMNS, row[len(_ENTRY_COLUMNS):]))
    tags = tuple(tag for tag in (s.strip() for s in t["tags"].split(",")) if tag)
    meta = Meta(t["grp"], t["prompt"], tags, t["category"], t["story"], t["scene"], t["scene_index"], e["candidate"],
                e["seed"], e["source"])
    return Entry(e["id"], e["hash"], meta, e["width"], e["height"], e["file"], e["created"])


class Index:
    """A connection to one library's index. Readers may be many; writing is the caller's lock's job."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise LibraryError(f"no sketch library index at {self.path}")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30.0)
        try:
            self._prepare(create)
        except sqlite3.DatabaseError as error:
            self.db.close()
            raise LibraryError(f"{self.path} is not a readable sketch library index ({error})") from error

    def _prepare(self, create: bool) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if version == 0 and tables == 0 and create:
            # WAL lets searches and story renders read while a build writes; NORMAL sync is durable
            # for every committed transaction but the last few on power loss, which a resume redoes.
            self.db.execute("PRAGMA journal_mode=WAL")
            with self.db:
                self.db.executescript(_SCHEMA)
                self.db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            raise LibraryError(f"{self.path} was written by a newer sketchstory (library schema {version}, this "
                               f"one reads {SCHEMA_VERSION}); upgrade sketchstory")
        elif version != SCHEMA_VERSION or self.get_meta("format") != FORMAT:
            raise LibraryError(f"{self.path} is not a sketchstory library index")
        self.db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        self.db.close()

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- writing ---------------------------------------------------------------------------------

    def insert(self, entry: Entry, thumb: bytes) -> None:
        """Add one entry and its thumbnail; the caller commits (``with index.db:``)."""
        m = entry.meta
        text = (m.group, m.prompt, ", ".join(m.tags), m.category, m.story, m.scene, m.scene_index)
        key = fingerprint(text)
        self.db.execute(f"INSERT OR IGNORE INTO texts (key, {', '.join(_TEXT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (key, *text))
        (text_id,) = self.db.execute("SELECT id FROM texts WHERE key = ?", (key,)).fetchone()
        self.db.execute(f"INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) VALUES ({', '.join('?' * 10)})",
                        (entry.id, entry.hash, text_id, m.candidate, m.seed, m.source, entry.width, entry.height,
                         entry.file, entry.created))
        self.db.execute("INSERT INTO thumbs VALUES (?, ?)", (entry.id, thumb))

    def finish_job(self, key: str, entry_id: str | None) -> None:
        """Record a build job as done (``entry_id`` None: its sketch was a duplicate or unusable)."""
        self.db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)", (key, entry_id, time.time()))

    # -- reading ---------------------------------------------------------------------------------

    def by_id(self, entry_id: str) -> Entry | None:
        row = self.db.execute(f"SELECT {_SELECT} FROM {_FROM} WHERE e.id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def by_hash(self, digest: str) -> Entry | None:
        row = self.db.execute(f"SELECT {_SELECT} FROM {_FROM} WHERE e.hash = ?", (digest,)).fetchone()
        return _entry(row) if row else None

    def thumbnail(self, entry_id: str) -> bytes:
        row = self.db.execute("SELECT png FROM thumbs WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            raise LibraryError(f"{self.path} has no thumbnail for {entry_id!r}: the index is damaged; rebuild it")
        return row[0]

    def done_jobs(self) -> set[str]:
        return {key for (key,) in self.db.execute("SELECT key FROM jobs")}

    def entries(self, filters: Filters = EVERYTHING, limit: int | None = None, offset: int = 0) -> list[Entry]:
        """Entries in library order: by group, story, scene, category, prompt, then candidate."""
        sql, args = where(filters.on_text(), filters.on_entry())
        rows = self.db.execute(f"SELECT {_SELECT} FROM {_FROM} {sql} ORDER BY {_ORDER} LIMIT ? OFFSET ?",
                               (*args, -1 if limit is None else limit, offset))
        return [_entry(r) for r in rows]

    def count(self, filters: Filters = EVERYTHING) -> int:
        sql, args = where(filters.on_text(), filters.on_entry())
        return self.db.execute(f"SELECT count(*) FROM {_FROM} {sql}", args).fetchone()[0]

    def search(self, text: str, filters: Filters = EVERYTHING, limit: int | None = 20, offset: int = 0) -> list[Hit]:
        """Best matches first (``limit`` None: all). All words must match; if nothing does, any word may.

        A scene's candidates share its text, so they share a score and come out together, in
        candidate order.
        """
        every, any_ = fts_query(text, "all"), fts_query(text, "any")
        if every is None or any_ is None:
            return []
        hits = self._match(every, filters, -1 if limit is None else limit, offset)
        if not hits and not offset and any_ != every:  # one word: the same query again would find nothing
            hits = self._match(any_, filters, -1 if limit is None else limit, offset)
        return hits

    def _match(self, match: str, filters: Filters, limit: int, offset: int) -> list[Hit]:
        text_filter = filters.on_text()
        # Joining texts only to filter them costs a lookup per matching text: skip it when unfiltered.
        texts = "texts_fts JOIN texts t ON t.id = texts_fts.rowid" if text_filter[0] else "texts_fts"
        text_sql, text_args = where((["texts_fts MATCH ?"], [match]), text_filter)
        entry_sql, entry_args = where(filters.on_entry())
        # Rank texts first: every text has at least one sketch, so the best limit + offset texts
        # hold the best limit + offset sketches, unless an id filter drops some of their sketches.
        top = -1 if limit < 0 or filters.ids else limit + offset
        weights = ", ".join(map(str, _WEIGHTS))
        rows = self.db.execute(
            f"WITH ranked AS (SELECT texts_fts.rowid AS tid, bm25(texts_fts, {weights}) AS score FROM {texts} "
            f"{text_sql} ORDER BY score, tid LIMIT ?) "
            f"SELECT {_SELECT}, ranked.score FROM ranked JOIN entries e ON e.text_id = ranked.tid "
            f"JOIN texts t ON t.id = e.text_id {entry_sql} ORDER BY ranked.score, ranked.tid, e.candidate, e.id "
            "LIMIT ? OFFSET ?",
            (*text_args, top, *entry_args, limit, offset))
        return [Hit(_entry(row[:-1]), row[-1]) for row in rows]

    def summary(self) -> list[tuple[str, str | None, int]]:
        """(group, story or category, count) for every group and story/category, in order."""
        return list(self.db.execute(
            f"SELECT t.grp, coalesce(t.story, t.category), count(*) FROM {_FROM} GROUP BY 1, 2 ORDER BY 1, 2"))

    def bulk_insert(self, rows: Iterable[tuple[Entry, bytes]]) -> None:
        """Insert many entries in one transaction (the benchmark's synthetic index)."""
        with self.db:
            for entry, thumb in rows:
                self.insert(entry, thumb)
