"""Reading the classic ComfyUI node interface: INPUT_TYPES entries as :class:`InputSpec`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

#: Input types the editor shows as widgets (besides combos).
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN"})
#: Widget names the editor gives a "control after generate" companion widget to.
SEED_NAMES = frozenset({"seed", "noise_seed"})
#: Values the editor stores for that companion widget.
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})


@dataclass(frozen=True)
class InputSpec:
    """One declared input: its name, type (``"COMBO"`` for a list of choices) and options."""

    name: str
    type: str
    options: Dict[str, Any] = field(default_factory=dict)
    category: str = "required"  # "required" | "optional"
    choices: Optional[Tuple[Any, ...]] = None  # only for combos

    @property
    def is_combo(self) -> bool:
        return self.choices is not None

    @property
    def is_widget(self) -> bool:
        """Shown as a widget in the editor (a socket only when linked)."""
        return self.is_combo or self.type in WIDGET_TYPES

    @property
    def force_input(self) -> bool:
        return bool(self.options.get("forceInput"))

    @property
    def control_widgets(self) -> int:
        """How many companion widgets the editor adds right after this one (0, 1 or 2).

        The ComfyUI frontend gives an INT widget a "control after generate" combo when its declaration says
        ``control_after_generate`` (true or a default mode) or, when the option is absent, when the input is
        named ``seed`` or ``noise_seed``; an explicit false turns it off. A combo declared with
        ``control_after_generate`` gets the control combo and a "control filter list" text widget. Other
        types never get one. Each companion keeps a place in ``widgets_values``.
        """
        flag = self.options.get("control_after_generate")
        if self.is_combo:
            return 2 if flag else 0
        if self.type == "INT":
            return int(bool(flag) if flag is not None else self.name in SEED_NAMES)
        return 0

    @property
    def has_control_widget(self) -> bool:
        """The editor stores an extra control value ("fixed", "randomize", ...) after this widget."""
        return self.control_widgets > 0

    @property
    def has_upload_widget(self) -> bool:
        """The editor stores an extra "upload" widget value after this one."""
        return bool(self.options.get("image_upload") or self.options.get("video_upload")
                    or self.options.get("audio_upload"))

    def allowed(self) -> str:
        """What values this input takes, in words."""
        if self.is_combo:
            return "one of " + _choices_text(self.choices)
        if self.type in ("INT", "FLOAT"):
            lo, hi = self.options.get("min"), self.options.get("max")
            kind = "an integer" if self.type == "INT" else "a number"
            if lo is not None and hi is not None:
                return f"{kind} in {lo}..{hi}"
            if lo is not None:
                return f"{kind} >= {lo}"
            if hi is not None:
                return f"{kind} <= {hi}"
            return kind
        if self.type == "BOOLEAN":
            return "true or false"
        if self.type == "STRING":
            return "a string"
        if self.type == "*":
            return "any value"
        return f"a link from {article(self.type)} {self.type} output"


def article(word: str) -> str:
    """ "an" before a vowel sound (an IMAGE, a LATENT)."""
    return "an" if word[:1].upper() in "AEIOU" else "a"


def _choices_text(choices, limit: int = 30) -> str:
    shown = ", ".join(repr(c) for c in list(choices)[:limit])
    if len(choices) > limit:
        shown += f", ... ({len(choices)} choices)"
    return f"[{shown}]" if choices else "[] (no choices available)"


def _parse_entry(name: str, entry: Any, category: str) -> InputSpec:
    if isinstance(entry, str):  # a bare type name
        entry = (entry,)
    if not isinstance(entry, (tuple, list)) or not entry:
        raise TypeError(f"input {name!r}: INPUT_TYPES entry must be (TYPE, options), got {entry!r}")
    kind = entry[0]
    options = dict(entry[1]) if len(entry) > 1 and isinstance(entry[1], dict) else {}
    if isinstance(kind, (list, tuple)):
        return InputSpec(name, "COMBO", options, category, tuple(kind))
    if kind == "COMBO":  # newer style: ("COMBO", {"options": [...]})
        return InputSpec(name, "COMBO", options, category, tuple(options.get("options", ())))
    return InputSpec(name, str(kind), options, category)


def input_types(cls: type) -> Dict[str, Any]:
    """``cls.INPUT_TYPES()`` as a dict (a node without inputs may omit parts)."""
    declared = cls.INPUT_TYPES() if hasattr(cls, "INPUT_TYPES") else {}
    return declared or {}


def input_specs(cls: type) -> Dict[str, InputSpec]:
    """Required then optional inputs of a node class, in declared order."""
    declared = input_types(cls)
    specs: Dict[str, InputSpec] = {}
    for category in ("required", "optional"):
        for name, entry in (declared.get(category) or {}).items():
            specs[name] = _parse_entry(name, entry, category)
    return specs


def hidden_inputs(cls: type) -> Dict[str, str]:
    """Hidden inputs: argument name -> kind ("PROMPT", "EXTRA_PNGINFO", "UNIQUE_ID", ...)."""
    hidden = input_types(cls).get("hidden") or {}
    return {name: (kind[0] if isinstance(kind, (tuple, list)) else kind) for name, kind in hidden.items()}


def return_types(cls: type) -> Tuple[Any, ...]:
    return tuple(getattr(cls, "RETURN_TYPES", ()) or ())


def is_output_node(cls: type) -> bool:
    return bool(getattr(cls, "OUTPUT_NODE", False))


def types_match(received: Any, expected: InputSpec) -> bool:
    """Whether an output of type ``received`` may feed ``expected`` ("*" and "A,B" unions allowed)."""
    if expected.is_combo:
        return received in ("COMBO", "*") or isinstance(received, (list, tuple))
    if not isinstance(received, str):
        return False
    if received == "*" or expected.type == "*" or received == expected.type:
        return True
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.type.split(",")}
    return bool(got & want)


_TYPE_DEFAULTS = {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}


def widget_default(spec: "InputSpec"):
    """The value a widget starts with in the editor: its declared default, else a combo's first choice, else its
    type's zero."""
    if "default" in spec.options:
        return spec.options["default"]
    if spec.is_combo:
        return spec.choices[0] if spec.choices else None
    return _TYPE_DEFAULTS.get(spec.type)
