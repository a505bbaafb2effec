"""Midjourney-style controls built from the pack's own nodes: variations, seed-space wander, a grid with
chaos / stylize / tile / aspect knobs, and pan / zoom-out.

Each node only sets inputs of the existing nodes (WalkSampler, GuidanceStepEnergy, StyleEncoder) and calls
them; every knob's tooltip says what it maps to. They work on every kind of target: pixel targets (patch,
style energy, own models, mixtures) and ComfyUI MODEL targets (through the VAE connected to the target).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..walk_core import GuidanceChain
from .comfy_model import source_of
from .guidance_energy import GuidanceStepEnergy
from .inputs import pick
from .sampler import WalkSampler
from .style import StyleEncoder
from .types import CATEGORY, WALK_GUIDANCE, WALK_TARGET
from .walk_limits import declared_problem, walk_problem

VARY = {"subtle": 0.35, "strong": 0.75}  # denoise: how much of the walk runs from the source picture
ASPECTS = {"1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4), "3:2": (3, 2), "2:3": (2, 3), "16:9": (16, 9),
           "9:16": (9, 16), "2:1": (2, 1), "1:2": (1, 2)}
DIRECTIONS = ("left", "right", "up", "down", "zoom_out")
WALK_DEFAULTS = dict(sigma_max=0.0, sigma_min=0.0, eta=1.0, s_noise=1.0, churn=40.0, snr=0.0, corrector_steps=1,
                     order=0, trajectory_every=0)
GUIDANCE_TOOLTIP = "Optional guidance chain (Guidance Step nodes), passed to the walk unchanged."


def walk_inputs(**defaults):
    """The walk inputs every control node shares (from the shared declarations)."""
    return pick("walk", "schedule", "steps", "seed", **{k: {"default": v} for k, v in defaults.items()})


def run(target, walk, schedule, steps, seed, guidance=None, **inputs):
    """WalkSampler with the controls' fixed settings (s_noise: the one the target is best walked with, e.g. the
    patch target's 1.15): (IMAGE, LATENT)."""
    settings = {**WALK_DEFAULTS, "s_noise": target.walk_s_noise, "batch_size": 1, "width": 64, "height": 64,
                "denoise": 1.0, **inputs}
    image, latent, *_ = WalkSampler().sample(target, walk, schedule, steps, seed, guidance=guidance, **settings)
    return image, latent


def encode(target, image, who: str) -> dict:
    """IMAGE -> the MODEL target's LATENT through the VAE connected to the target."""
    source = source_of(target)
    if source.vae is None:
        raise ValueError(f"{who}: the MODEL target has no VAE to encode the picture with; connect one to "
                         "TargetDistributionModel's 'vae' input (or give a LATENT)")
    return {"samples": source.vae.encode(image[..., :3])}


def image_size(image=None, latent=None, target=None):
    """(width, height) in pixels of a picture or a latent (latent cells times the target's cell size)."""
    if latent is not None:
        factor = target.info.get("pixels_per_latent", 1) if isinstance(target.info, dict) else 1
        return int(latent["samples"].shape[-1]) * factor, int(latent["samples"].shape[-2]) * factor
    return int(image.shape[2]), int(image.shape[1])


