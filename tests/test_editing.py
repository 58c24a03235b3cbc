import cv2
import numpy as np
import pytest
from PIL import Image

from sketchstory.editing import (
    adjust_thickness,
    crop_and_refit,
    erase_box,
    erase_mask,
    flip,
    move_and_scale,
    paste_strokes,
)
from sketchstory.sketches import SketchError

W, H = 160, 120


def sketch() -> Image.Image:
    """An asymmetric drawing: a ring left of centre and a bar at the top right."""
    page = np.full((H, W), 255, np.uint8)
    cv2.circle(page, (50, 70), 25, 0, 3)
    cv2.rectangle(page, (110, 10), (140, 20), 0, -1)
    return Image.fromarray(page, mode="L")


def ink(image: Image.Image) -> np.ndarray:
    return np.asarray(image) < 128


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


def vertical_line(width: int) -> Image.Image:
    page = np.full((H, W), 255, np.uint8)
    page[20:100, 80 - width // 2 : 80 - width // 2 + width] = 0
    return Image.fromarray(page, mode="L")


@pytest.mark.parametrize("axis", ["horizontal", "vertical"])
def test_flip_twice_is_identity_and_once_mirrors(axis):
    original = sketch()
    once = flip(original, axis)
    assert np.array_equal(np.asarray(flip(once, axis)), np.asarray(original))
    mirrored = np.fliplr(ink(original)) if axis == "horizontal" else np.flipud(ink(original))
    assert np.array_equal(ink(once), mirrored)
    assert not np.array_equal(ink(once), ink(original))


def test_flip_refuses_unknown_axis():
    with pytest.raises(SketchError, match="'horizontal' or 'vertical'"):
        flip(sketch(), "diagonal")  # type: ignore[arg-type]


def test_move_shifts_the_drawing_by_exactly_the_offset():
    moved = move_and_scale(sketch(), dx=7, dy=-5)
    left, top, right, bottom = bbox(ink(sketch()))
    assert bbox(ink(moved)) == (left + 7, top - 5, right + 7, bottom - 5)
    assert np.array_equal(np.asarray(move_and_scale(sketch())), np.asarray(sketch()))


def test_scale_grows_the_drawing_about_its_own_centre():
    page = np.full((H, W), 255, np.uint8)
    cv2.circle(page, (50, 60), 20, 0, 2)
    bigger = ink(move_and_scale(Image.fromarray(page), scale=1.5))
    left, top, right, bottom = bbox(bigger)
    assert abs((right - left) - 1.5 * 41) <= 3 and abs((bottom - top) - 1.5 * 41) <= 3
    assert abs((left + right) / 2 - 50) <= 1.5 and abs((top + bottom) / 2 - 60) <= 1.5


def test_what_leaves_the_frame_is_cut_and_the_rest_is_white():
    moved = move_and_scale(sketch(), dx=W - 20)
    assert moved.size == (W, H)
    assert not ink(moved)[:, : W - 20].any()
    with pytest.raises(SketchError, match="scale must be from 0.0625 to 16"):
        move_and_scale(sketch(), scale=0)


def test_crop_and_refit_enlarges_the_box_to_the_frame():
    box = (20, 40, 80, 100)  # around the ring, 60x60
    refit = crop_and_refit(sketch(), box)
    assert refit.size == (W, H) and refit.mode == "L"
    left, top, right, bottom = bbox(ink(refit))
    assert bottom - top >= 2 * 50 - 6, "a 60 px box in a 120 px tall frame doubles"
    assert abs((left + right) / 2 - W / 2) <= 2, "the square crop is centred between white margins"
    assert not ink(refit)[:, :15].any() and not ink(refit)[:, -15:].any()


@pytest.mark.parametrize("box", [(10, 10, 10, 50), (0, 0, W + 1, H), (-1, 0, 20, 20), (50, 60, 40, 80)])
def test_bad_boxes_are_refused(box):
    with pytest.raises(SketchError, match="left, top, right, bottom"):
        crop_and_refit(sketch(), box)
    with pytest.raises(SketchError, match="left, top, right, bottom"):
        erase_box(sketch(), box)


def test_erase_box_clears_the_box_and_nothing_else():
    box = (100, 0, 160, 40)
    erased = np.asarray(erase_box(sketch(), box))
    assert (erased[0:40, 100:160] == 255).all()
    outside = np.ones((H, W), bool)
    outside[0:40, 100:160] = False
    assert np.array_equal(erased[outside], np.asarray(sketch())[outside])


def test_erase_mask_clears_the_mask_and_nothing_else():
    mask = np.zeros((H, W), bool)
    mask[45:95, 20:50] = True  # the left half of the ring
    erased = np.asarray(erase_mask(sketch(), mask))
    assert (erased[mask] == 255).all()
    assert np.array_equal(erased[~mask], np.asarray(sketch())[~mask])
    assert ink(Image.fromarray(erased))[:, 50:].any()
    with pytest.raises(SketchError, match="canvas of the sketch's size"):
        erase_mask(sketch(), np.zeros((W, H), bool))


@pytest.mark.parametrize("width, change, expected", [(3, 2, 7), (5, -1, 3), (7, -2, 3)])
def test_line_thickness_changes_by_the_amount_on_each_side(width, change, expected):
    result = ink(adjust_thickness(vertical_line(width), change))
    assert result[60].sum() == expected


def test_thinning_keeps_a_hairline_instead_of_deleting_the_line():
    result = ink(adjust_thickness(vertical_line(3), -4))
    assert result[30:90].any(axis=1).all(), "every row of the line keeps some ink"
    assert result[60].sum() <= 2
    assert np.array_equal(np.asarray(adjust_thickness(sketch(), 0)), np.asarray(sketch()))
    with pytest.raises(SketchError, match="whole pixels"):
        adjust_thickness(sketch(), 1.5)  # type: ignore[arg-type]


def test_pasted_dark_strokes_draw_and_light_strokes_erase():
    layer = np.zeros((H, W, 4), np.uint8)
    cv2.line(layer, (10, 110), (150, 110), (30, 30, 200, 255), 2)  # a dark blue pen stroke
    cv2.rectangle(layer, (105, 5), (145, 25), (255, 255, 255, 255), -1)  # white eraser over the bar
    layer[50:52, 0:5] = (0, 0, 0, 128)  # a half-transparent brush edge
    result = np.asarray(paste_strokes(sketch(), Image.fromarray(layer, mode="RGBA")))
    assert (result[109:112, 12:148] == 0).all()
    assert (result[5:26, 105:146] == 255).all()
    assert 120 <= result[50, 2] <= 135
    untouched = layer[:, :, 3] == 0
    assert np.array_equal(result[untouched], np.asarray(sketch())[untouched])


def test_stroke_layer_must_match_and_be_transparent():
    with pytest.raises(SketchError, match="canvas of the sketch's size"):
        paste_strokes(sketch(), Image.new("RGBA", (W // 2, H // 2)))
    with pytest.raises(SketchError, match="RGBA"):
        paste_strokes(sketch(), Image.new("RGB", (W, H), "white"))


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: flip(s, "horizontal"),
        lambda s: move_and_scale(s, dx=3, scale=0.7),
        lambda s: crop_and_refit(s, (0, 0, 100, 40)),
        lambda s: erase_box(s, (0, 0, 10, 10)),
        lambda s: adjust_thickness(s, 1),
        lambda s: adjust_thickness(s, -1),
        lambda s: paste_strokes(s, Image.new("RGBA", (W, H))),
    ],
    ids=["flip", "move_and_scale", "crop_and_refit", "erase_box", "thicker", "thinner", "paste_strokes"],
)
def test_every_edit_returns_a_new_l_image_of_the_same_size(edit):
    original = sketch().convert("RGB")
    before = np.asarray(original).copy()
    result = edit(original)
    assert result.mode == "L" and result.size == (W, H) and result is not original
    assert np.array_equal(np.asarray(original), before), "the input is left untouched"
