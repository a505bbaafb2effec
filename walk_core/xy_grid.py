"""A labelled XY grid of pictures: the contact sheet of a comparison, the way ComfyUI's and A1111's XY plots look.

Columns are the X values, rows the Y values; each column's value is written above it, each row's value to its
left, the X axis title above the column values, the Y axis title turned on its side left of the row values and
an optional title on top. Pictures of any size are fitted (aspect kept, padded) into one common cell; small ones
grow by a whole factor with nearest neighbour so their pixels stay crisp. A failed cell (None) is drawn as a
marked empty cell. Long values are wrapped on spaces and, past the room they have, ellipsised. Text is Pillow's
default font only. :func:`draw_grid` also returns a :class:`GridLayout` saying where everything went.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from PIL import Image, ImageDraw, ImageFont

Box = Tuple[int, int, int, int]  # left, top, right, bottom (pixels; right and bottom exclusive)
Cell = Optional[Image.Image]

MIN_CELL = 128  # a cell's longer side is at least this (small pictures grow by a whole factor)
DEFAULT_CELL = (128, 128)  # when every cell failed
MARGIN = 12
GAP = 4  # between cells
COLUMN_LABEL_LINES = 3  # a column value wraps to at most this many lines, then ellipsis
ELLIPSIS = "..."

BACKGROUND, INK, FAINT = (255, 255, 255), (20, 20, 24), (100, 100, 110)
FAILED_FILL, FAILED_MARK = (236, 236, 240), (200, 50, 50)


@dataclass(frozen=True)
class GridLayout:
    """Where :func:`draw_grid` put things. Boxes are (left, top, right, bottom) in the picture's pixels."""

    size: Tuple[int, int]  # (width, height)
    cell_size: Tuple[int, int]  # (width, height) of every cell
    cells: Tuple[Tuple[Box, ...], ...]  # [row][column] box of each cell
    picture_boxes: Tuple[Tuple[Optional[Box], ...], ...]  # [row][column] where the picture went (None: failed)
    column_labels: Tuple[Tuple[Box, Tuple[str, ...]], ...]  # box and text lines of each X value
    row_labels: Tuple[Tuple[Box, Tuple[str, ...]], ...]  # box and text lines of each Y value
    x_title: Optional[Box]
    y_title: Optional[Box]
    title: Optional[Box]


