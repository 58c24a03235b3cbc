"""``sketchstory story import``: ViStoryBench and ConsiStory+ fixtures, written here in their formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchstory.cli import main
from sketchstory.story import load_story, parse_story
from sketchstory.ui.state import set_meta


def bilingual(en: str, ch: str = "") -> dict:
    return {"en": en, "ch": ch or f"中文 {en}"}


def shot(index: int, what: str, who: list[str]) -> dict:
    return {
        "index": index,
        "Setting Description": bilingual(f"setting {index}"),
        "Plot Correspondence": bilingual(f"plot {index}"),
        "Static Shot Description": bilingual(what),
        "Shot Perspective Design": bilingual("medium shot"),
        "Characters Appearing": {"en": who, "ch": [f"中文 {w}" for w in who]},
    }


def vistorybench_story(folder: Path) -> Path:
    """Story ``07``: Lily with two reference pictures, a fox with none, three shots out of order."""
    folder.mkdir(parents=True)
    doc = {
        "Story_type": bilingual("Children's Picture Books"),
        "Shots": [shot(2, "Lily waves at the fox", ["Lily", "Fox"]), shot(1, "Lily walks alone", ["Lily"]),
                  shot(3, "the fox meets a stranger", ["Fox", "Stranger"])],
        "Characters": {
            "Lily": {"name_en": "Lily", "name_ch": "莉莉", "prompt_en": "a girl with a red scarf",
                     "prompt_ch": "红围巾女孩", "tag": "realistic_human", "num_of_appearances": 2},
            "Fox": {"name_en": "Fox", "name_ch": "狐狸", "prompt_en": "an orange fox", "prompt_ch": "橙色狐狸",
                    "tag": "non_human", "num_of_appearances": 2},
        },
    }
    (folder / "story.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (folder / "image" / "Lily").mkdir(parents=True)
    for i, name in enumerate(["01.png", "00.jpg"]):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / "image" / "Lily" / name)
    return folder / "story.json"


CONSISTORY = """\
animals:
  - concept_token: phoenix
    subject: a phoenix with bright orange feathers
    style: A fiery and majestic illustration of
    settings:
      - rising from fiery ashes
      - soaring through a glowing sky
multi_characters:
  - concept_token: [man, woman]
    subject: [a tall man, a woman in a green coat]
    style: A watercolor painting of
    settings:
      - walking in the park
