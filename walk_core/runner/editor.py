"""What the ComfyUI editor makes of a node declaration: the values it saves, the size it draws.

Rules read from the ComfyUI web frontend (Comfy-Org/ComfyUI_frontend, the 1.2x line that ComfyUI 0.3.6x ships)
and its LiteGraph; written here from their behaviour, not their code:

- **Widgets.** An input becomes a widget when its type has a widget (INT, FLOAT, STRING, BOOLEAN, a list of
  choices); any other type is a socket. ``forceInput`` makes a widget type a socket only (older editors still
  made a hidden widget for it, which kept a place in ``widgets_values``). Widgets are created in declared
  order, required inputs first, then optional ones.
- **Companions.** Right after its widget the editor adds the companions of :attr:`InputSpec.control_widgets`
  (the "control after generate" combo of an INT seed, plus a filter text for a combo) and, for an
  ``image_upload`` combo, the upload button. Each companion keeps its own place.
- **widgets_values** is the value of every widget in that order, companions included: a seed is followed by
  ``"fixed"`` / ``"increment"`` / ``"decrement"`` / ``"randomize"``. On load the editor assigns the list by
  position, so one value missing shifts every later one.
- **Size** (LiteGraph's ``computeSize``; on load a node is drawn at the larger of its saved size and this):
  one 20 px row per socket (the larger of inputs and outputs, at least one), then 20 px + 4 px per widget
  (a multiline text box: 50 px + 4 px), 8 px under the widgets when there are any, and a 6 px margin. The
  30 px title bar is drawn *above* the node's ``pos``. Width: the widest of the socket labels (inputs +
  outputs + 2 x 20 px), the widest widget label + 104 px, the title + 40 px, and 140 px (210 px with
  widgets); text is 14 px, about 8.4 px per character.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, List, Sequence, Tuple

from .spec import InputSpec

TITLE_HEIGHT = 30  # LiteGraph.NODE_TITLE_HEIGHT, drawn above pos
SLOT_HEIGHT = 20  # LiteGraph.NODE_SLOT_HEIGHT, one row per socket
WIDGET_HEIGHT = 20  # LiteGraph.NODE_WIDGET_HEIGHT
WIDGET_GAP = 4  # under every widget
WIDGETS_PAD = 8  # once under all widgets
MARGIN = 6  # at the bottom of every node
TEXT_BOX_HEIGHT = 50  # a multiline text widget's least height
NODE_WIDTH = 140  # LiteGraph.NODE_WIDTH; 1.5 x that for a node with widgets
TEXT_SIZE = 14  # LiteGraph.NODE_TEXT_SIZE; a character is estimated at 0.6 x that
WIDGET_PADDING = 42 + 2 * (15 + 6 + 10)  # least value width + 2 x (margin + arrow margin + arrow width)

ROLES = ("value", "control", "filter", "upload")


@dataclass(frozen=True)
class WidgetSlot:
    """One place in ``widgets_values``: the input it belongs to and what it holds (one of :data:`ROLES`)."""

    name: str
    role: str


def widget_slots(specs: Iterable[InputSpec], *, force_input_widgets: bool = False) -> List[WidgetSlot]:
    """The places of ``widgets_values`` in order, as the editor saves them for these declared inputs.

    ``force_input_widgets``: count a place for ``forceInput`` inputs, as editors before the widget
    sockets did.
    """
    slots: List[WidgetSlot] = []
    for spec in specs:
        if not spec.is_widget or (spec.force_input and not force_input_widgets):
            continue
        slots.append(WidgetSlot(spec.name, "value"))
        companions = spec.control_widgets
        if companions:
            slots.append(WidgetSlot(spec.name, "control"))
        if companions > 1:
            slots.append(WidgetSlot(spec.name, "filter"))
        if spec.has_upload_widget:
            slots.append(WidgetSlot(spec.name, "upload"))
    return slots


def text_width(text: str) -> float:
    """LiteGraph's estimate of a label's width when no canvas measures it."""
    return TEXT_SIZE * 0.6 * len(text or "")


def node_size(specs: Sequence[InputSpec], outputs: Sequence[str], title: str) -> Tuple[int, int]:
    """``(width, height)`` the editor draws a node at (without its title bar) when nothing makes it larger.

    ``specs``: the declared inputs; ``outputs``: the output names.
    """
    specs = list(specs)
    sockets = [s.name for s in specs if not s.is_widget or s.force_input]
    widget_specs = [s for s in specs if s.is_widget and not s.force_input]
    slots = widget_slots(specs)
    rows = max(len(sockets), len(outputs), 1)

    multiline = {s.name for s in widget_specs if s.type == "STRING" and s.options.get("multiline")}
    widgets_height = sum((TEXT_BOX_HEIGHT if slot.role == "value" and slot.name in multiline else WIDGET_HEIGHT)
                         + WIDGET_GAP for slot in slots)
    if slots:
        widgets_height += WIDGETS_PAD
    height = rows * SLOT_HEIGHT + widgets_height + MARGIN

    in_width = max((text_width(n) for n in sockets), default=0.0)
    out_width = max((text_width(n) for n in outputs), default=0.0)
    slots_width = in_width + out_width + 2 * SLOT_HEIGHT + (5 if in_width and out_width else 0)
    widget_width = max((text_width(s.name) for s in widget_specs), default=0.0)
    if widget_width:
        widget_width += WIDGET_PADDING
    title_width = TITLE_HEIGHT * 1.33 + text_width(title)
    least = NODE_WIDTH * (1.5 if slots else 1)
    width = max(slots_width, widget_width, title_width, least)
    return math.ceil(width), math.ceil(height)

