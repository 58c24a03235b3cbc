"""Characters and where they stand, edited from the command line (``sketchstory story character/place ...``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from sketchstory.cli import main
from sketchstory.story import load_story


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "story" / "story.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"characters": [{"name": "wizard", "description": "a young wizard"}],
                                "panels": [{"prompt": "the wizard and the fox"}, {"prompt": "the wizard alone"}]}))
    return path


def picture(path: Path, value: int = 255) -> Path:
    Image.new("L", (16, 16), value).save(path)
    return path


def story_cmd(*args: object) -> int:
    return main(["story", *map(str, args)])


def test_characters_references_boxes_masks_and_settings_are_set_from_the_command_line(story: Path, tmp_path: Path,
                                                                                       capsys) -> None:
    assert story_cmd("character", story, "fox", "--description", "a red fox", "--reference",
                     picture(tmp_path / "fox.png")) == 0
    assert story_cmd("place", story, 0, "fox", "--box", "0.5,0.1,1,0.9") == 0
    assert story_cmd("place", story, 1, "wizard", "--mask", picture(tmp_path / "m.png")) == 0
    assert story_cmd("setting", story, 0, "forest") == 0
    s = load_story(story)  # every file it names is inside the folder
    assert (s.characters[1].name, s.characters[1].reference) == ("fox", "refs/fox.png")
    # Placing the fox kept the wizard, whom the prompt names, in the panel (on the sketch's subject).
    assert [(c.name, c.box) for c in s.placements(0)] == [("wizard", None), ("fox", (0.5, 0.1, 1.0, 0.9))]
    assert s.placements(1)[0].mask == "masks/wizard_panel01.png" and s.panels[0].setting == "forest"
    assert json.loads(story.read_text())["version"] == 2
    assert "fox: box 0.5,0.1,1,0.9  (setting: forest)" in capsys.readouterr().out
    assert story_cmd("unplace", story, 0, "fox") == 0 and story_cmd("setting", story, 0) == 0
    assert story_cmd("remove-character", story, "wizard") == 0
    s = load_story(story)
    assert [c.name for c in s.characters] == ["fox"] and s.panels[1].names == ()
    assert s.panels[0].names == () and s.panels[0].setting is None


def test_bad_placements_say_what_to_do_and_leave_the_file_alone(story: Path, tmp_path: Path, capsys) -> None:
    before = story.read_text()
    assert story_cmd("place", story, 0, "knight") == 2
    assert "no such character (known: wizard); add it with `sketchstory story character" in capsys.readouterr().err
    assert story_cmd("place", story, 0, "wizard", "--box", "10,20,300,400") == 2
    assert "panels[0].characters[0].box: box [10.0, 20.0, 300.0, 400.0] is not inside the panel" in capsys.readouterr().err
    assert story_cmd("place", story, 5, "wizard") == 2
    assert story_cmd("character", story, "fox", "--reference", tmp_path / "missing.png") == 2
    assert story.read_text() == before


def test_the_web_ui_copies_region_masks_into_its_work_folder(story: Path, tmp_path: Path) -> None:
    from sketchstory.ui.workspace import Workspace

    assert story_cmd("place", story, 0, "wizard", "--mask", picture(tmp_path / "m.png")) == 0
    ws = Workspace(tmp_path / "work")
    imported, notes = ws.import_story(story)
    mask = imported.panels[0].characters[0].mask
    assert notes == [] and mask != "masks/wizard_panel00.png"
    assert (ws.root / mask).read_bytes() == (story.parent / "masks/wizard_panel00.png").read_bytes()


def test_check_warns_where_characters_without_boxes_share_a_panel(story: Path, capsys) -> None:
    assert story_cmd("character", story, "fox", "--description", "a red fox") == 0
    assert story_cmd("setting", story, 1, "forest") == 0  # version 2: routed; panel 0 has both, unplaced
    capsys.readouterr()
    assert main(["check", str(story)]) == 0
    assert "panels[0]: wizard, fox have no box or mask" in capsys.readouterr().err
    assert story_cmd("place", story, 0, "fox", "--box", "0.5,0.2,0.95,0.95") == 0
    capsys.readouterr()
    assert main(["check", str(story)]) == 0
    assert "no box or mask" not in capsys.readouterr().err