"""


def test_vistorybench_story_becomes_a_story_folder(tmp_path: Path, capsys) -> None:
    source = vistorybench_story(tmp_path / "data" / "07")
    out = tmp_path / "story"
    assert main(["story", "import", str(source), "--format", "vistorybench", "-o", str(out)]) == 0
    story = load_story(out / "story.json")  # the reference pictures are there, inside the folder
    assert story.title == "ViStoryBench 07 (Children's Picture Books)"
    assert [p.prompt for p in story.panels] == [
        "Lily walks alone; setting 1; medium shot", "Lily waves at the fox; setting 2; medium shot",
        "the fox meets a stranger; setting 3; medium shot"]
    assert [p.caption for p in story.panels] == ["plot 1", "plot 2", "plot 3"]
    assert [p.names for p in story.panels] == [("Lily",), ("Lily", "Fox"), ("Fox",)]
    assert all(p.sketch is None for p in story.panels)
    lily, fox = story.characters
    assert (lily.description, lily.reference) == ("a girl with a red scarf", "refs/Lily/00.jpg")
    assert fox.reference is None
    assert (out / "refs" / "Lily" / "01.png").read_bytes() == (source.parent / "image/Lily/01.png").read_bytes()
    assert story.full_prompt(1) == "Lily waves at the fox; setting 2; medium shot, a girl with a red scarf, an orange fox"
    printed = capsys.readouterr().out
    assert "3 panels, 2 characters (1 with a reference picture)" in printed and "Stranger" in printed
    assert main(["check", str(out / "story.json")]) == 0


def test_vistorybench_in_chinese_and_as_a_dataset(tmp_path: Path) -> None:
    vistorybench_story(tmp_path / "data" / "07")
    vistorybench_story(tmp_path / "data" / "12")
    out = tmp_path / "stories"
    assert main(["story", "import", str(tmp_path / "data"), "--format", "vistorybench", "--lang", "ch",
                 "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["07", "12"]
    story = load_story(out / "12" / "story.json")
    assert [c.name for c in story.characters] == ["莉莉", "狐狸"]
    assert story.panels[1].names == ("莉莉", "狐狸")  # matched by the English key, named in Chinese


def test_consistory_file_becomes_a_folder_of_stories(tmp_path: Path) -> None:
    source = tmp_path / "consistory_plus.yaml"
    source.write_text(CONSISTORY)
    out = tmp_path / "stories"
    assert main(["story", "import", str(source), "--format", "consistory", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["animals_0", "multi_characters_0"]
    phoenix = load_story(out / "animals_0" / "story.json")
    assert [p.prompt for p in phoenix.panels] == [
        "A fiery and majestic illustration of a phoenix with bright orange feathers rising from fiery ashes",
        "A fiery and majestic illustration of a phoenix with bright orange feathers soaring through a glowing sky"]
    assert phoenix.full_prompt(0) == phoenix.panels[0].prompt  # the benchmark's prompt, nothing added
    pair = load_story(out / "multi_characters_0" / "story.json")
    assert [c.name for c in pair.characters] == ["man", "woman"] and pair.panels[0].names == ("man", "woman")
    assert pair.panels[0].prompt == "A watercolor painting of a tall man and a woman in a green coat walking in the park"


def test_bad_benchmark_files_are_refused_with_where_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    source = vistorybench_story(tmp_path / "data" / "07")
    doc = json.loads(source.read_text())
    del doc["Shots"][1]["Static Shot Description"]
    doc["Shots"][1]["Setting Description"] = "not bilingual"
    source.write_text(json.dumps(doc))
    out = tmp_path / "story"
    assert main(["story", "import", str(source), "--format", "vistorybench", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Shots[0] (index 1).Static Shot Description" in err and "Shots[0] (index 1).Setting Description" in err
    assert not out.exists() and not list(tmp_path.glob(".story.*"))

    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("animals:\n  - concept_token: [a, b]\n    subject: one\n    settings: []\n")
    assert main(["story", "import", str(yaml_file), "--format", "consistory", "-o", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "animals[0]: concept_token and subject" in err and "animals[0].settings" in err

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("")
    yaml_file.write_text(CONSISTORY)
    assert main(["story", "import", str(yaml_file), "--format", "consistory", "-o", str(tmp_path / "busy")]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_a_reference_must_stay_in_the_story_folder_and_survives_ui_edits(tmp_path: Path) -> None:
    doc = {"characters": [{"name": "fox", "reference": "../fox.png"}], "panels": [{"prompt": "a fox"}]}
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "story.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"characters\[0\].reference: path '../fox.png' leaves the story's folder"):
        load_story(tmp_path / "s" / "story.json")
    story = parse_story(doc)
    edited = set_meta(story, "t", "", "", "fox: an orange fox\nowl: a white owl")
    assert [(c.name, c.description, c.reference) for c in edited.characters] == [
        ("fox", "an orange fox", "../fox.png"), ("owl", "a white owl", None)]


def test_the_web_ui_copies_reference_pictures_into_its_work_folder(tmp_path: Path) -> None:
    from sketchstory.ui.workspace import Workspace

    source = vistorybench_story(tmp_path / "data" / "07")
    assert main(["story", "import", str(source), "--format", "vistorybench", "-o", str(tmp_path / "s")]) == 0
    (tmp_path / "s" / "refs" / "Lily" / "00.jpg").rename(tmp_path / "s" / "gone.jpg")
    doc = json.loads((tmp_path / "s" / "story.json").read_text())
    doc["characters"][1]["reference"] = "refs/Lily/01.png"
    (tmp_path / "s" / "story.json").write_text(json.dumps(doc))  # Lily's reference is gone, the fox has one
    ws = Workspace(tmp_path / "work")
    story, notes = ws.import_story(tmp_path / "s" / "story.json")
    lily, fox = story.characters
    assert lily.reference is None and any("Lily" in n and "refs/Lily/00.jpg" in n for n in notes)
    assert (ws.root / fox.reference).read_bytes() == (tmp_path / "s" / "refs" / "Lily" / "01.png").read_bytes()