class WalkVary:
    DESCRIPTION = (
        "Variations of a picture: re-walks it from the noise level set by the strength -- 'subtle' keeps the "
        "composition and changes details, 'strong' keeps the broad layout and colours and changes much more (img2img "
        "on the walk: WalkSampler with the picture as init and denoise 0.35 or 0.75, or your own). Any IMAGE, or a "
        "LATENT for MODEL targets.")
    CATEGORY = f"{CATEGORY}/controls"
    RETURN_TYPES = ("IMAGE", "LATENT")
    RETURN_NAMES = ("images", "latent")
    OUTPUT_TOOLTIPS = ("The variations (count pictures).", "The same as a LATENT, with per-item seeds.")
    FUNCTION = "vary"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "target": (WALK_TARGET, {"tooltip": "The distribution the variations are walked towards."}),
                "strength": (list(VARY), {"default": "subtle", "tooltip": (
                    "subtle = denoise 0.35 (details change, composition stays); strong = denoise 0.75 (only the "
                    "broad layout and colours stay).")}),
                "amount": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                    "Your own denoise instead of the strength preset (0 = use the preset): the fraction of the "
                    "walk run from the picture.")}),
                "count": ("INT", {"default": 4, "min": 1, "max": 64, "tooltip": (
                    "How many variations (a batch; item i uses seed + i).")}),
                **walk_inputs(steps=30),
            },
            "optional": {
                "image": ("IMAGE", {"tooltip": "The picture to vary (the first of a batch)."}),
                "latent": ("LATENT", {"tooltip": "Or a LATENT to vary (MODEL targets; wins over image)."}),
                "guidance": (WALK_GUIDANCE, {"tooltip": GUIDANCE_TOOLTIP}),
            },
        }

    def vary(self, target, strength, amount, count, walk, schedule, steps, seed, image=None, latent=None,
             guidance=None):
        if strength not in VARY:
            raise ValueError(f"WalkVary: strength={strength!r}; expected one of {', '.join(VARY)}")
        if image is None and latent is None:
            raise ValueError("WalkVary: neither image nor latent is connected; connect the picture to vary")
        denoise = amount if amount > 0 else VARY[strength]
        if source_of(target) is not None and latent is None:
            latent = encode(target, image[:1], "WalkVary")
        width, height = image_size(image, latent, target)
        inputs = {"init_latent": {"samples": latent["samples"][:1]}} if latent is not None else {
            "init_image": image[:1]}
        return run(target, walk, schedule, steps, seed, guidance, batch_size=count, width=width, height=height,
                   denoise=denoise, **inputs)


class WalkWander:
    DESCRIPTION = (
        "Seed-space wander: N related pictures that change smoothly. The noise itself takes a random walk on the "
        "sphere -- each frame's noise (the start and every step's) is cos(a) x the previous frame's + sin(a) x "
        "fresh noise, a = step x 90 degrees -- so neighbouring frames differ a little and far ones a lot. Output "
        "an IMAGE batch; Save Animated WEBP makes it an animation.")
    CATEGORY = f"{CATEGORY}/controls"
    RETURN_TYPES = ("IMAGE", "LATENT")
    RETURN_NAMES = ("frames", "latent")
    OUTPUT_TOOLTIPS = ("The frames, in order.", "The same as a LATENT.")
    FUNCTION = "wander"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "target": (WALK_TARGET, {"tooltip": "The distribution every frame is walked towards."}),
                "frames": ("INT", {"default": 16, "min": 2, "max": 256, "tooltip": "How many frames."}),
                "step": ("FLOAT", {"default": 0.1, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip": (
                    "How far the noise moves per frame: the angle a = step x 90 degrees between neighbours' noise "
                    "(0.05 = slow drift, 1 = unrelated frames).")}),
                **walk_inputs(steps=30),
                **pick("width", "height"),
            },
            "optional": {"guidance": (WALK_GUIDANCE, {"tooltip": GUIDANCE_TOOLTIP})},
        }

    @classmethod
    def VALIDATE_LITERALS(cls, frames=None, width=None, height=None, steps=None, **_others):
        """Headless only: pixels and the walk's memory (walk_core.limits), one walk of ``frames`` pictures. Not a
        VALIDATE_INPUTS: ComfyUI would repeat its refusal under every input listed and skip their min/max; in
        ComfyUI the node checks the same before it allocates anything."""
        return walk_problem(cls, "WalkWander", width=width, height=height, batch=frames, steps=steps,
                            batch_name="frames")

    def wander(self, target, frames, step, walk, schedule, steps, seed, width, height, guidance=None):
        return run(target, walk, schedule, steps, seed, guidance, batch_size=frames, width=width, height=height,
                   wander=step)


