"""XY Plot Axis and XY Plot Walk (nodes/xy_plot.py): values as text checked with Walk Sampler's declarations,
the grid's cells equal to Walk Sampler's pictures in their places, one progress bar over all cells, and Cancel
honoured between and within cells (on ComfyUI stand-ins: tests/comfy_standins.py). Walks at 32 px, 2-3 steps.
"""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import comfy_standins as cs
from rwalk.nodes import NODE_CLASS_MAPPINGS
from rwalk.nodes import xy_plot
from rwalk.nodes.layout import image_to_pil
from rwalk.walk_core.errors import WalkDivergedError
from rwalk.walk_core.limits import use_limits
from rwalk.walk_core.progress import use_progress
from rwalk.walk_core.xy_grid import labelled_grid

Axis, Plot, Sampler = (NODE_CLASS_MAPPINGS[n] for n in ("XYPlotAxis", "XYPlotWalk", "WalkSampler"))
SETTINGS = dict(walk="euler_ancestral", schedule="karras", steps=3, seed=5, width=32, height=32, sigma_max=0.0,
                sigma_min=0.0, eta=1.0, s_noise=1.0, churn=40.0, snr=0.0, corrector_steps=1, order=0)


@pytest.fixture(scope="module")
def mixture():
    node = NODE_CLASS_MAPPINGS["TargetDistributionMixture"]()
    return node.build(detail=0.05, variation=0.15, weights="", spread_scales="", structure_seed=0)[0]


def axis(name, values):
    return Axis().make(name, values)[0]


def plot(target, x_axis, y_axis=None, **settings):
    return Plot().plot(target, x_axis, **{**SETTINGS, **settings}, y_axis=y_axis)[0]


def sampler_picture(target, **settings):
    image = Sampler().sample(target, **{**SETTINGS, **settings}, batch_size=1, denoise=1.0, trajectory_every=0)[0]
    return image_to_pil(image)


def pixels(picture):
    return torch.from_numpy(np.array(picture))


# -- the axis: values as text --------------------------------------------------------------------------------
def test_an_axis_reads_names_numbers_and_ranges_as_the_input_takes_them():
    assert axis("walk", "euler, adams,er_sde").values == ("euler", "adams", "er_sde")
    assert axis("steps", "10, 20\n40").values == (10, 20, 40)
    assert axis("steps", "10:40:10").values == (10, 20, 30, 40)
    assert axis("order", "1:3").values == (1, 2, 3)
    steps = axis("eta", "0:1:0.25")
    assert steps.values == (0.0, 0.25, 0.5, 0.75, 1.0) and steps.labels == ["0", "0.25", "0.5", "0.75", "1"]
    assert axis("s_noise", "1.0, 1.15").labels == ["1", "1.15"]
    assert all(isinstance(v, int) for v in axis("seed", "1, 2.0, 1e3").values)
    big = 2 ** 62 + 1  # a seed a float cannot hold exactly
    assert axis("seed", f"{big}, {big + 2}:{big + 4}:2").values == (big, big + 2, big + 4)


@pytest.mark.parametrize("name, values, words", [
    ("walk", "euler, eulr", r"values='euler, eulr': walk: 'eulr' is not among the choices; expected one of \["),
    ("steps", "10, abc", r"steps: 'abc' is not an integer; expected an integer in 1\.\.10000"),
    ("steps", "10, 2.5", r"steps: 2\.5 is not an integer"),
    ("width", "64, 5000", r"width: 5000 is above the maximum 4096"),
    ("steps", "0:20:10", r"steps: 0 is below the minimum 1; .* \(in the range '0:20:10'\)"),
    ("steps", "10:40:-10", r"'10:40:-10' never reaches 40 from 10 in steps of -10"),
    ("steps", "1:100", r"gives 100 values; an axis takes at most 32"),
    ("eta", " , ", r"no values given; list what eta should take"),
    ("eta", "nan", r"eta: nan is not a finite number"),
])
def test_a_bad_value_is_one_error_naming_the_input_and_the_value(name, values, words):
    with pytest.raises(ValueError, match=r"XYPlotAxis: .*" + words):
        axis(name, values)
    assert Axis.VALIDATE_INPUTS(input=name, values=values) != True  # noqa: E712  (the same refusal at validation)


def test_validation_refuses_an_input_that_cannot_be_an_axis():
    assert "input" in str(Axis.VALIDATE_INPUTS(input="batch_size", values="1, 2"))
    assert Axis.VALIDATE_INPUTS(input="walk", values="euler, pc") is True


# -- the plot ------------------------------------------------------------------------------------------------
def test_the_grid_is_walk_samplers_pictures_labelled_in_their_places(mixture):
    x_axis, y_axis = axis("walk", "euler, er_sde"), axis("steps", "2, 3")
    grid = plot(mixture, x_axis, y_axis)
    cells = [[sampler_picture(mixture, walk=w, steps=s) for w in ("euler", "er_sde")] for s in (2, 3)]
    expected = labelled_grid(cells, x_title="walk", x_values=["euler", "er_sde"], y_title="steps",
                             y_values=["2", "3"])
    assert grid.shape == (1, expected.height, expected.width, 3)
    assert torch.equal(pixels(expected), (grid[0] * 255).round().byte())
    assert not torch.equal(grid, plot(mixture, x_axis, y_axis, seed=6))  # the widgets reach every cell


def test_one_axis_makes_one_row_and_the_axis_wins_over_its_widget(mixture):
    grid = plot(mixture, axis("seed", "1, 2"), steps=2)
    cells = [[sampler_picture(mixture, seed=s, steps=2) for s in (1, 2)]]
    expected = labelled_grid(cells, x_title="seed", x_values=["1", "2"], y_title="", y_values=[""])
    assert torch.equal(pixels(expected), (grid[0] * 255).round().byte())


