"""The labelled XY grid (walk_core.xy_grid): pictures in their cells, values and titles as text, failed cells.

Checked through the layout draw_grid returns (where each part went) and the picture's pixels at those places.
"""
import numpy as np
import pytest
from PIL import Image

from rwalk.walk_core.xy_grid import (BACKGROUND, ELLIPSIS, FAILED_MARK, MARGIN, MIN_CELL, draw_grid, font,
                                      labelled_grid, text_width, wrap)


def noise_picture(width, height, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    channels = len(mode)
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def ink(img, box) -> int:
    """How many pixels in ``box`` differ from the background."""
    area = np.asarray(img.crop(box)).astype(int)
    return int((np.abs(area - np.array(BACKGROUND)).sum(axis=-1) > 0).sum())


def grid_2x3(**extra):
    cells = [[noise_picture(32, 32, 10 * r + c) for c in range(3)] for r in range(2)]
    return cells, draw_grid(cells, x_title="walk", x_values=["euler", "adams", "er_sde"], y_title="steps",
                            y_values=[10, 20], **extra)


def test_every_picture_lands_in_its_cell_grown_by_a_whole_factor():
    cells, (img, layout) = grid_2x3(title="walks by steps")
    assert img.mode == "RGB" and img.size == layout.size
    factor = MIN_CELL // 32
    assert layout.cell_size == (32 * factor, 32 * factor)
    for r, row in enumerate(cells):
        for c, picture in enumerate(row):
            box = layout.picture_boxes[r][c]
            assert box == layout.cells[r][c]
            expected = np.asarray(picture.resize((32 * factor, 32 * factor), Image.NEAREST))
            assert np.array_equal(np.asarray(img.crop(box)), expected), (r, c)
    # cells run left to right by x value and top to bottom by y value, without overlapping
    lefts = [box[0] for box in layout.cells[0]]
    tops = [row[0][1] for row in layout.cells]
    assert lefts == sorted(lefts) and tops == sorted(tops)
    assert all(a[2] <= b[0] for a, b in zip(layout.cells[0], layout.cells[0][1:]))


def test_values_and_titles_are_written_where_the_layout_says():
    _, (img, layout) = grid_2x3(title="walks by steps")
    for box in (layout.title, layout.x_title, layout.y_title):
        assert box is not None and ink(img, box) > 20
    for box, lines in layout.column_labels + layout.row_labels:
        assert ink(img, box) > 10, lines
    assert [lines for _, lines in layout.column_labels] == [("euler",), ("adams",), ("er_sde",)]
    assert [lines for _, lines in layout.row_labels] == [("10",), ("20",)]
    # the labels sit above and left of the cells
    first_cell = layout.cells[0][0]
    assert all(box[3] <= first_cell[1] for box, _ in layout.column_labels)
    assert all(box[2] <= first_cell[0] for box, _ in layout.row_labels)
    assert layout.y_title[2] <= layout.row_labels[0][0][0]


def test_a_failed_cell_is_marked_and_the_others_still_drawn():
    cells = [[noise_picture(24, 24, 1), None], [None, noise_picture(24, 24, 2)]]
    img, layout = draw_grid(cells, x_title="x", x_values=["a", "b"], y_title="y", y_values=["c", "d"])
    assert layout.picture_boxes[0][1] is None and layout.picture_boxes[1][0] is None
    failed = np.asarray(img.crop(layout.cells[0][1])).reshape(-1, 3)
    assert (failed == np.array(FAILED_MARK)).all(axis=1).sum() > layout.cell_size[0]  # the cross and frame
    assert layout.picture_boxes[0][0] is not None and layout.picture_boxes[1][1] is not None


def test_all_cells_failed_still_gives_a_grid():
    img, layout = draw_grid([[None, None]], x_title="walk", x_values=["a", "b"], y_title="", y_values=[""])
    assert layout.cell_size[0] >= MIN_CELL and img.size[0] > 2 * layout.cell_size[0]


def test_long_values_wrap_within_the_column_and_are_ellipsised_past_three_lines():
    long = "a very long value " * 12
    cells = [[noise_picture(32, 32, 3), noise_picture(32, 32, 4)]]
    img, layout = draw_grid(cells, x_title="x", x_values=["short", long], y_title="y",
                            y_values=["word" * 40])
    face = font(max(12, round(layout.cell_size[0] / 10)))
    (short_box, short_lines), (long_box, long_lines) = layout.column_labels
    assert short_lines == ("short",)
    assert len(long_lines) == 3 and long_lines[-1].endswith(ELLIPSIS)
    assert all(text_width(line, face) <= layout.cell_size[0] for line in long_lines)
    row_box, row_lines = layout.row_labels[0]
    assert all(text_width(line, face) <= row_box[2] - row_box[0] for line in row_lines)
    assert len(row_lines) > 1  # the word without spaces was split over lines, not dropped
    assert row_box[2] <= layout.cells[0][0][0]


def test_wrap_keeps_short_text_and_splits_words_wider_than_a_line():
    face = font(14)
    assert wrap("euler", 200, face, 3) == ("euler",)
    lines = wrap("x" * 60, 60, face, 10)
    assert "".join(lines) == "x" * 60 and all(text_width(line, face) <= 60 for line in lines)


def test_pictures_of_other_sizes_and_modes_fit_with_their_aspect_kept():
    wide, tall = noise_picture(64, 16, 5), noise_picture(16, 64, 6, "RGBA")
    img, layout = draw_grid([[wide, tall]], x_title="", x_values=["wide", "tall"], y_title="", y_values=[""])
    (wide_box, tall_box), = layout.picture_boxes
    assert (wide_box[2] - wide_box[0]) == 4 * (wide_box[3] - wide_box[1])
    assert 4 * (tall_box[2] - tall_box[0]) == (tall_box[3] - tall_box[1])
    for cell, picture in zip(layout.cells[0], (wide_box, tall_box)):
        assert cell[0] <= picture[0] and picture[2] <= cell[2] and cell[1] <= picture[1] and picture[3] <= cell[3]


def test_a_blank_axis_is_left_out_and_large_pictures_are_not_grown():
    cells = [[noise_picture(200, 150, 7), noise_picture(200, 150, 8)]]
    img, layout = draw_grid(cells, x_title="cfg", x_values=[1, 7], y_title="", y_values=[""])
    assert layout.cell_size == (200, 150)
    assert layout.row_labels == () and layout.y_title is None
    assert layout.cells[0][0][0] == MARGIN  # no room kept on the left
    assert labelled_grid(cells, x_title="cfg", x_values=[1, 7], y_title="", y_values=[""]).size == img.size


@pytest.mark.parametrize("cells, x_values, y_values, words", [
    ([[None]], ["a", "b"], ["c"], "row 0 of cells has 1 pictures; expected one per x value (2)"),
    ([[None], [None]], ["a"], ["c"], "cells has 2 rows; expected one per y value (1)"),
    ([], [], [], "must each hold at least one value"),
])
def test_a_grid_whose_shape_disagrees_with_its_axes_is_refused(cells, x_values, y_values, words):
    with pytest.raises(ValueError, match=r"labelled_grid: .*" + words.replace("(", r"\(").replace(")", r"\)")):
        labelled_grid(cells, x_title="x", x_values=x_values, y_title="y", y_values=y_values)


def test_a_cell_that_is_not_a_picture_is_refused():
    with pytest.raises(TypeError, match=r"cells\[0\]\[0\] is a str"):
        labelled_grid([["oops"]], x_title="x", x_values=["a"], y_title="y", y_values=["b"])