def grid_picture(images: torch.Tensor) -> torch.Tensor:
    """An IMAGE batch [N, H, W, C] as one mosaic [1, rows*H, cols*W, C] (cols = ceil(sqrt N))."""
    n, h, w, c = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = torch.ones(rows * h, cols * w, c, dtype=images.dtype)
    for i in range(n):
        r, k = divmod(i, cols)
        out[r * h:(r + 1) * h, k * w:(k + 1) * w] = images[i]
    return out[None]


def aspect_size(aspect: str, size: int, multiple: int = 16) -> tuple:
    """(width, height) with the long side ``size`` and the ratio ``aspect``, both multiples of ``multiple``."""
    if aspect not in ASPECTS:
        raise ValueError(f"WalkGrid: aspect={aspect!r}; expected one of {', '.join(ASPECTS)}")
    a, b = ASPECTS[aspect]
    long_side = max(multiple, size // multiple * multiple)
    short = max(multiple, round(long_side * min(a, b) / max(a, b) / multiple) * multiple)
    return (long_side, short) if a >= b else (short, long_side)


class WalkGrid:
    DESCRIPTION = (
        "A grid of pictures with the familiar knobs -- chaos, stylize with a style reference, tile, aspect ratio -- "
        "each mapped onto the pack's own nodes (see the tooltips). Outputs the grid as one picture and the items as "
        "a batch whose LATENT records each item's seed; 'item' remakes one item of the grid alone.")
    CATEGORY = f"{CATEGORY}/controls"
    RETURN_TYPES = ("IMAGE", "IMAGE", "LATENT")
    RETURN_NAMES = ("grid", "images", "latent")
    OUTPUT_TOOLTIPS = ("The items side by side (2 x 2 for four).", "The items as a batch.",
                       "The items as a LATENT: 'seeds' (item i = seed + i), 'noise_share' and 'share_seed'.")
    FUNCTION = "grid"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "target": (WALK_TARGET, {"tooltip": "The distribution the grid's pictures come from."}),
                "chaos": ("INT", {"default": 0, "min": 0, "max": 100, "tooltip": (
                    "How different the items are, 0-100. Maps to WalkSampler's noise_share = 0.85 x (1 - chaos/100) "
                    "(the part of the noise all items share) and eta = 0.5 + 0.5 x chaos/100 (the fresh noise of "
                    "each ancestral/pc step). 0 = variations on one theme, 100 = independent pictures.")}),
                "stylize": ("INT", {"default": 100, "min": 0, "max": 1000, "tooltip": (
                    "How strongly the style reference is followed, 0-1000. Maps to a Guidance Step: Energy (style, "
                    "from Style Encoder on style_image) with weight = stylize / 500, acting over the first 90 % of "
                    "the walk. Unused without a style_image.")}),
                "tile": ("BOOLEAN", {"default": False, "tooltip": (
                    "Seamless tiles: the target with periodic boundaries (patch targets: tileable; style energy: "
                    "measured across the wrapped edges; own models and MODEL targets: circular padding of the "
                    "network's convolutions, and of the VAE's when it decodes).")}),
                "aspect": (list(ASPECTS), {"default": "1:1", "tooltip": (
                    "Aspect ratio (width:height) -> WalkSampler's width and height, long side = size.")}),
                "size": ("INT", {"default": 256, "min": 16, "max": 4096, "step": 16, "tooltip": (
                    "The long side in pixels (multiples of 16).")}),
                "items": ("INT", {"default": 4, "min": 1, "max": 16, "tooltip": "How many pictures in the grid."}),
                "item": ("INT", {"default": -1, "min": -1, "max": 15, "tooltip": (
                    "-1 = the whole grid; k = only item k (counting from 0), the same picture as in the grid "
                    "(seed + k with the grid's shared noise).")}),
                **walk_inputs(steps=30),
            },
            "optional": {
                "style_image": ("IMAGE", {"tooltip": (
                    "Style reference (one or several pictures): Style Encoder (random encoder, Gram statistics).")}),
                "guidance": (WALK_GUIDANCE, {"tooltip": GUIDANCE_TOOLTIP + " The style term is added after it."}),
            },
        }

    @classmethod
    def VALIDATE_LITERALS(cls, size=None, aspect=None, items=None, steps=None, **_others):
        """Headless only: pixels and the walk's memory (walk_core.limits), one walk of ``items`` pictures of the
        aspect's size (see WalkWander.VALIDATE_LITERALS)."""
        problem = walk_problem(cls, "WalkGrid", batch=items, steps=steps, batch_name="items")
        if problem is not True or size is None or aspect is None:
            return problem
        problem = declared_problem(cls, size=size, aspect=aspect)
        if problem:
            return problem
        width, height = aspect_size(aspect, size)
        return walk_problem(cls, "WalkGrid", width=width, height=height, batch=items, steps=steps,
                            batch_name="items")

    def grid(self, target, chaos, stylize, tile, aspect, size, items, item, walk, schedule, steps, seed,
             style_image=None, guidance=None):
        if not -1 <= item < items:
            raise ValueError(f"WalkGrid: item={item}; expected -1 (the whole grid) or 0..{items - 1}")
        width, height = aspect_size(aspect, size)
        if tile:
            if target.tiled is None:
                raise ValueError(f"WalkGrid: tile is on, but target {target.name!r} cannot tile (patch, style-energy, "
                                 "own-model and MODEL targets can)")
            target = target.at_size(width, height).tiled()
        chain = guidance or GuidanceChain()
        if style_image is not None and stylize > 0:
            (style,) = StyleEncoder().encode(style_image, "random", "gram", "", 0)
            (chain,) = GuidanceStepEnergy().add("style", stylize / 500.0, 1, 0.0, 0.0, 0.9, "constant",
                                                guidance=chain, style=style)
        share = 0.85 * (1.0 - chaos / 100.0)
        eta = 0.5 + 0.5 * chaos / 100.0
        first, count = (seed, items) if item < 0 else (seed + item, 1)
        images, latent = run(target, walk, schedule, steps, first, chain, batch_size=count, width=width,
                             height=height, eta=eta, noise_share=share, share_seed=seed)
        return grid_picture(images), images, latent