def test_a_diverged_cell_is_drawn_failed_and_the_others_are_walked(mixture, monkeypatch):
    class Diverging(Sampler):
        def sample(self, target, walk, *args, **kwargs):
            if walk == "er_sde":
                raise WalkDivergedError(walk, 1, 3.0)
            return super().sample(target, walk, *args, **kwargs)

    monkeypatch.setattr(xy_plot, "WalkSampler", Diverging)
    grid = plot(mixture, axis("walk", "euler, er_sde"), steps=2)
    monkeypatch.undo()
    cells = [[sampler_picture(mixture, walk="euler", steps=2), None]]
    expected = labelled_grid(cells, x_title="walk", x_values=["euler", "er_sde"], y_title="", y_values=[""])
    assert torch.equal(pixels(expected), (grid[0] * 255).round().byte())


@pytest.mark.parametrize("x, y, settings, words", [
    (("steps", "2, 3"), ("steps", "4"), {}, r"x_axis and y_axis both vary 'steps'"),
    (("sigma_min", "0.002, 50"), None, {"sigma_max": 10.0},
     r"the cell sigma_min=50: the sigma range is reversed: sigma_min 50(\.0)? is above sigma_max 10"),
    (("walk", "euler"), ("width", "32, 4096"), {}, r"the cell walk=euler, width=4096: 4096x32 px x batch 1 = "
                                                    r"131,072 pixels in one walk; the limit is 16,384"),
])
def test_a_bad_cell_stops_the_plot_before_the_first_walk(mixture, monkeypatch, x, y, settings, words):
    walked = []
    monkeypatch.setattr(xy_plot, "walk_cell", lambda *args: walked.append(args))
    with use_limits(max_pixels=128 * 128), pytest.raises(ValueError, match=r"XYPlotWalk: .*" + words):
        plot(mixture, axis(*x), axis(*y) if y else None, **settings)
    assert walked == []


def test_an_axis_value_made_elsewhere_is_checked_again_naming_the_axis(mixture):
    with pytest.raises(ValueError, match=r"XYPlotWalk: y_axis \(steps\): 0 is below the minimum 1"):
        plot(mixture, axis("walk", "euler"), xy_plot.XYAxis("steps", (2, 0)))
    with pytest.raises(ValueError, match=r"XYPlotWalk: x_axis must be linked to an XY Plot Axis output"):
        plot(mixture, types.SimpleNamespace(input="steps", values=(2,)))


# -- one progress bar; Cancel between and within cells --------------------------------------------------------
def test_headless_the_cells_report_to_one_bar(mixture):
    seen = []
    with use_progress(lambda done, total: seen.append((done, total))):
        plot(mixture, axis("steps", "2, 3"), axis("walk", "euler, euler_ancestral"))
    totals = {total for _, total in seen}
    assert totals == {2 * (2 + 3)}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == 10 and set(range(1, 11)) <= set(done)


def comfy_bar(fake_comfy, interrupt_at=None):
    """Record ComfyUI progress-bar updates; press Cancel once the bar shows ``interrupt_at``."""
    updates = []

    def bar(total):
        def update(value, total_, preview=None):
            updates.append((value, total_))
            if interrupt_at is not None and value >= interrupt_at:
                fake_comfy.model_management.interrupted = True
        return types.SimpleNamespace(update_absolute=update)

    fake_comfy.comfy.utils.ProgressBar = bar
    return updates


def counting_cells(monkeypatch):
    started, finished = [], []
    walk_cell = xy_plot.walk_cell

    def counted(*args):
        started.append(args[-1])
        picture = walk_cell(*args)
        finished.append(args[-1])
        return picture

    monkeypatch.setattr(xy_plot, "walk_cell", counted)
    return started, finished


def test_in_comfyui_one_bar_runs_over_all_cells(mixture, fake_comfy):
    updates = comfy_bar(fake_comfy)
    plot(mixture, axis("steps", "2, 3, 2"))
    assert {total for _, total in updates} == {7}
    values = [v for v, _ in updates]
    assert values == sorted(values) and values[-1] == 7


@pytest.mark.parametrize("press_at, walks_started", [(2, 1), (3, 2)])  # the first cell has 2 steps, the second 3
def test_cancel_stops_the_plot_between_and_within_cells(mixture, fake_comfy, monkeypatch, press_at, walks_started):
    updates = comfy_bar(fake_comfy, interrupt_at=press_at)
    started, finished = counting_cells(monkeypatch)
    with pytest.raises(RuntimeError, match="interrupted"):
        plot(mixture, axis("steps", "2, 3, 3"))
    assert len(started) == walks_started and len(finished) == 1  # Cancel at 3 stops the second walk inside
    assert max(v for v, _ in updates) == press_at  # the bar stays where the plot stopped


def test_on_a_model_target_the_previews_follow_the_one_bar(fake_comfy):
    model = cs.ModelPatcher("eps", 0.7)
    target = NODE_CLASS_MAPPINGS["TargetDistributionModel"]().make(model, cs.conditioning(0.6),
                                                                   cs.conditioning(0.0), vae=cs.VAE())[0]
    totals = []
    fake_comfy.latent_preview.prepare_callback = lambda model, steps, x0_output=None: (
        totals.append(steps) or (lambda step, x0, x, total: fake_comfy.latent_preview.steps.append((step, total))))
    grid = plot(target, axis("steps", "2, 3"), width=16, height=16)
    assert grid.ndim == 4 and grid.shape[-1] == 3
    assert set(totals) == {5} and fake_comfy.latent_preview.steps == [(k, 5) for k in range(5)]
