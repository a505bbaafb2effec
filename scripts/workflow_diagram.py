"""A workflow's graph drawn as a thumbnail that reads at the template browser's size (about 300 px wide).

The graph flows top to bottom in layers: each node one layer below its deepest input, a source just above its
nearest consumer, the editor's left-to-right order within a layer. Titles are short (no parenthetical,
"Target: MODEL", "Prompt") and drawn large: at 720 px wide the text is up to 30 px (less where a layer's words
would not fit across, never under 15), 9-12 px on a 300 px card. Notes and the Save/Preview nodes at the ends
are left out; the header says what the workflow needs. The picture is square (or taller), so a card that crops
to a square keeps all of it.
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Sequence, Tuple

from PIL import Image, ImageDraw, ImageFont

WIDTH = 720
MARGIN, GAP, LAYER_GAP, PAD = 14, 12, 34, 8
MAX_BOX = 300  # the widest a box gets (a layer of one node is not stretched across the picture)
TITLE_SIZE, NEEDS_SIZE, NODE_SIZES = 28, 20, range(30, 14, -1)
NOTES = {"Note", "MarkdownNote"}
SINKS = {"SaveImage", "PreviewImage", "SaveAnimatedWEBP"}  # every example ends in one: left out for room
#: ComfyUI's own nodes by the short name a thumbnail has room for
SHORT = {"CheckpointLoaderSimple": "Checkpoint", "CLIPTextEncode": "Prompt", "CLIPVisionLoader": "CLIP Vision",
         "SaveImage": "Save", "PreviewImage": "Preview", "EmptyLatentImage": "Empty Latent",
         "BasicScheduler": "Scheduler", "RandomNoise": "Noise", "SamplerCustomAdvanced": "Sampler Custom Advanced",
         "KSamplerSelect": "KSampler Select", "CFGGuider": "CFG Guider"}
BACKGROUND, INK, NEEDS_INK, WIRE = (30, 30, 34), (240, 240, 240), (225, 205, 120), (200, 170, 80)
PACK_FILL, COMFY_FILL, OUTLINE = (52, 92, 150), (78, 78, 86), (220, 220, 220)


def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # old Pillow or no FreeType: the small bitmap font
        return ImageFont.load_default()


def short_title(node: Mapping, display: Mapping[str, str]) -> str:
    """What the box says: the node's own title, else a short form of its display name."""
    if node.get("title"):
        return node["title"]
    kind = node["type"]
    if kind in SHORT:
        return SHORT[kind]
    name = display.get(kind, kind)
    target = re.match(r"Target Distribution \((.+)\)$", name)
    if target:
        return f"Target: {target.group(1)}"
    return re.sub(r"\s*\(.*\)$", "", name).replace("Guidance Step: ", "Guidance: ")


def layers(ids: Sequence[int], wires: Sequence[Tuple[int, int]]) -> Dict[int, int]:
    """Layer of each node: one below its deepest input; a source just above its nearest consumer."""
    inputs = {i: [s for s, d in wires if d == i] for i in ids}
    depth: Dict[int, int] = {}

    def deep(i: int, seen=()) -> int:
        if i not in depth:
            if i in seen:  # a cycle: the editor would refuse it; draw it flat
                return 0
            depth[i] = 1 + max((deep(s, seen + (i,)) for s in inputs[i]), default=-1)
        return depth[i]

    for i in ids:
        deep(i)
    for i in ids:
        consumers = [depth[d] for s, d in wires if s == i]
        if not inputs[i] and consumers:
            depth[i] = max(0, min(consumers) - 1)
    return depth