FILLS = ("reflect", "mean")


def reflect_fill(image: torch.Tensor, x: int, y: int, height: int, width: int) -> torch.Tensor:
    """``image`` [1, h, w, C] mirrored outwards across its edges until it covers a height x width canvas on which
    it sits at (x, y) -- in rounds, each at most the current size minus one (what reflection allows)."""
    pic = image.permute(0, 3, 1, 2)
    left, top = x, y
    right, bottom = width - pic.shape[-1] - x, height - pic.shape[-2] - y
    while left or right or top or bottom:
        lw, rw = min(left, pic.shape[-1] - 1), min(right, pic.shape[-1] - 1)
        th, bh = min(top, pic.shape[-2] - 1), min(bottom, pic.shape[-2] - 1)
        pic = F.pad(pic, (lw, rw, th, bh), mode="reflect")
        left, right, top, bottom = left - lw, right - rw, top - th, bottom - bh
    return pic.permute(0, 2, 3, 1)


def canvas(image: torch.Tensor, direction: str, amount: float, multiple: int, fill: str = "reflect") -> tuple:
    """(canvas IMAGE [1, H', W', C], MASK [1, H', W'] with 1 where new, (x, y) of the source on the canvas). The
    new part starts as the picture mirrored across its edges (``fill`` reflect) or as its mean colour."""
    _, h, w, c = image.shape
    if not 0.0 < amount <= 3.0:
        raise ValueError(f"WalkOutpaint: amount={amount}; expected a fraction of the side in (0, 3]")
    if direction == "zoom_out":  # amount added in all: the canvas is (1 + amount) times the picture
        new_w = max(w + multiple, math.ceil(w * (1 + amount) / multiple) * multiple)
        new_h = max(h + multiple, math.ceil(h * (1 + amount) / multiple) * multiple)
        x, y = (new_w - w) // 2, (new_h - h) // 2
    else:
        side = w if direction in ("left", "right") else h
        added = max(multiple, math.ceil(side * amount / multiple) * multiple)
        new_w, new_h = (w + added, h) if direction in ("left", "right") else (w, h + added)
        x = added if direction == "left" else 0
        y = added if direction == "up" else 0
    if fill not in FILLS:
        raise ValueError(f"WalkOutpaint: fill={fill!r}; expected one of {', '.join(FILLS)}")
    if fill == "reflect":
        out = reflect_fill(image[:1], x, y, new_h, new_w).clone()
    else:
        out = image[0].reshape(-1, c).mean(0).expand(1, new_h, new_w, c).clone()
    out[0, y:y + h, x:x + w] = image[0]
    mask = torch.ones(1, new_h, new_w)
    mask[0, y:y + h, x:x + w] = 0.0
    return out, mask, (x, y)