def font(size: int) -> ImageFont.ImageFont:
    """Pillow's default font at ``size`` px (its scalable one with FreeType; else its fixed bitmap font)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def text_width(text: str, face: ImageFont.ImageFont) -> int:
    return int(math.ceil(face.getlength(text)))


def line_height(face: ImageFont.ImageFont) -> int:
    _, top, _, bottom = face.getbbox("Agjy|")
    return bottom - min(top, 0) + 3


def ellipsise(text: str, width: int, face: ImageFont.ImageFont) -> str:
    """``text`` cut to fit ``width`` px with a trailing ellipsis (unchanged when it fits)."""
    if text_width(text, face) <= width:
        return text
    while text and text_width(text.rstrip() + ELLIPSIS, face) > width:
        text = text[:-1]
    return text.rstrip() + ELLIPSIS if text else ELLIPSIS


def wrap(text: str, width: int, face: ImageFont.ImageFont, max_lines: int) -> Tuple[str, ...]:
    """Greedy word wrap of ``text`` into lines of at most ``width`` px; a word wider than a line is split by
    characters; more than ``max_lines`` lines are cut and the last one ellipsised."""
    lines: List[str] = []
    for paragraph in str(text).splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if text_width(candidate, face) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while len(word) > 1 and text_width(word, face) > width:  # split a long word where it overflows
                cut = 1
                while cut < len(word) and text_width(word[:cut + 1], face) <= width:
                    cut += 1
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = ellipsise(lines[-1] + ELLIPSIS, width, face)
    return tuple(lines)


def check_shape(cells: Sequence[Sequence[Cell]], x_values: Sequence, y_values: Sequence) -> None:
    if not x_values or not y_values:
        raise ValueError(f"labelled_grid: x_values={list(x_values)!r} and y_values={list(y_values)!r} "
                         "must each hold at least one value")
    if len(cells) != len(y_values):
        raise ValueError(f"labelled_grid: cells has {len(cells)} rows; expected one per y value ({len(y_values)})")
    for index, row in enumerate(cells):
        if len(row) != len(x_values):
            raise ValueError(f"labelled_grid: row {index} of cells has {len(row)} pictures; expected one per "
                             f"x value ({len(x_values)})")
        for column, cell in enumerate(row):
            if cell is not None and not isinstance(cell, Image.Image):
                raise TypeError(f"labelled_grid: cells[{index}][{column}] is a {type(cell).__name__}; expected "
                                "a PIL image or None (a failed cell)")


def common_cell(cells: Sequence[Sequence[Cell]]) -> Tuple[int, int]:
    """The cell every picture fits in: the largest width and height, grown by a whole factor to MIN_CELL."""
    pictures = [cell for row in cells for cell in row if cell is not None]
    if not pictures:
        return DEFAULT_CELL
    width = max(max(p.width for p in pictures), 1)
    height = max(max(p.height for p in pictures), 1)
    factor = max(1, math.ceil(MIN_CELL / max(width, height)))
    return width * factor, height * factor


def fit(picture: Image.Image, size: Tuple[int, int]) -> Image.Image:
    """``picture`` in RGB scaled to fit ``size`` with its aspect kept: nearest neighbour for a whole-factor
    enlargement (pixels stay pixels), Lanczos otherwise."""
    picture = flatten(picture)
    scale = min(size[0] / picture.width, size[1] / picture.height)
    target = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    if target == picture.size:
        return picture
    whole = scale >= 2 and abs(scale - round(scale)) < 1e-9
    return picture.resize(target, Image.NEAREST if whole else Image.LANCZOS)


def flatten(picture: Image.Image) -> Image.Image:
    """RGB; transparency laid over the background."""
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return picture.convert("RGB")


def shown(title: Optional[str], values: Sequence[str]) -> bool:
    """An axis is drawn unless it has no title and only blank values (a one-axis plot)."""
    return bool(title) or any(value.strip() for value in values)


def draw_grid(cells: Sequence[Sequence[Cell]], *, x_title: str, x_values: Sequence, y_title: str,
              y_values: Sequence, title: Optional[str] = None) -> Tuple[Image.Image, GridLayout]:
    """The labelled grid and where each part of it went (see :func:`labelled_grid`)."""
    check_shape(cells, x_values, y_values)
    x_values, y_values = [str(v) for v in x_values], [str(v) for v in y_values]
    x_title, y_title = str(x_title or ""), str(y_title or "")
    cell_w, cell_h = common_cell(cells)
    columns, rows = len(x_values), len(y_values)
    value_size = max(12, min(24, round(min(cell_w, cell_h) / 10)))  # text grows with the pictures
    value_face, axis_face, title_face = font(value_size), font(value_size + 3), font(value_size + 6)
    value_h, axis_h, title_h = line_height(value_face), line_height(axis_face), line_height(title_face)
    grid_w = columns * cell_w + (columns - 1) * GAP
    grid_h = rows * cell_h + (rows - 1) * GAP
    show_x, show_y = shown(x_title, x_values), shown(y_title, y_values)

    # left of the cells: the Y title on its side, then the row values (wrapped to fit their column)
    y_title_w = axis_h + GAP if show_y and y_title else 0
    row_label_cap = max(96, min(cell_w, 240))
    row_label_w = 0
    if show_y:
        row_label_w = min(row_label_cap, max(text_width(v, value_face) for v in y_values)) + 2 * GAP
    row_lines = [wrap(v, max(row_label_w - 2 * GAP, 1), value_face, max(1, cell_h // value_h))
                 for v in y_values] if show_y else []
    left = MARGIN + y_title_w + row_label_w

    # above the cells: the title, the X title, then the column values (same number of lines in every column)
    width = left + grid_w + MARGIN
    title_lines = wrap(title, width - 2 * MARGIN, title_face, 2) if title else ()
    column_lines = [wrap(v, cell_w - 2, value_face, COLUMN_LABEL_LINES) for v in x_values] if show_x else []
    label_rows = max((len(lines) for lines in column_lines), default=0)
    top = MARGIN
    title_box = x_title_box = None
    if title_lines:
        title_box = (MARGIN, top, width - MARGIN, top + len(title_lines) * title_h)
        top = title_box[3] + GAP
    if show_x and x_title:
        x_title_box = (left, top, left + grid_w, top + axis_h)
        top = x_title_box[3]
    column_label_top = top
    if show_x:
        top += label_rows * value_h + GAP
    height = top + grid_h + MARGIN

    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    if title_box:
        draw_lines(draw, title_lines, title_box, title_face, title_h, INK)
    if x_title_box:
        draw_lines(draw, (ellipsise(x_title, grid_w, axis_face),), x_title_box, axis_face, axis_h, INK)

    cell_boxes, picture_boxes, column_labels, row_labels = [], [], [], []
    for column, lines in enumerate(column_lines):
        x0 = left + column * (cell_w + GAP)
        box = (x0, column_label_top, x0 + cell_w, column_label_top + label_rows * value_h)
        # a short label sits on the cells (bottom-aligned), like a caption above its column
        shift = (label_rows - len(lines)) * value_h
        draw_lines(draw, lines, (box[0], box[1] + shift, box[2], box[3]), value_face, value_h, INK)
        column_labels.append((box, lines))
    for row in range(rows):
        y0 = top + row * (cell_h + GAP)
        if show_y:
            lines = row_lines[row]
            box = (MARGIN + y_title_w, y0, left - GAP, y0 + cell_h)
            block = len(lines) * value_h
            inner = (box[0], y0 + (cell_h - block) // 2, box[2], y0 + (cell_h - block) // 2 + block)
            draw_lines(draw, lines, inner, value_face, value_h, INK, align="right")
            row_labels.append((box, lines))
        boxes, placed = [], []
        for column in range(columns):
            x0 = left + column * (cell_w + GAP)
            box = (x0, y0, x0 + cell_w, y0 + cell_h)
            boxes.append(box)
            placed.append(paste_cell(image, draw, cells[row][column], box, value_face))
        cell_boxes.append(tuple(boxes))
        picture_boxes.append(tuple(placed))

    y_title_box = None
    if y_title_w:
        y_title_box = (MARGIN, top, MARGIN + axis_h, top + grid_h)
        draw_side_title(image, ellipsise(y_title, grid_h, axis_face), y_title_box, axis_face)

    layout = GridLayout(size=image.size, cell_size=(cell_w, cell_h), cells=tuple(cell_boxes),
                        picture_boxes=tuple(picture_boxes), column_labels=tuple(column_labels),
                        row_labels=tuple(row_labels), x_title=x_title_box, y_title=y_title_box, title=title_box)
    return image, layout


def labelled_grid(cells: Sequence[Sequence[Cell]], *, x_title: str, x_values: Sequence, y_title: str,
                  y_values: Sequence, title: Optional[str] = None) -> Image.Image:
    """The pictures ``cells[y][x]`` laid out as a labelled XY grid (an RGB PIL image).

    ``cells`` holds one row per Y value of one picture (any size or mode) or None (a failed cell, drawn as a
    marked empty cell) per X value. ``x_title``/``y_title`` name the axes and ``x_values``/``y_values`` are
    written beside their column/row (any value, shown as ``str``); an axis with no title and only blank values
    is left out, which makes a one-axis strip. ``title`` goes on top when given.
    """
    return draw_grid(cells, x_title=x_title, x_values=x_values, y_title=y_title, y_values=y_values,
                     title=title)[0]


def draw_lines(draw: ImageDraw.ImageDraw, lines: Sequence[str], box: Box, face: ImageFont.ImageFont,
               step: int, colour, align: str = "center") -> None:
    """Lines of text inside ``box``, one every ``step`` px from its top; centred (or right-aligned)."""
    for index, line in enumerate(lines):
        length = text_width(line, face)
        x = box[2] - length if align == "right" else box[0] + (box[2] - box[0] - length) // 2
        draw.text((x, box[1] + index * step), line, fill=colour, font=face)


def draw_side_title(image: Image.Image, text: str, box: Box, face: ImageFont.ImageFont) -> None:
    """``text`` read bottom to top, centred along ``box`` (a tall narrow strip)."""
    length, height = box[3] - box[1], box[2] - box[0]
    strip = Image.new("RGB", (length, height), BACKGROUND)
    draw_lines(ImageDraw.Draw(strip), (text,), (0, 0, length, height), face, height, INK)
    image.paste(strip.rotate(90, expand=True), (box[0], box[1]))


def paste_cell(image: Image.Image, draw: ImageDraw.ImageDraw, cell: Cell, box: Box,
               face: ImageFont.ImageFont) -> Optional[Box]:
    """The picture fitted and centred in ``box`` (returns where it went), or the failed-cell mark (None)."""
    width, height = box[2] - box[0], box[3] - box[1]
    if cell is None:
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=FAILED_FILL, outline=FAILED_MARK, width=2)
        inset = max(4, min(width, height) // 6)
        draw.line((box[0] + inset, box[1] + inset, box[2] - 1 - inset, box[3] - 1 - inset), fill=FAILED_MARK,
                  width=2)
        draw.line((box[0] + inset, box[3] - 1 - inset, box[2] - 1 - inset, box[1] + inset), fill=FAILED_MARK,
                  width=2)
        word = ellipsise("failed", width - 4, face)
        text_w, text_h = text_width(word, face), line_height(face)
        x, y = box[0] + (width - text_w) // 2, box[1] + (height - text_h) // 2
        draw.rectangle((x - 3, y - 1, x + text_w + 3, y + text_h), fill=FAILED_FILL)
        draw.text((x, y), word, fill=FAILED_MARK, font=face)
        return None
    picture = fit(cell, (width, height))
    x, y = box[0] + (width - picture.width) // 2, box[1] + (height - picture.height) // 2
    image.paste(picture, (x, y))
    return x, y, x + picture.width, y + picture.height
