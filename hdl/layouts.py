"""Amaranth layouts built from the one description of every bit layout in ``model/nbl.py``."""

from amaranth.lib import data

__all__ = ["word_layout"]


def word_layout(word):
    """``data.StructLayout`` of an ``nbl.Word`` subclass: its FIELDS from bit 0, padded to WIDTH."""
    fields = dict(word.FIELDS)
    used = sum(fields.values())
    if used < word.WIDTH:
        fields["_pad"] = word.WIDTH - used
    return data.StructLayout(fields)
