"""Comic page composition: panels in story order on a grid, captions under them, an optional title;
a long story is split into pages (:func:`paginate`) so that no page grows without bound."""

from __future__ import annotations

import math
from functools import cache

from PIL import Image, ImageDraw, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

PAGE_PANELS = 12  # at most three rows of four on a page
# Under Pillow's decompression-bomb warning (89 MP), so image viewers and PIL open every page as is.
PAGE_PIXELS = 64 * 2**20
PAGE_OVERHEAD = 2  # page pixels per panel pixel, at most: empty grid cells (7 panels: 8 cells), gutters, borders, captions, title


def compose_page(
    images: list[Image.Image],
    captions: list[str | None],
    *,
    columns: int | None = None,
    title: str | None = None,
    gutter: int = 16,
    border: int = 2,
    caption_size: int = 18,
    title_size: int = 32,
    min_side: int = 0,
) -> Image.Image:
    """Lay the panels out row by row in story order and return the page as an RGB image.

    Panels keep their pixels: every column is as wide as the widest panel and each row as tall
    as its tallest one, smaller panels are centred in their cell. Each panel gets a black border
    ``border`` px wide and its caption, wrapped to the column width, below it. ``columns``
    defaults to :func:`default_columns`. Panels whose longer side is below ``min_side`` are
    enlarged by a whole factor (nearest neighbour, so pixels stay exact) to leave room for captions.
    """
    if not images:
        raise ValueError("there are no panels to lay out; generate or add at least one panel first")
    if len(captions) != len(images):
        raise ValueError(
            f"got {len(images)} panels but {len(captions)} captions; pass one caption per panel (None for none)"
        )
    columns = default_columns(len(images)) if columns is None else columns
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    if gutter < 0 or border < 0 or caption_size < 1 or title_size < 1:
        raise ValueError("gutter and border must be >= 0 and font sizes >= 1")
    columns = min(columns, len(images))

    panels = [_enlarged(_on_white(image), min_side) for image in images]
    caption_font, title_font = _font(caption_size), _font(title_size)
    cell_width = max(panel.width for panel in panels) + 2 * border
    page_width = 2 * gutter + columns * cell_width + (columns - 1) * gutter
    caption_lines = [_wrap(caption or "", caption_font, cell_width) for caption in captions]
    title_lines = _wrap(title or "", title_font, page_width - 2 * gutter)
    caption_step, title_step = _line_height(caption_font), _line_height(title_font)

    rows = [range(start, min(start + columns, len(panels))) for start in range(0, len(panels), columns)]
    row_heights = [max(panels[i].height for i in row) + 2 * border for row in rows]
    caption_pad = gutter // 2  # between a panel and its caption
    caption_heights = [
        lines * caption_step + caption_pad if (lines := max(len(caption_lines[i]) for i in row)) else 0 for row in rows
    ]
    title_height = len(title_lines) * title_step + (gutter if title_lines else 0)
    page_height = gutter + title_height + sum(row_heights) + sum(caption_heights) + len(rows) * gutter

    page = Image.new("RGB", (page_width, page_height), "white")
    draw = ImageDraw.Draw(page)
    y = gutter
    for line in title_lines:
        draw.text((page_width / 2, y), line, fill="black", font=title_font, anchor="ma")
        y += title_step
    y += gutter if title_lines else 0
    for row, row_height, caption_height in zip(rows, row_heights, caption_heights):
        for column, index in enumerate(row):
            panel = panels[index]
            cell_left = gutter + column * (cell_width + gutter)
            left = cell_left + (cell_width - panel.width) // 2
            top = y + (row_height - panel.height) // 2
            if border:
                draw.rectangle(
                    (left - border, top - border, left + panel.width + border - 1, top + panel.height + border - 1),
                    fill="black",
                )
            page.paste(panel, (left, top))
            for number, line in enumerate(caption_lines[index]):
                draw.text(
                    (cell_left + cell_width / 2, y + row_height + caption_pad + number * caption_step),
                    line,
                    fill="black",
                    font=caption_font,
                    anchor="ma",
                )
        y += row_height + caption_height + gutter
    return page


def paginate(sizes: list[tuple[int, int]], *, min_side: int = 0, per_page: int = PAGE_PANELS,
             max_pixels: int = PAGE_PIXELS) -> list[range]:
    """The panels of each page, in story order: at most ``per_page`` a page, fewer where the largest
    panel (``sizes`` are (width, height), enlarged as :func:`compose_page` would for ``min_side``) would
    make the page exceed ``max_pixels``, at least one; the pages are filled evenly (13 panels: 7 + 6)."""
    if not sizes:
        return []
    largest = max(w * h * math.ceil(min_side / max(w, h)) ** 2 if max(w, h) < min_side else w * h for w, h in sizes)
    fit = max(1, min(per_page, int(max_pixels / (PAGE_OVERHEAD * largest))))
    pages = math.ceil(len(sizes) / fit)
    size = math.ceil(len(sizes) / pages)
    return [range(start, min(start + size, len(sizes))) for start in range(0, len(sizes), size)]


def _enlarged(image: Image.Image, min_side: int) -> Image.Image:
    factor = math.ceil(min_side / max(image.size))
    if factor <= 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def default_columns(count: int) -> int:
    """At most four panels a row, rows filled evenly: 5 -> 3+2, 7 -> 4+3, 9 -> 3+3+3."""
    rows = math.ceil(count / 4)
    return math.ceil(count / rows)


def _on_white(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        backdrop = Image.new("RGBA", image.size, "white")
        return Image.alpha_composite(backdrop, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


@cache
def _font(size: int) -> Font:
    """DejaVu Sans where installed (wide Unicode coverage), else Pillow's bundled font."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _line_height(font: Font) -> int:
    _, top, _, bottom = font.getbbox("Ág")
    return math.ceil((bottom - top) * 1.3)


def _wrap(text: str, font: Font, width: int) -> list[str]:
    """Greedy word wrap to ``width`` px; words wider than a line are split between characters."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for character in word:
                if line and font.getlength(line + character) > width:
                    lines.append(line)
                    line = ""
                line += character
        if line:
            lines.append(line)
    return lines
