"""Any user picture -> a clean sketch (black lines on white, mode "L") and ControlNet's Canny input.

Users upload phone photos of pencil drawings on grey paper, chalk on a blackboard, transparent
PNGs from drawing apps and generated pictures. Stage 2 needs one thing from all of them: dark
lines on a white page at the panel's size, from which the Canny condition is taken.
"""

from __future__ import annotations

import math
import numbers
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Larger than any scan a panel needs (about 6300 x 6300), small enough to decode in memory.
MAX_PIXELS = 40_000_000

# ITU-R 601 luma, the weights PIL uses for convert("L").
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# Working side for the paper/polarity analysis: enough to see strokes, cheap on huge scans.
_ANALYSIS_SIDE = 512


class SketchError(ValueError):
    """A picture cannot be used as a sketch; the message says why and what to do instead."""


def load_image(path: Path) -> Image.Image:
    """Read any picture Pillow can decode as a loaded "L", "RGB" or "RGBA" image.

    Animated files give their first frame; EXIF rotation from phone cameras is applied;
    palette, CMYK, 1-bit, 16-bit and float images are converted.
    """
    path = Path(path)
    if not path.is_file():
        raise SketchError(f"no image file at {path}: check the path, or pass a PNG or JPEG file")
    try:
        with warnings.catch_warnings():
            # Our own MAX_PIXELS check below gives the user a better message than PIL's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                _check_pixel_count(opened.size, path)
                opened.seek(0)
                opened.load()
                image = ImageOps.exif_transpose(opened)
        return to_standard_mode(image)
    except Image.DecompressionBombError as error:
        raise SketchError(f"{path} is too large to decode safely ({error}); scale it down first") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        if isinstance(error, SketchError):
            raise
        if isinstance(error, OSError) and error.errno is not None:  # the file system's answer, not the decoder's
            raise SketchError(f"cannot read {path}: {error.strerror}; make the file readable (permissions, disk)"
                              ) from error
        raise SketchError(
            f"cannot read {path} as an image ({error}); the file is corrupt or not a picture: "
            "re-export it as PNG or JPEG"
        ) from error


