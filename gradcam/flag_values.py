"""The command line's value types: each turns a flag's text into its value, or says in one line what
was expected (argparse reports it as `argument --flag: ...`)."""

from __future__ import annotations

import argparse
import functools
import math


def class_names(text: str) -> list[str]:
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r}: expected class names in model output order, comma separated")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(twice)} named twice; each class needs its own name")
    return names


def shapes(text: str) -> list[tuple[int, int]]:
    """frames x columns per DSP block, comma separated: 49x13,99x40."""
    try:
        shapes = [tuple(int(n) for n in part.lower().split("x")) for part in text.split(",")]
    except ValueError:
        shapes = []
    if not shapes or any(len(shape) != 2 or min(shape) < 1 for shape in shapes):
        raise argparse.ArgumentTypeError(f"{text!r}: expected frames x columns per DSP block, as 49x13,99x40")
    return shapes


def number(text: str, kind: type = float, low: float = 0.0, high: float = math.inf, low_open: bool = False):
    """A finite number of `kind` in [low, high] ((low, high] when low_open)."""
    noun = "an integer" if kind is int else "a number"
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
    below = value <= low if low_open else value < low
    if not math.isfinite(value) or below or value > high:
        where = f"{'>' if low_open else '>='} {low:g}" if high == math.inf else f"from {low:g} to {high:g}"
        raise argparse.ArgumentTypeError(f"{text} is out of range: expected {noun} {where}")
    return value


def switch(text: str) -> bool:
    """On or off: 1/0, true/false, yes/no, on/off (Studio passes a boolean parameter as 1 or 0)."""
    value = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
    if text.strip().lower() not in value:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 1 or 0 (on or off)")
    return value[text.strip().lower()]


def bounded(kind: type = float, low: float = 0.0, high: float = math.inf, low_open: bool = False):
    """An argparse type: `number` with these bounds."""
    return functools.partial(number, kind=kind, low=low, high=high, low_open=low_open)