class WalkOutpaint:
    DESCRIPTION = (
        "Pan (extend left / right / up / down) or zoom out: the picture is placed on a larger canvas, the new part "
        "filled with the picture mirrored across its edges, and walked from that fill while the known part is "
        "re-noised to every step's level and kept (a masked walk: WalkSampler with the canvas as init, a mask and "
        "denoise). For MODEL targets the canvas goes through the target's VAE and the mask becomes the LATENT's "
        "noise mask.")
    CATEGORY = f"{CATEGORY}/controls"
    RETURN_TYPES = ("IMAGE", "MASK", "LATENT")
    RETURN_NAMES = ("image", "mask", "latent")
    OUTPUT_TOOLTIPS = ("The extended picture.", "Where it was walked (1) and kept (0).", "The result as a LATENT.")
    FUNCTION = "extend"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "target": (WALK_TARGET, {"tooltip": "The distribution the new part is walked towards."}),
                "image": ("IMAGE", {"tooltip": "The picture to extend (the first of a batch)."}),
                "direction": (list(DIRECTIONS), {"default": "right", "tooltip": (
                    "left/right/up/down: pan, adding to that side; zoom_out: the picture shrinks into the middle "
                    "of a larger canvas (kept at its own resolution).")}),
                "amount": ("FLOAT", {"default": 0.5, "min": 0.05, "max": 3.0, "step": 0.05, "tooltip": (
                    "How much is added, as a fraction of the side: pan 0.5 = half as much again on that side; "
                    "zoom_out 1 = a canvas twice as wide and high (a 2x zoom out). Rounded up to whole 8 px.")}),
                "fill": (list(FILLS), {"default": "reflect", "tooltip": (
                    "What the new part starts from: reflect = the picture mirrored across its edges (the layout "
                    "continues: sky stays on top), mean = its mean colour (only the walk decides the layout).")}),
                "denoise": ("FLOAT", {"default": 0.6, "min": 0.05, "max": 1.0, "step": 0.01, "tooltip": (
                    "How much of the walk the new part runs from the fill (WalkSampler's denoise): 0.6 keeps the "
                    "fill's broad layout and makes new content; 1 starts from pure noise (the fill is ignored).")}),
                **walk_inputs(steps=30),
            },
            "optional": {"guidance": (WALK_GUIDANCE, {"tooltip": GUIDANCE_TOOLTIP})},
        }

    def extend(self, target, image, direction, amount, fill, denoise, walk, schedule, steps, seed, guidance=None):
        if direction not in DIRECTIONS:
            raise ValueError(f"WalkOutpaint: direction={direction!r}; expected one of {', '.join(DIRECTIONS)}")
        model = source_of(target) is not None
        picture, mask, _ = canvas(image[:1, :, :, :3], direction, amount, 8, fill)
        height, width = picture.shape[1:3]
        if model:
            latent = encode(target, picture, "WalkOutpaint")
            out, result = run(target, walk, schedule, steps, seed, guidance, width=width, height=height,
                              init_latent=latent, mask=mask, denoise=denoise)
        else:
            out, result = run(target, walk, schedule, steps, seed, guidance, width=width, height=height,
                              init_image=picture, mask=mask, denoise=denoise)
        return out, mask, result
