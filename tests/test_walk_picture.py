"""A picture of the walk (walk_core.trajectory_plot, the WalkPicture node, cli.py run --walk-picture).

Checked for content, not pixels: the layout draw_walk returns says where each part went, and the tests check
the parts against the walk (frames, sigma order, one legend entry per term) and the picture at those places.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rwalk.nodes import NODE_CLASS_MAPPINGS
from rwalk.walk_core.guidance import GuidanceRecord
from rwalk.walk_core.schedules import make_sigmas
from rwalk.walk_core.trajectory import WalkTrajectory
from rwalk.walk_core.trajectory_plot import draw_walk, picture_size, tile_picture, write_walk_pictures
from cli_module import load_cli  # tests/ is on sys.path (conftest.py)

ROOT = Path(__file__).resolve().parents[1]
STEPS = 12
KEPT = (0, 4, 8, 11)


def trace(kept=KEPT, batch=2, height=12, width=20, terms=True) -> WalkTrajectory:
    """A hand-made walk: a karras schedule, random frames, a cfg term on the first half and a rescale throughout."""
    g = torch.Generator().manual_seed(0)
    sigmas = make_sigmas("karras", STEPS, 0.002, 80.0)
    records = []
    if terms:
        for e, s in enumerate(sigmas[:-1].tolist()):
            norms = {"1:cfg": 0.5 * s / (1 + s)} if e < STEPS // 2 else {}
            records.append(GuidanceRecord(s, {**norms, "2:rescale": 0.01 + 0.001 * e}))
    frames = torch.rand(len(kept), batch, 3, height, width, generator=g) * 2 - 1
    return WalkTrajectory(tuple(sigmas.tolist()), tuple(kept), frames, tuple(records))


def crop(img: Image.Image, box) -> np.ndarray:
    return np.asarray(img.crop(box))


def test_the_picture_grows_by_one_filmstrip_row_per_columns_frames():
    three, _ = draw_walk(trace(kept=(0, 5, 11)), tile=60, columns=3)
    four, layout = draw_walk(trace(kept=(0, 4, 8, 11)), tile=60, columns=3)
    assert four.size == layout.size == picture_size(4, 12, 20, tile=60, columns=3)
    assert four.width == three.width
    tile_height = 36  # 12 x 20 frames with their longer side 60 px
    row = four.height - three.height
    assert row > tile_height  # a second row of tiles with its captions
    assert [box[1] for _, box in layout.tiles] == [layout.tiles[0][1][1]] * 3 + [layout.tiles[0][1][1] + row]


def test_filmstrip_tiles_are_the_frames_of_the_chosen_item_in_time_order():
    walk = trace()
    img, layout = draw_walk(walk, item=1, tile=60)
    assert [step for step, _ in layout.tiles] == list(KEPT)
    for t, (_, box) in enumerate(layout.tiles):
        assert (box[2] - box[0], box[3] - box[1]) == (60, 36)
        # a 3x enlargement is nearest neighbour: each frame pixel becomes a 3 x 3 block
        pixels = ((walk.frames[t, 1] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(crop(img, box), pixels.repeat(3, 0).repeat(3, 1))
    other, _ = draw_walk(walk, item=0, tile=60)
    assert not np.array_equal(crop(other, layout.tiles[0][1]), crop(img, layout.tiles[0][1]))


def test_a_shrunk_tile_is_the_frame_resized():
    walk = trace(height=64, width=48)
    img, layout = draw_walk(walk, tile=32)
    step, box = layout.tiles[-1]
    assert step == KEPT[-1] and (box[2] - box[0], box[3] - box[1]) == (24, 32)
    np.testing.assert_array_equal(crop(img, box), np.asarray(tile_picture(walk.frames[-1, 0], (24, 32))))


def test_the_sigma_curve_falls_down_the_picture_step_by_step():
    walk = trace()
    img, layout = draw_walk(walk)
    steps = [p[0] for p in layout.sigma_points]
    rows = [p[3] for p in layout.sigma_points]
    assert steps == list(range(STEPS)) and [p[1] for p in layout.sigma_points] == list(walk.sigmas[:-1])
    assert all(a < b for a, b in zip(rows, rows[1:])), "a falling sigma is drawn lower at every step"
    left, top, right, bottom = layout.sigma_plot
    assert all(left <= x <= right and top <= y <= bottom for _, _, x, y in layout.sigma_points)
    # the curve is drawn: the plot's colour is at (or, on a kept step's ring, around) each point
    colours = np.asarray(img)
    for _, _, x, y in layout.sigma_points:
        patch = colours[round(y) - 4:round(y) + 5, round(x) - 4:round(x) + 5].reshape(-1, 3).astype(int)
        assert (np.abs(patch - (40, 90, 170)).sum(1) < 60).any()


def test_one_line_and_one_legend_entry_per_guidance_term():
    walk = trace()
    img, layout = draw_walk(walk)
    assert [label for label, _ in layout.legend] == ["1:cfg", "2:rescale"]
    assert set(layout.guidance_lines) == {"1:cfg", "2:rescale"}
    assert len(layout.guidance_lines["1:cfg"]) == STEPS // 2  # only where the term was on
    assert len(layout.guidance_lines["2:rescale"]) == STEPS
    rescale = layout.guidance_lines["2:rescale"]
    assert all(a[3] > b[3] for a, b in zip(rescale, rescale[1:])), "a growing change is drawn higher"
    left, top, right, bottom = layout.guidance_plot
    for label, box in layout.legend:
        assert left <= box[0] < box[2] <= right and top <= box[1] < box[3] <= bottom, label
        assert (crop(img, box).max(axis=2) < 100).sum() > 10, f"the legend text of {label} is drawn"


def test_no_guidance_draws_no_lines_and_no_legend():
    _, layout = draw_walk(trace(terms=False))
    assert layout.guidance_lines == {} and layout.legend == ()


@pytest.mark.parametrize("empty", [None, WalkTrajectory((80.0, 0.0), (), torch.zeros(0, 1, 3, 8, 8))])
def test_an_empty_trajectory_is_an_error_naming_the_input(empty):
    with pytest.raises(ValueError, match="WalkPicture: trajectory is empty.*walk_trajectory"):
        draw_walk(empty, who="WalkPicture")


def test_bad_item_and_frames_are_errors_that_say_what_is_allowed():
    with pytest.raises(ValueError, match=r"item=2 is not allowed; expected 0\.\.1"):
        draw_walk(trace(), item=2)
    with pytest.raises(ValueError, match=r"frames of shape \(3, 1, 3, 8, 8\).*T = 2"):
        WalkTrajectory((80.0, 1.0, 0.0), (0, 1), torch.zeros(3, 1, 3, 8, 8))


# ---------------------------------------------------------------- through the nodes and the CLI


def _defaults(node_id, **over):
    """A node's widget inputs at their defaults, with ``over`` changed."""
    inputs = {}
    for name, (socket, options) in NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()["required"].items():
        if isinstance(socket, (list, tuple)):
            inputs[name] = options.get("default", socket[0])
        elif socket in ("INT", "FLOAT", "STRING", "BOOLEAN"):
            inputs[name] = options["default"]
    return {**inputs, **over}


