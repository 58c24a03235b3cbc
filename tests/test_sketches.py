import io
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from sketchstory import sketches
from sketchstory.sketches import (
    SketchError,
    canny_condition,
    load_image,
    normalize_sketch,
    sketch_foreground_mask,
    to_standard_mode,
)

W, H = 200, 150


def drawing(width: int = W, height: int = H) -> np.ndarray:
    """Dark strokes (255 = paper, 0 = ink) of several thicknesses, as a uint8 array."""
    page = np.full((height, width), 255, np.uint8)
    cv2.circle(page, (width // 2, height // 2), min(width, height) // 3, 0, 3)
    cv2.line(page, (width // 10, height * 9 // 10), (width * 9 // 10, height // 10), 0, 2)
    cv2.rectangle(page, (width // 5, height // 5), (width // 3, height // 3), 0, 1)
    return page


def ink(image: Image.Image) -> np.ndarray:
    return np.asarray(image) < 128


def assert_same_lines(result: Image.Image, truth: np.ndarray) -> None:
    found = ink(result)
    hits = (found & truth).sum()
    assert hits / truth.sum() > 0.97, "lines were lost"
    assert hits / found.sum() > 0.97, "marks that are not lines were kept"


def test_clean_drawing_passes_through():
    page = drawing()
    result = normalize_sketch(Image.fromarray(page), (W, H))
    assert result.mode == "L" and result.size == (W, H)
    assert set(np.unique(result)) <= {0, 255}
    assert_same_lines(result, page < 128)


def test_white_chalk_on_black_is_inverted():
    page = drawing()
    assert_same_lines(normalize_sketch(Image.fromarray(255 - page), (W, H)), page < 128)


def test_coloured_chalk_on_dark_board():
    page = drawing()
    board = np.zeros((H, W, 3), np.uint8)
    board[:] = (20, 40, 30)
    board[page < 128] = (250, 60, 60)
    assert_same_lines(normalize_sketch(Image.fromarray(board), (W, H)), page < 128)


def test_light_coloured_strokes_on_white():
    page = drawing()
    rgb = np.full((H, W, 3), 255, np.uint8)
    rgb[page < 128] = (255, 220, 0)  # yellow: luma 0.87, nearly paper by brightness alone
    assert_same_lines(normalize_sketch(Image.fromarray(rgb), (W, H)), page < 128)


@pytest.mark.parametrize("stroke", [0, 255], ids=["black strokes", "white strokes"])
def test_transparent_png(tmp_path: Path, stroke: int):
    page = drawing()
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = stroke
    rgba[..., 3] = 255 - page
    path = tmp_path / "layer.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    assert_same_lines(normalize_sketch(load_image(path), (W, H)), page < 128)


def test_grey_paper_scan_with_uneven_light_noise_and_dust():
    rng = np.random.default_rng(0)
    page = drawing()
    light = np.linspace(0.5, 0.85, W)[None, :] * np.linspace(0.9, 1.0, H)[:, None]
    scan = light * 255 * np.where(page < 128, 0.35, 1.0) + rng.normal(0, 8, (H, W))
    scan = scan.clip(0, 255).astype(np.uint8)
    dust = rng.integers(0, [H, W], size=(40, 2))
    scan[dust[:, 0], dust[:, 1]] = 10
    result = normalize_sketch(Image.fromarray(scan), (W, H))
    assert_same_lines(result, page < 128)
    paper = np.asarray(result)[cv2.dilate((page < 128).astype(np.uint8), np.ones((5, 5))) == 0]
    assert (paper == 255).all(), "grey paper and dust must become plain white"


@pytest.mark.parametrize("shape", [(80, 400), (400, 80)], ids=["wide", "tall"])
def test_fits_and_pads_without_distortion(shape: tuple[int, int]):
    height, width = shape
    page = np.full(shape, 255, np.uint8)
    cv2.circle(page, (width // 2, height // 2), 30, 0, 4)
    result = np.asarray(normalize_sketch(Image.fromarray(page), (128, 128)))
    assert result.shape == (128, 128)
    rows, cols = np.nonzero(result < 128)
    assert abs(np.ptp(rows) - np.ptp(cols)) <= 2, "a circle must stay a circle"
    assert abs((rows.min() + rows.max()) / 2 - 63.5) <= 1.5 and abs((cols.min() + cols.max()) / 2 - 63.5) <= 1.5
    band = 128 * min(shape) // max(shape)  # the picture's short side after fitting
    pad = (128 - band) // 2
    bands = result[:pad] if width > height else result[:, :pad]
    assert (bands == 255).all() and bands.size > 0


def test_hairlines_stay_dark_when_the_picture_is_shrunk():
    page = np.full((512, 512), 255, np.uint8)
    cv2.line(page, (40, 100), (470, 420), 0, 1)
    sketch = np.asarray(normalize_sketch(Image.fromarray(page), (128, 128)))
    columns = np.arange(12, 116)
    ink_per_column = (255 - sketch[:, columns].astype(int)).sum(axis=0) / 255
    assert (ink_per_column >= 0.9).all(), "about one pixel's worth of ink all along the line"
    assert (sketch[:, columns].min(axis=0) <= 128).all()
    edges = np.asarray(canny_condition(Image.fromarray(sketch)))[..., 0] > 0
    assert edges[:, columns].any(axis=0).all(), "Canny sees the line all along"


@pytest.mark.parametrize(
    "picture",
    [
        np.full((H, W), 255, np.uint8),
        np.zeros((H, W), np.uint8),
        np.full((H, W), 128, np.uint8),
        np.random.default_rng(1).normal(128, 20, (H, W)).clip(0, 255).astype(np.uint8),
    ],
    ids=["white", "black", "grey", "noise"],
)
def test_blank_pictures_are_rejected(picture: np.ndarray):
    with pytest.raises(SketchError, match="no lines"):
        normalize_sketch(Image.fromarray(picture), (64, 64))


@pytest.mark.parametrize("size", [(0, 64), (64, -1), (64.0, 64), (64,)])
def test_bad_size_is_rejected(size):
    with pytest.raises(SketchError, match="width, height"):
        normalize_sketch(Image.fromarray(drawing()), size)


def test_missing_and_corrupt_files(tmp_path: Path):
    with pytest.raises(SketchError, match="check the path"):
        load_image(tmp_path / "absent.png")
    (tmp_path / "notes.png").write_bytes(b"this is not a picture")
    with pytest.raises(SketchError, match="corrupt"):
        load_image(tmp_path / "notes.png")
    Image.fromarray(drawing()).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(SketchError, match="corrupt"):
        load_image(tmp_path / "cut.png")


def test_oversized_images_are_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    Image.fromarray(drawing()).save(tmp_path / "big.png")
    monkeypatch.setattr(sketches, "MAX_PIXELS", W * H - 1)
    with pytest.raises(SketchError, match="scale it down"):
        load_image(tmp_path / "big.png")
    monkeypatch.setattr(sketches, "MAX_PIXELS", 10**9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL's own decompression-bomb guard
    with pytest.raises(SketchError, match="too large"):
        load_image(tmp_path / "big.png")


def test_sixteen_bit_png_keeps_its_tones(tmp_path: Path):
    deep = np.full((20, 30), 65535, np.uint16)
    deep[5:8] = 0
    deep[10:12] = 32896  # mid-grey in 16 bits
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    image = np.asarray(load_image(tmp_path / "deep.png"))
    assert image.dtype == np.uint8
    assert image[0, 0] == 255 and image[6, 0] == 0 and image[11, 0] == 128


def test_cmyk_palette_and_animated_files(tmp_path: Path):
    Image.new("CMYK", (16, 16), (0, 0, 0, 255)).save(tmp_path / "print.jpg")
    cmyk = load_image(tmp_path / "print.jpg")
    assert cmyk.mode == "RGB" and np.asarray(cmyk).max() < 20

    palette = Image.new("P", (16, 16), 0)
    palette.putpalette([255, 255, 255, 0, 0, 0])
    palette.info["transparency"] = 0
    palette.save(tmp_path / "palette.png")
    assert load_image(tmp_path / "palette.png").mode == "RGBA"

    frames = [Image.new("L", (16, 16), value) for value in (10, 200)]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:])
    first = load_image(tmp_path / "moving.gif")
    assert np.asarray(first.convert("L"))[0, 0] == 10


def test_phone_photo_rotation_is_applied(tmp_path: Path):
    photo = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    photo.save(tmp_path / "photo.jpg", exif=exif)
    assert load_image(tmp_path / "photo.jpg").size == (20, 40)


@pytest.mark.parametrize("mode", ["1", "LA", "La", "PA", "RGBa", "I", "I;16B", "F", "YCbCr", "HSV", "LAB"])
def test_every_mode_becomes_l_rgb_or_rgba(mode: str):
    assert to_standard_mode(Image.new(mode, (4, 4))).mode in {"L", "RGB", "RGBA"}


def test_canny_condition_is_white_edges_on_black_rgb():
    sketch = Image.fromarray(drawing())
    condition = canny_condition(sketch)
    array = np.asarray(condition)
    assert condition.mode == "RGB" and array.shape == (H, W, 3)
    assert set(np.unique(array)) == {0, 255}
    assert (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all()
    near_lines = cv2.dilate((drawing() < 128).astype(np.uint8), np.ones((3, 3))) > 0
    edges = array[..., 0] == 255
    assert edges[near_lines].any() and not edges[~near_lines].any()
    assert not np.asarray(canny_condition(Image.new("L", (W, H), 255))).any()


@pytest.mark.parametrize("low, high", [(200, 100), (100, 100), (-1, 100), (100, 256)])
def test_canny_thresholds_are_validated(low: int, high: int):
    with pytest.raises(SketchError, match="0 <= low < high <= 255"):
        canny_condition(Image.fromarray(drawing()), low, high)


def test_foreground_mask_fills_a_closed_outline_and_ignores_stray_marks():
    page = np.full((256, 256), 255, np.uint8)
    cv2.circle(page, (100, 128), 60, 0, 2)
    cv2.circle(page, (240, 20), 2, 0, -1)  # a stray dot far from the subject
    mask = sketch_foreground_mask(Image.fromarray(page), (256, 256))
    assert mask.dtype == bool and mask.shape == (256, 256)
    assert mask[128, 100] and mask[128, 45], "the inside and outline of the shape belong to it"
    assert not mask[20, 240] and not mask[128, 200] and not mask[10, 10]


def test_foreground_mask_covers_an_open_stick_figure():
    page = np.full((256, 256), 255, np.uint8)
    for end in [(60, 200), (190, 200), (60, 90), (190, 90)]:
        cv2.line(page, (128, 128), end, 0, 2)
    mask = sketch_foreground_mask(Image.fromarray(page), (256, 256))
    assert mask[180, 128] and mask[110, 128], "the space between the limbs is the figure"
    assert not mask[20, 20] and not mask[240, 240]


def test_foreground_mask_at_token_grid_size():
    page = np.full((512, 512), 255, np.uint8)
    cv2.line(page, (300, 100), (300, 400), 0, 2)  # thinner than one cell of an 8x8 grid
    mask = sketch_foreground_mask(Image.fromarray(page), (8, 4))
    assert mask.shape == (4, 8)
    assert mask[:, 4].any() and not mask[:, :3].any()
    with pytest.raises(SketchError, match="no lines"):
        sketch_foreground_mask(Image.new("L", (64, 64), 255), (8, 8))


def _pictures() -> st.SearchStrategy[Image.Image]:
    @st.composite
    def build(draw: st.DrawFn) -> Image.Image:
        width, height = draw(st.integers(1, 120)), draw(st.integers(1, 120))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        if draw(st.sampled_from(["noise", "strokes", "strokes"])) == "noise":
            pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
        else:
            pixels = np.full((height, width, 4), rng.integers(0, 256), np.uint8)
            for _ in range(draw(st.integers(0, 5))):
                start, end = rng.integers(0, [width, height], size=(2, 2))
                colour = tuple(int(c) for c in rng.integers(0, 256, 4))
                cv2.line(pixels, tuple(map(int, start)), tuple(map(int, end)), colour, int(rng.integers(1, 4)))
        mode = draw(st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "CMYK", "F", "I", "I;16B", "PA",
                                     "La", "RGBa", "RGBX", "YCbCr", "HSV", "LAB"]))
        image = Image.fromarray(pixels, mode="RGBA")
        if mode == "I;16":
            return Image.fromarray(pixels[..., 0].astype(np.uint16) * 257)
        return image.convert(mode)

    return build()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picture=_pictures(), width=st.integers(1, 96), height=st.integers(1, 96))
def test_any_picture_gives_a_sketch_of_the_exact_size_or_a_sketch_error(picture: Image.Image, width: int, height: int):
    try:
        sketch = normalize_sketch(picture, (width, height))
    except SketchError:
        return
    assert sketch.mode == "L" and sketch.size == (width, height)


def _damaged_files() -> st.SearchStrategy[tuple[str, bytes]]:
    """A small picture in a common format with bytes changed, cut out or inserted."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[str, bytes]:
        suffix, fmt = draw(st.sampled_from([(".png", "PNG"), (".jpg", "JPEG"), (".gif", "GIF"), (".bmp", "BMP"),
                                            (".tiff", "TIFF"), (".webp", "WEBP")]))
        buffer = io.BytesIO()
        Image.fromarray(drawing(40, 30)).save(buffer, format=fmt)
        data = bytearray(buffer.getvalue())
        for _ in range(draw(st.integers(1, 6))):
            at = draw(st.integers(0, len(data) - 1))
            kind = draw(st.sampled_from(["set", "cut", "insert"]))
            if kind == "set":
                data[at] = draw(st.integers(0, 255))
            elif kind == "cut":
                del data[at : at + draw(st.integers(1, 64))]
            else:
                data[at:at] = draw(st.binary(min_size=1, max_size=16))
            if not data:
                break
        return suffix, bytes(data)

    return build()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damaged=_damaged_files())
def test_any_damaged_file_gives_an_image_or_a_sketch_error(damaged: tuple[str, bytes], tmp_path: Path):
    suffix, data = damaged
    (tmp_path / f"damaged{suffix}").write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about the damage it reads past
            image = load_image(tmp_path / f"damaged{suffix}")
    except SketchError:
        return
    assert image.mode in {"L", "RGB", "RGBA"}
