"""The sketch library: index, search ranking, import, export, story references, CLI (no models)."""

from __future__ import annotations

import argparse
import sqlite3
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from sketchstory.cli import run
from sketchstory.commands.library import register
from sketchstory.locks import BusyError
from sketchstory.library import (
    Filters,
    Library,
    LibraryError,
    Meta,
    import_folder,
    load_prompts,
    resolve,
)
from sketchstory.library.prompts import jobs
from sketchstory.library.query import EVERYTHING, fts_query
from sketchstory.library.store import content_hash


def drawing(n: int, size: int = 96) -> Image.Image:
    """A distinct line drawing per ``n``: a box and a circle placed by n."""
    img = np.full((size, size), 255, np.uint8)
    cv2.rectangle(img, (8 + n % 7 * 3, 10 + n % 5 * 4), (60 + n % 3 * 9, 70 + n % 4 * 5), 0, 2)
    cv2.circle(img, (30 + n % 11 * 4, 40 + n % 13 * 3), 6 + n % 6, 0, 2)
    return Image.fromarray(img, mode="L")


def cli(*argv: str) -> int:
    """The subcommand through the CLI's own error handling and exit codes."""
    parser = argparse.ArgumentParser(prog="sketchstory")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run(args.func, args)


# A hand-made index: what each entry says decides where it must rank.
HAND_MADE = [
    ("a", Meta("sundry", "a wizard with a tall pointed hat", ("wizard", "hat"), category="people")),
    ("b", Meta("sundry", "a wizard reading a book by the fire", (), category="people")),
    ("c", Meta("sundry", "a straw hat on a table", ("hat",), category="clothing")),
    ("d", Meta("sundry", "a knight with a sword and a shield", ("knight",), category="people")),
    ("e", Meta("story", "a girl kneels before the throne", (), story="The lost crown", scene="coronation",
               scene_index=3, candidate=0)),
    ("f", Meta("sundry", "an old man in a long robe walking down a hill at dusk past a wizard tower and a mill",
               (), category="people")),
    ("g", Meta("sundry", "a small figure", ("wizard",), category="people")),
]