def to_standard_mode(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to "L", "RGB" or "RGBA", keeping transparency where there is any."""
    mode = image.mode
    if mode in ("L", "RGB", "RGBA"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode == "La":  # premultiplied; Pillow converts it only to "LA"
        image = image.convert("LA")
    if mode in ("LA", "La", "PA", "RGBa"):
        return image.convert("RGBA")
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_l(image)
    try:
        return image.convert("RGB")
    except ValueError as error:
        raise SketchError(f"images in colour mode {mode} are not supported; save it as RGB PNG or JPEG") from error


def normalize_sketch(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Return the drawing as black lines on a white "L" page of exactly ``size=(width, height)``.

    Transparency goes onto a plain page, light-on-dark drawings are inverted, uneven or grey paper
    is flattened to white, isolated specks are dropped, strokes keep their darkness (their
    anti-aliased edges), and the drawing is scaled to fit and centred on white, never stretched.
    """
    width, height = _check_size(size)
    darkness = ink_darkness(image)
    ink = remove_specks(darkness > _ink_threshold(darkness), speck_area(darkness.shape))
    if not ink.any():
        raise SketchError(
            "the picture has no lines: it looks blank or is only noise; upload a drawing with visible strokes"
        )
    # Strokes keep their own darkness, scaled so that a typical stroke is black: line weight and
    # anti-aliasing put Canny's edges where the drawing has them (a black-or-white page moves them and
    # drops the light ones), and a faint pencil photo still gives black lines.
    scale = max(float(np.percentile(darkness[ink], 95)), 1e-6)
    strokes = np.where(ink, np.rint(255.0 * (1.0 - np.clip(darkness / scale, 0.0, 1.0))), 255).astype(np.uint8)
    page = np.asarray(fit_to_frame(Image.fromarray(strokes, mode="L"), (width, height)))
    shrink = min(width / ink.shape[1], height / ink.shape[0])
    if shrink < 1:
        # Area averaging turns lines thinner than a target pixel into faint grey, which Canny and the
        # subject mask miss; darkening by the shrink factor keeps every line about a pixel of ink.
        darkness = np.minimum(255.0, (255.0 - page) / shrink)
        page = np.rint(255.0 - darkness).astype(np.uint8)
    return Image.fromarray(page, mode="L")


def fit_to_frame(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale a sketch to fit ``size=(width, height)`` keeping its aspect ratio, centred on white."""
    width, height = _check_size(size)
    gray = np.asarray(image.convert("L"))
    h, w = gray.shape
    scale = min(width / w, height / h)
    new_w = min(width, max(1, round(w * scale)))
    new_h = min(height, max(1, round(h * scale)))
    # Area averaging keeps thin lines as grey when shrinking; bilinear avoids ringing when enlarging.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(gray, (new_w, new_h), interpolation=interpolation) if (new_w, new_h) != (w, h) else gray
    page = np.full((height, width), 255, dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    page[top : top + new_h, left : left + new_w] = resized
    return Image.fromarray(page, mode="L")


def canny_condition(sketch: Image.Image, low: int = 100, high: int = 200) -> Image.Image:
    """ControlNet's Canny input: white edges on black, RGB, same size as ``sketch``.

    100/200 are the defaults of the ControlNet reference annotator and of the diffusers examples.
    """
    if not 0 <= low < high <= 255:
        raise SketchError(
            f"Canny thresholds must satisfy 0 <= low < high <= 255, got low={low}, high={high}; "
            "the defaults 100 and 200 match the Canny ControlNet"
        )
    edges = cv2.Canny(np.asarray(sketch.convert("L")), low, high)
    return Image.fromarray(np.repeat(edges[:, :, None], 3, axis=2), mode="RGB")


def sketch_foreground_mask(sketch: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Boolean (height, width) mask of the region the drawing covers, filled, at ``size``.

    Outlines are closed and their insides filled; shapes that stay open (stick figures, gaps)
    take their convex hull instead. A margin is added so that a token grid of any coarseness
    keeps the whole subject. Used to restrict MAGA memory sharing to the drawn subject.
    """
    width, height = _check_size(size)
    # Anything clearly darker than white paper is drawing, including hairlines shrunk to light grey.
    ink = (np.asarray(sketch.convert("L")) < 224).astype(np.uint8)
    if not ink.any():
        raise SketchError("the sketch has no lines, so it has no subject region; draw or upload a sketch first")
    margin = max(1, round(0.02 * math.hypot(*ink.shape)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    filled = _fill_holes(cv2.morphologyEx(ink, cv2.MORPH_CLOSE, disk))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(filled, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    region = np.zeros_like(filled)
    # Shapes under 5 % of the largest are stray marks, not the subject.
    for label in np.flatnonzero(areas >= 0.05 * areas.max()) + 1:
        component = (labels == label).astype(np.uint8)
        points = cv2.findNonZero(component)
        hull = np.zeros_like(component)
        cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
        # A component much sparser than its hull is an open outline whose inside did not fill.
        region |= hull if component.sum() < 0.5 * hull.sum() else component
    region = cv2.dilate(region, disk)
    coverage = cv2.resize(region.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    mask = coverage >= 0.25
    # A subject thinner than one cell must still own at least the cell it covers most.
    return mask if mask.any() else coverage == coverage.max()


def remove_specks(ink: np.ndarray, min_area: int) -> np.ndarray:
    """Drop 8-connected ink blobs smaller than ``min_area`` pixels (dust, scan noise)."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False  # label 0 is the background
    return keep[labels]


def ink_darkness(image: Image.Image) -> np.ndarray:
    """How much darker than the paper each pixel is: 0 on paper, up to 1, negative if lighter.

    Transparency is laid on paper, light-on-dark pictures are inverted and uneven or tinted paper
    is divided out, so 0 means paper whatever the picture's lighting.
    """
    pixels = np.asarray(to_standard_mode(image), dtype=np.float32) / 255.0
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] in (2, 4):
        colour, alpha = pixels[:, :, :-1], pixels[:, :, -1:]
        pixels = colour * alpha + _transparent_paper(colour, alpha) * (1.0 - alpha)
    luma = pixels @ _LUMA if pixels.shape[2] == 3 else pixels[:, :, 0]
    # The darkest channel shows coloured strokes on light paper (yellow has a high luma); on dark
    # paper the brightest channel does the same for coloured chalk.
    lightness = 1.0 - pixels.max(axis=2) if _strokes_are_light(luma) else pixels.min(axis=2)
    paper = _paper(lightness)
    # Not clipped at the paper level: the noise estimate needs both sides of it.
    return 1.0 - lightness / np.maximum(paper, 1e-3)


def speck_area(shape: tuple[int, ...]) -> int:
    """Blobs under ~0.002 % of the picture (at least 4 px) are dust rather than drawn dots."""
    return max(4, round(2e-5 * shape[0] * shape[1]))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` plus every background region that cannot be reached from the border."""
    padded = np.pad(mask, 1)
    outside = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), dtype=np.uint8)
    cv2.floodFill(padded.copy(), outside, (0, 0), 1)
    return (outside[2:-2, 2:-2] == 0).astype(np.uint8)


def _check_pixel_count(size: tuple[int, int], path: Path) -> None:
    if size[0] * size[1] > MAX_PIXELS:
        raise SketchError(
            f"{path} is {size[0]}x{size[1]} pixels, more than the {MAX_PIXELS:,} allowed; "
            "scale it down (a sketch needs no more than a few thousand pixels a side)"
        )


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(side, numbers.Integral) and side > 0 for side in size):
        raise SketchError(f"size must be (width, height) in positive whole pixels, got {size!r}")
    return int(size[0]), int(size[1])


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    values = np.nan_to_num(np.asarray(image).astype(np.float64))
    # The bit depth sets the scale; 32-bit "I" often carries 16-bit PNG data, float is usually 0..1.
    if image.mode.startswith("I;16") or (image.mode == "I" and values.max() > 255):
        values = values / 257.0
    elif image.mode == "F" and values.max() <= 1.0:
        values = values * 255.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def _transparent_paper(colour: np.ndarray, alpha: np.ndarray) -> float:
    """White, unless the visible strokes are all light (white chalk on a transparent layer)."""
    opaque = colour[alpha[:, :, 0] > 0.5]
    if opaque.size == 0:
        return 1.0
    dark_share = np.mean(opaque.min(axis=1) < 0.5)
    return 0.0 if dark_share < 0.001 else 1.0


def _strokes_are_light(luma: np.ndarray) -> bool:
    """Whether the marks that stand out from the local paper are lighter than it (chalk, negatives).

    Compares how much ink lies clearly below versus clearly above the local median, so that noise,
    lighting gradients and the paper showing between dense lines do not decide.
    """
    small = _analysis_view(luma)
    deviation = small - _local_median(small)
    noise = 1.4826 * float(np.median(np.abs(deviation)))
    margin = max(0.05, 4.0 * noise)
    darker = np.clip(-deviation - margin, 0.0, None).sum()
    lighter = np.clip(deviation - margin, 0.0, None).sum()
    return bool(lighter > darker)


def _paper(lightness: np.ndarray) -> np.ndarray:
    """Paper brightness under every pixel: the local median, where strokes are a minority.

    Regions of ink wider than the median window (large solid fills) count as paper and keep only
    their outline; that is what a line sketch needs.
    """
    paper = _local_median(_analysis_view(lightness))
    paper = cv2.GaussianBlur(paper, (0, 0), max(1.0, max(paper.shape) / 50))
    return cv2.resize(paper, (lightness.shape[1], lightness.shape[0]), interpolation=cv2.INTER_LINEAR)


def _analysis_view(gray: np.ndarray) -> np.ndarray:
    """A copy at most _ANALYSIS_SIDE a side: paper-level analysis needs no finer detail."""
    h, w = gray.shape
    factor = min(1.0, _ANALYSIS_SIDE / max(h, w))
    return cv2.resize(gray, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)


def _local_median(gray: np.ndarray) -> np.ndarray:
    """Median over a window about an eighth of the picture, far wider than any pen stroke."""
    window = max(15, (max(gray.shape) // 8) | 1)
    as_bytes = np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8)
    return cv2.medianBlur(as_bytes, window).astype(np.float32) / 255.0


def _ink_threshold(darkness: np.ndarray) -> float:
    """Darkness above which a pixel is a stroke: well clear of the paper's noise, at least 20 %."""
    # Strokes are a minority, so median and MAD describe the paper: its offset and its noise.
    paper = float(np.median(darkness))
    noise = 1.4826 * float(np.median(np.abs(darkness - paper)))
    return max(0.2, paper + 5.0 * noise)