def _walk(**over):
    target, = NODE_CLASS_MAPPINGS["TargetDistributionMixture"]().build(
        **_defaults("TargetDistributionMixture", labels="a, b, a, b, a, b, a, b", **{"class": "a"}))
    cfg, = NODE_CLASS_MAPPINGS["GuidanceStepCFG"]().add(**_defaults("GuidanceStepCFG", weight=2.0))
    inputs = _defaults("WalkSampler", walk="euler", steps=5, seed=3, batch_size=2, width=16, height=16,
                       trajectory_every=2, **over)
    return NODE_CLASS_MAPPINGS["WalkSampler"]().sample(target, guidance=cfg, **inputs)


def test_the_sampler_hands_its_walk_to_the_picture_node():
    image, _, trajectory, walk = _walk()
    assert isinstance(walk, WalkTrajectory)
    assert walk.steps == (0, 2, 4) and len(walk.sigmas) == 6 and walk.sigmas[-1] == 0
    assert walk.term_labels() == ["1:cfg"] and len(walk.guidance) == 5  # euler: one evaluation per step
    # its frames are the trajectory output's pictures
    torch.testing.assert_close(((walk.frames + 1) / 2).permute(0, 1, 3, 4, 2).reshape(trajectory.shape), trajectory)
    picture, = NODE_CLASS_MAPPINGS["WalkPicture"]().draw(walk, item=1, tile=64, columns=8)
    drawn, layout = draw_walk(walk, item=1, tile=64)
    assert tuple(picture.shape) == (1, drawn.height, drawn.width, 3) and picture.dtype == torch.float32
    np.testing.assert_array_equal((picture[0].numpy() * 255).round().astype(np.uint8), np.asarray(drawn))
    assert len(layout.tiles) == 3 and [label for label, _ in layout.legend] == ["1:cfg"]


def test_the_picture_node_names_its_input_when_the_walk_is_missing():
    with pytest.raises(ValueError, match="WalkPicture: trajectory is empty"):
        NODE_CLASS_MAPPINGS["WalkPicture"]().draw(None, item=0, tile=64, columns=8)


def test_pictures_are_written_under_new_names_never_over_another(tmp_path):
    walk = trace()
    outputs = {"7": (None, walk), "9:1": (walk,), "3": ("not a walk",)}
    first = write_walk_pictures(outputs, tmp_path)
    again = write_walk_pictures(outputs, tmp_path)
    assert [p.name for p in first] == ["walk_7_00001_.png", "walk_9_1_00001_.png"]
    assert [p.name for p in again] == ["walk_7_00002_.png", "walk_9_1_00002_.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in first + again)  # no temp files
    with Image.open(first[0]) as img:
        assert img.size == draw_walk(walk)[0].size


def _cli():
    return load_cli()


def test_cli_run_walk_picture_writes_a_new_drawing_beside_the_outputs(tmp_path, capsys):
    workflow = {
        "1": {"class_type": "TargetDistributionMixture", "inputs": _defaults("TargetDistributionMixture")},
        "2": {"class_type": "WalkSampler", "inputs": _defaults("WalkSampler", target=["1", 0], steps=3, width=16,
                                                               height=16, trajectory_every=1)},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "wp"}},
    }
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(workflow))
    args = ["run", str(path), "--output-dir", str(tmp_path / "out"), "--no-progress", "--walk-picture"]
    for expected in ("walk_2_00001_.png", "walk_2_00002_.png"):
        assert _cli().main(args) == 0
        printed = [Path(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
        assert [p.name for p in printed] == [printed[0].name, expected] and printed[0].name.startswith("wp_")
        with Image.open(printed[1]) as img:
            assert img.size == picture_size(3, 16, 16)  # steps 0, 1, 2 kept
    assert _cli().main(args + ["--server", "http://127.0.0.1:9"]) == 2
    assert "--walk-picture" in capsys.readouterr().err