@pytest.fixture
def hand_made(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root, ids = tmp_path / "lib", {}
    with Library.writer(root) as library, library.index.db:
        for n, (name, meta) in enumerate(HAND_MADE):
            ids[name] = library.add(drawing(n), meta).entry.id
    return root, ids


def names(root: Path, ids: dict[str, str], text: str, filters: Filters = EVERYTHING) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    with Library.open(root) as library:
        return [by_id[h.entry.id] for h in library.index.search(text, filters)]


def test_search_ranking_on_a_hand_made_index(hand_made):
    root, ids = hand_made
    assert names(root, ids, "wizard hat") == ["a"]  # every word must match
    wizard = names(root, ids, "wizard")
    assert set(wizard) == {"a", "b", "f", "g"}
    assert wizard.index("g") < wizard.index("f")  # a tag on a short text beats a word lost in a long prompt
    assert wizard.index("a") < wizard.index("b")  # in the prompt and the tags beats the prompt alone
    assert set(names(root, ids, "hats")) == {"a", "c"}  # stemming
    assert names(root, ids, "crown") == ["e"] and names(root, ids, "coronation") == ["e"]  # story, scene names
    assert names(root, ids, '"pointed hat"') == ["a"] and names(root, ids, '"hat pointed"') == []
    assert names(root, ids, "clothing") == ["c"]  # categories
    # no sketch has both words: any word may match, best first
    assert names(root, ids, "knight dragon") == ["d"]
    assert names(root, ids, "wizard", Filters(category="People"))[-1] == "f"


def test_search_input_is_never_fts_syntax(hand_made):
    root, ids = hand_made
    assert fts_query('wizard AND (hat OR "') == '"wizard" AND "AND" AND "hat" AND "OR"'
    assert "a" in names(root, ids, "NEAR(wizard hat) *")  # no entry says "near": any word may match
    assert names(root, ids, "!!! ---") == []
    assert names(root, ids, "zeppelin") == []


def test_candidates_of_a_scene_share_its_text_and_come_out_in_order(tmp_path):
    with Library.writer(tmp_path / "lib") as library, library.index.db:
        for k in (2, 0, 1):
            library.add(drawing(k), Meta("story", "a dragon sleeps", (), story="Egg", scene="nest", scene_index=0,
                                         candidate=k))
        library.add(drawing(9), Meta("sundry", "a dragon kite", (), category="toys"))
        texts = library.index.db.execute("SELECT count(*) FROM texts").fetchone()[0]
        hits = library.index.search("dragon sleeps")
        page = library.index.search("dragon", limit=2, offset=1)
        everything = library.index.search("dragon", limit=None)
    assert texts == 2
    assert [h.entry.meta.candidate for h in hits] == [0, 1, 2]
    assert len(page) == 2 and len(everything) == 4


def test_duplicates_are_skipped_by_content(tmp_path):
    with Library.writer(tmp_path / "lib") as library, library.index.db:
        first = library.add(drawing(1), Meta("user", "one"))
        again = library.add(drawing(1).copy(), Meta("user", "the same drawing, another name"))
        other = library.add(drawing(2), Meta("user", "two"))
        count = library.index.count()
    assert again.duplicate and again.entry.id == first.entry.id and not other.duplicate
    assert count == 2 and first.entry.id == content_hash(drawing(1))[:12]


def test_import_normalises_skips_unusable_and_exits_nonzero(tmp_path, capsys):
    drawings = tmp_path / "drawings"
    (drawings / "animals").mkdir(parents=True)
    (drawings / ".hidden").mkdir()
    dark = 255 - np.asarray(drawing(3, 400))  # chalk on a blackboard: light lines on dark
    Image.fromarray(dark).convert("RGB").save(drawings / "animals" / "red_dragon-2.jpg", quality=95)
    drawing(4, 300).save(drawings / "ok.png")
    drawing(4, 300).save(drawings / "ok_again.png")
    Image.new("L", (64, 64), 255).save(drawings / "blank.png")
    (drawings / "broken.png").write_bytes(b"this is not a picture")
    (drawings / "notes.txt").write_text("not a drawing, not an error")
    drawing(5).save(drawings / ".hidden" / "x.png")
    root = tmp_path / "lib"

    code = cli("library", "import", str(drawings), "--library", str(root), "--tags", "mine, ink", "--side", "128")
    out, err = capsys.readouterr()
    assert code == 2
    assert "blank.png" in err and "no lines" in err
    assert "broken.png" in err and "cannot read" in err
    assert "notes.txt" not in out + err and "x.png" not in out + err
    assert "2 drawing(s) added, 1 already there, 2 unusable" in out
    with Library.open(root) as library:
        entries = {e.meta.prompt: e for e in library.index.entries()}
        assert set(entries) == {"red dragon 2", "ok"}
        dragon = entries["red dragon 2"]
        assert dragon.meta.category == "animals" and dragon.meta.tags == ("mine", "ink")
        assert max(dragon.width, dragon.height) == 128
        sketch = np.asarray(Image.open(library.path(dragon)))
        assert sketch.mean() > 200  # normalised: dark lines on a white page, not the blackboard

    assert cli("library", "import", str(drawings / "animals"), "--library", str(root)) == 0  # nothing unusable
    assert "0 drawing(s) added, 1 already there" in capsys.readouterr().out


def test_import_api_reports_every_failure(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.new("RGB", (32, 32), (90, 90, 90)).save(tmp_path / "in" / "b.png")
    with Library.writer(tmp_path / "lib") as library:
        report = import_folder(library, tmp_path / "in")
    assert [p.name for p, _ in report.failed] == ["a.png", "b.png"] and not report.added
    with pytest.raises(LibraryError, match="not a folder"):
        import_folder(library, tmp_path / "missing")


def test_story_references_resolve_and_fail_clearly(hand_made, tmp_path, monkeypatch):
    root, ids = hand_made
    path = resolve(f"library:{ids['a']}", root)
    assert path.is_file() and path.is_relative_to(root)
    assert resolve(ids["a"].upper(), root) == path
    monkeypatch.setenv("SKETCHSTORY_LIBRARY", str(root))
    assert resolve(f"library:{ids['a']}") == path  # the default library comes from the environment
    with pytest.raises(LibraryError, match=r"no sketch 'ffffffffffff' in the library at .*library search"):
        resolve("library:ffffffffffff", root)
    with pytest.raises(LibraryError, match=r"no sketch library at .*SKETCHSTORY_LIBRARY"):
        resolve(f"library:{ids['a']}", tmp_path / "elsewhere")
    with pytest.raises(LibraryError, match="names no sketch"):
        resolve("library:", root)
    path.unlink()
    with pytest.raises(LibraryError, match="file .* is missing"):
        resolve(f"library:{ids['a']}", root)


def test_index_versions_and_foreign_files_are_refused(tmp_path):
    with Library.writer(tmp_path / "lib"):
        pass
    db = sqlite3.connect(tmp_path / "lib" / "index.sqlite")
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(LibraryError, match="newer sketchstory"):
        Library.open(tmp_path / "lib")
    (tmp_path / "other").mkdir()
    sqlite3.connect(tmp_path / "other" / "index.sqlite").execute("CREATE TABLE x (y)").connection.commit()
    with pytest.raises(LibraryError, match="not a sketchstory library"):
        Library.open(tmp_path / "other")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "index.sqlite").write_bytes(b"garbage" * 200)
    with pytest.raises(LibraryError, match="not a readable sketch library"):
        Library.open(tmp_path / "junk")


def test_one_writer_at_a_time_readers_meanwhile(tmp_path):
    with Library.writer(tmp_path / "lib") as library:
        with library.index.db:
            library.add(drawing(1), Meta("user", "a box"))
        with pytest.raises(BusyError, match="is in use by another sketchstory process"), Library.writer(tmp_path / "lib"):
            pass
        with Library.open(tmp_path / "lib") as reader:
            assert reader.index.count() == 1
        mode = library.index.db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_export_folder_and_zip_keep_ids(hand_made, tmp_path, capsys):
    root, ids = hand_made
    assert cli("library", "export", str(tmp_path / "people"), "--library", str(root), "--category", "people",
               "--query", "wizard") == 0
    with Library.open(tmp_path / "people") as out:
        assert {e.id for e in out.index.entries()} == {ids[n] for n in "abfg"}
        assert out.index.search("wizard hat")[0].entry.id == ids["a"]
        assert len(out.index.thumbnail(ids["a"])) > 0
    assert resolve(f"library:{ids['g']}", tmp_path / "people").is_file()

    assert cli("library", "export", str(tmp_path / "two.zip"), "--library", str(root), "--ids",
               f"{ids['c']},{ids['e']}") == 0
    with zipfile.ZipFile(tmp_path / "two.zip") as archive:
        names_ = archive.namelist()
        archive.extractall(tmp_path / "unzipped")
    assert "two/index.sqlite" in names_ and not any("lock" in n for n in names_)
    assert resolve(f"library:{ids['e']}", tmp_path / "unzipped" / "two").is_file()
    assert "2 sketch(es) selected, 2 written" in capsys.readouterr().out

    # merging into an existing library adds only what it lacks
    assert cli("library", "export", str(tmp_path / "people"), "--library", str(root)) == 0
    assert "7 sketch(es) selected, 3 written" in capsys.readouterr().out
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "keep.txt").write_text("mine")
    assert cli("library", "export", str(tmp_path / "stuff"), "--library", str(root)) == 2
    assert "not empty and not a sketch library" in capsys.readouterr().err
    assert cli("library", "export", str(tmp_path / "none"), "--library", str(root), "--query", "zeppelin") == 2
    assert "error: nothing to export" in capsys.readouterr().err