def wrap(draw: ImageDraw.ImageDraw, text: str, width: float, face) -> List[str]:
    """``text`` in lines no wider than ``width`` (a word longer than that gets a line of its own)."""
    lines: List[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=face) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def fit_layers(draw, titles: Mapping[int, str], rows: Sequence[Sequence[int]]):
    """(font size, width of each box): the largest size at which every layer's boxes, each as wide as its longest
    word, fit across the picture; the room left in a layer shared out, up to MAX_BOX a box."""
    room = WIDTH - 2 * MARGIN
    for size in NODE_SIZES:
        face = font(size)
        need = {i: 2 * PAD + max(draw.textlength(word, font=face) for word in titles[i].split())
                for row in rows for i in row}
        if all(sum(need[i] for i in row) + GAP * (len(row) - 1) <= room for row in rows) or size == NODE_SIZES[-1]:
            widths = {}
            for row in rows:
                spare = (room - GAP * (len(row) - 1) - sum(need[i] for i in row)) / len(row)
                widths.update({i: min(max(need[i] + spare, need[i]), max(MAX_BOX, need[i])) for i in row})
            return size, widths


def diagram_image(data: Mapping, display: Mapping[str, str], pack_types, needs: str) -> Image.Image:
    """The graph of ``data`` (an editor-format workflow): pack nodes blue, ComfyUI's grey, wires gold."""
    nodes = {n["id"]: n for n in data["nodes"] if n["type"] not in NOTES | SINKS}
    wires = [(link[1], link[3]) for link in data["links"] if link[1] in nodes and link[3] in nodes]
    layer = layers(list(nodes), wires)
    rows = [sorted((i for i in nodes if layer[i] == k), key=lambda i: (nodes[i]["pos"][1], i))
            for k in range(max(layer.values()) + 1)]
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    title_face, needs_face = font(TITLE_SIZE), font(NEEDS_SIZE)
    titles = {i: short_title(n, display) for i, n in nodes.items()}
    size, widths = fit_layers(scratch, titles, rows)
    node_face, line = font(size), round(size * 1.15)
    labels = {i: wrap(scratch, title, widths[i] - 2 * PAD, node_face) for i, title in titles.items()}
    heading = wrap(scratch, data["extra"]["title"].split(" (needs ")[0], WIDTH - 2 * MARGIN, title_face)
    needed = wrap(scratch, needs, WIDTH - 2 * MARGIN, needs_face)
    top = MARGIN + len(heading) * round(TITLE_SIZE * 1.2) + len(needed) * round(NEEDS_SIZE * 1.2) + 20
    row_heights = [max(len(labels[i]) for i in row) * line + 2 * PAD for row in rows]
    # layers spread over a square picture's height (wires get longer, not the text smaller), within limits
    spread = (WIDTH - MARGIN - top - sum(row_heights)) / max(len(rows) - 1, 1)
    gap = min(max(spread, LAYER_GAP), 3 * LAYER_GAP)
    body = sum(row_heights) + gap * (len(rows) - 1)
    height = max(round(top + body + MARGIN), WIDTH)  # square at least: a card that crops to a square loses nothing
    boxes = {}
    y = top + (height - MARGIN - top - body) / 2
    for row, row_height in zip(rows, row_heights):
        x = (WIDTH - sum(widths[i] for i in row) - GAP * (len(row) - 1)) / 2
        for i in row:
            boxes[i] = (x, y, x + widths[i], y + row_height)
            x += widths[i] + GAP
        y += row_height + gap

    img = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    y = MARGIN
    for text in heading:
        draw.text((MARGIN, y), text, fill=INK, font=title_face)
        y += round(TITLE_SIZE * 1.2)
    for text in needed:
        draw.text((MARGIN, y), text, fill=NEEDS_INK, font=needs_face)
        y += round(NEEDS_SIZE * 1.2)
    for source, target in wires:  # under the boxes
        a, b = boxes[source], boxes[target]
        draw.line([((a[0] + a[2]) / 2, a[3]), ((b[0] + b[2]) / 2, b[1])], fill=WIRE, width=3)
    for i, node in nodes.items():
        box = boxes[i]
        fill = PACK_FILL if node["type"] in pack_types else COMFY_FILL
        draw.rounded_rectangle(box, radius=8, fill=fill, outline=OUTLINE, width=2)
        lines = labels[i]
        first = (box[1] + box[3]) / 2 - (len(lines) - 1) * line / 2
        for row, text in enumerate(lines):
            draw.text(((box[0] + box[2]) / 2, first + row * line), text, fill=INK, font=node_face, anchor="mm")
    return img
