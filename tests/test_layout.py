import numpy as np
import pytest
from PIL import Image

from sketchstory.layout import PAGE_PANELS, PAGE_PIXELS, compose_page, default_columns, paginate

COLOURS = [(220, 30, 30), (30, 160, 30), (30, 30, 220), (230, 150, 0), (150, 0, 150), (0, 150, 150)]
GUTTER, BORDER = 16, 2


def panels(count: int, size: tuple[int, int] = (100, 80)) -> list[Image.Image]:
    return [Image.new("RGB", size, COLOURS[i % len(COLOURS)]) for i in range(count)]


def where(page: Image.Image, colour: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom) of the pixels of ``colour``."""
    rows, cols = np.nonzero((np.asarray(page) == colour).all(axis=2))
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


def dark(region: np.ndarray) -> bool:
    return bool((region.max(axis=2) < 100).any())


@pytest.mark.parametrize(
    "count, expected", [(1, 1), (2, 2), (3, 3), (4, 4), (5, 3), (6, 3), (7, 4), (8, 4), (9, 3), (10, 4), (12, 4)]
)
def test_default_columns_fill_rows_evenly_with_at_most_four(count: int, expected: int):
    assert default_columns(count) == expected


def test_a_strip_has_the_size_the_gutters_borders_and_panels_add_up_to():
    page = compose_page(panels(3), [None, None, None])
    cell = 100 + 2 * BORDER
    assert page.mode == "RGB"
    assert page.size == (2 * GUTTER + 3 * cell + 2 * GUTTER, 2 * GUTTER + 80 + 2 * BORDER)


def test_panels_appear_in_story_order_row_by_row():
    page = compose_page(panels(5), [None] * 5)  # 3 + 2
    boxes = [where(page, colour) for colour in COLOURS[:5]]
    assert boxes[0][0] < boxes[1][0] < boxes[2][0]
    assert boxes[0][1] == boxes[1][1] == boxes[2][1] < boxes[3][1] == boxes[4][1]
    assert boxes[3][0] == boxes[0][0] and boxes[4][0] == boxes[1][0]
    assert all(right - left == 99 and bottom - top == 79 for left, top, right, bottom in boxes)


def test_panels_have_black_borders():
    page = np.asarray(compose_page(panels(1), [None]))
    left, top = GUTTER + BORDER, GUTTER + BORDER
    assert (page[top - BORDER : top, left : left + 100] == 0).all()
    assert (page[top : top + 80, left - BORDER : left] == 0).all()
    assert (page[top - BORDER - 1, left] == 255).all()


def test_captions_are_drawn_under_their_own_panel_only():
    page = compose_page(panels(3), ["The robot wakes up", None, "It walks away"])
    array = np.asarray(page)
    below = where(page, COLOURS[0])[3] + BORDER + 1
    assert page.height > 2 * GUTTER + 84, "captions add height"
    for index, captioned in enumerate([True, False, True]):
        left, _, right, _ = where(page, COLOURS[index])
        assert dark(array[below:, left : right + 1]) == captioned


def test_long_captions_wrap_inside_their_column():
    short = compose_page(panels(2), ["A cat.", None])
    long_text = "A cat, who has always wanted to see the sea, packs a small bag and leaves at dawn " * 2
    wrapped = compose_page(panels(2), [long_text, None])
    assert wrapped.width == short.width and wrapped.height > short.height + 60
    array = np.asarray(wrapped)
    first_right = where(wrapped, COLOURS[0])[2] + BORDER
    second_left = where(wrapped, COLOURS[1])[0] - BORDER
    assert not dark(array[:, first_right + 1 : second_left]), "no text in the gutter between columns"
    assert not dark(array[:, :GUTTER]) and not dark(array[:, -GUTTER:]), "no text in the margins"
    one_word = compose_page(panels(1), ["Supercalifragilisticexpialidocious" * 3])
    assert one_word.width == compose_page(panels(1), [None]).width


def test_title_goes_above_the_panels():
    plain = compose_page(panels(2), [None, None])
    titled = compose_page(panels(2), [None, None], title="The Long Walk")
    top = where(titled, COLOURS[0])[1]
    assert titled.height > plain.height and top > where(plain, COLOURS[0])[1]
    assert dark(np.asarray(titled)[GUTTER : top - BORDER])


def test_panels_of_different_sizes_are_kept_and_centred_in_equal_columns():
    images = [Image.new("RGB", (200, 150), COLOURS[0]), Image.new("RGB", (100, 50), COLOURS[1])]
    page = compose_page(images, [None, None])
    big, small = where(page, COLOURS[0]), where(page, COLOURS[1])
    assert (small[2] - small[0] + 1, small[3] - small[1] + 1) == (100, 50), "panels are not rescaled"
    cell = 200 + 2 * BORDER
    assert page.width == 3 * GUTTER + 2 * cell
    assert (small[0] + small[2]) / 2 == pytest.approx(GUTTER + cell + GUTTER + cell / 2 - 0.5, abs=1)
    assert (small[1] + small[3]) / 2 == pytest.approx((big[1] + big[3]) / 2, abs=1)


def test_transparent_panels_sit_on_white():
    panel = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    page = np.asarray(compose_page([panel], [None]))
    inside = page[GUTTER + BORDER : GUTTER + BORDER + 50, GUTTER + BORDER : GUTTER + BORDER + 50]
    assert (inside == 255).all()


def test_more_columns_than_panels_gives_one_row():
    assert compose_page(panels(2), [None, None], columns=6).size == compose_page(panels(2), [None, None]).size
    assert compose_page(panels(4), [None] * 4, columns=1).width == 2 * GUTTER + 104


@pytest.mark.parametrize(
    "images, captions, options, message",
    [
        ([], [], {}, "no panels"),
        (panels(2), [None], {}, "one caption per panel"),
        (panels(2), [None, None], {"columns": 0}, "at least 1"),
        (panels(2), [None, None], {"gutter": -1}, ">= 0"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(images, captions, options, message):
    with pytest.raises(ValueError, match=message):
        compose_page(images, captions, **options)


def test_small_panels_are_enlarged_by_whole_factors_for_readable_captions():
    small = panels(2, (64, 48))
    page = compose_page(small, ["a caption long enough to wrap", None], min_side=256)
    assert page.width == compose_page(panels(2, (256, 192)), [None, None]).width
    assert compose_page(small, [None, None]).width < page.width


@pytest.mark.parametrize("count, lengths", [(1, [1]), (12, [12]), (13, [7, 6]), (30, [10, 10, 10]), (100, [12] * 8 + [4])])
def test_a_long_story_is_split_into_pages_of_at_most_twelve_in_story_order(count: int, lengths: list[int]):
    pages = paginate([(512, 512)] * count)
    assert [len(p) for p in pages] == lengths and [i for p in pages for i in p] == list(range(count))
    assert max(lengths) <= PAGE_PANELS


@pytest.mark.parametrize("side, per_page", [(1024, 12), (2048, 8), (4096, 2), (8192, 1)])
def test_large_panels_get_fewer_a_page_so_no_page_nears_the_decompression_bomb_limit(side: int, per_page: int):
    assert max(len(p) for p in paginate([(side, side)] * 24)) == per_page
    assert PAGE_PIXELS < Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize("side, max_pixels", [(64, 2**20), (256, 2**20), (300, 500_000), (512, 2 * 2**20)])
def test_every_composed_page_stays_under_the_pixel_limit(side: int, max_pixels: int):
    images = panels(30, (side, side))
    pages = paginate([im.size for im in images], min_side=256, max_pixels=max_pixels)
    assert len(pages) > 1
    for page in pages:
        composed = compose_page([images[i] for i in page], ["a caption long enough to wrap twice here"] * len(page),
                                title="A story (2/3)", min_side=256)
        assert composed.width * composed.height <= max_pixels