def test_cli_list_search_show(hand_made, capsys):
    root, ids = hand_made
    assert cli("library", "search", "wizard", "hat", "--library", str(root)) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(ids["a"])
    assert cli("library", "list", "--library", str(root), "--group", "story") == 0
    out, err = capsys.readouterr()
    assert "The lost crown / coronation #0" in out and "1-1 of 1" in err
    assert cli("library", "list", "--library", str(root), "--summary") == 0
    assert "sundry       5  people" in capsys.readouterr().out
    assert cli("library", "show", ids["e"], "--library", str(root)) == 0
    out = capsys.readouterr().out
    assert f"library:{ids['e']}" in out and "coronation" in out and "The lost crown" in out
    assert cli("library", "show", "nope", "--library", str(root)) == 2
    assert "error: no sketch 'nope'" in capsys.readouterr().err
    assert cli("library", "list", "--library", str(root.parent / "nowhere")) == 2
    assert "no sketch library at" in capsys.readouterr().err


def test_prompts_file_validation_and_jobs(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"stories": [{"name": "x", "scenes": []}, {"name": "y", "scenes": [{"prompt": " "}]}],'
                   ' "candidates": 0}')
    with pytest.raises(LibraryError) as error:
        load_prompts(bad)
    message = str(error.value)
    assert "stories.0.scenes" in message and "stories.1.scenes.0.prompt" in message and "candidates" in message
    good = tmp_path / "good.json"
    good.write_text('{"candidates": 2, "stories": [{"name": "x", "tags": ["t"], "scenes": [{"prompt": "p", '
                    '"tags": ["t", "u"]}]}], "sundry": {"toys": ["a kite", {"prompt": "a ball", "tags": ["round"]}]}}')
    prompts = load_prompts(good)
    todo = jobs(prompts, "demo")
    assert [(j.meta.group, j.meta.candidate) for j in todo] == [("story", 0), ("story", 1), ("sundry", 0),
                                                                 ("sundry", 0)]
    assert todo[0].meta.tags == ("t", "u") and todo[3].meta.tags == ("round",)
    assert len({j.key for j in todo}) == 4 and len({j.meta.seed for j in todo}) == 4
    assert [j.key for j in jobs(prompts, "demo")] == [j.key for j in todo]  # stable: resume finds them
    assert {j.meta.seed for j in jobs(prompts, "sd15")} == {j.meta.seed for j in todo}  # seeds are per slot
    assert not {j.key for j in jobs(prompts, "sd15")} & {j.key for j in todo}  # another model: new sketches
    with pytest.raises(LibraryError, match="no prompts file"):
        load_prompts(tmp_path / "missing.json")


def test_shipped_prompts_files_are_valid():
    folder = Path(__file__).parents[1] / "examples" / "library-prompts"
    thesis = load_prompts(folder / "thesis.json")
    assert len(thesis.stories) == 50 and all(len(s.scenes) == 4 for s in thesis.stories)
    assert thesis.candidates == 80
    objects = [o for items in thesis.sundry.values() for o in items]
    assert 950 <= len(objects) <= 1100 and len(set(map(str, objects))) == len(objects)
    assert len(jobs(thesis, "sdxl")) == 50 * 4 * 80 + len(objects)
    load_prompts(folder / "sample.json")


def test_shipped_sample_library_resolves():
    root = Path(__file__).parents[1] / "examples" / "library"
    with Library.open(root) as library:
        assert library.index.count(Filters(group="story")) == 36 and library.index.count(Filters(group="sundry")) == 8
        hit = library.index.search("knight jumping")[0].entry
    assert resolve(f"library:{hit.id}", root).is_file()
