"""AXI4-Stream as Amaranth streams, and the flat-named top level that Vivado and cocotbext-axi bind.

Inside the design a packet stream is an ``amaranth.lib.stream`` interface whose payload is an
:func:`axis_layout` struct (``payload.data``, ``payload.keep``, ``payload.last``,
``payload.user``); ``valid``/``ready`` are the stream's own. :class:`AxiTop` wraps any unit and
renames each stream port ``NAME`` to the AXI spellings ``NAME_tdata``, ``NAME_tkeep``,
``NAME_tvalid``, ``NAME_tready``, ``NAME_tlast``, ``NAME_tuser`` (DESIGN.md section 2).

tkeep is contiguous from byte 0 and full on every beat but the last; byte 0 of a beat is
``data[0:8]`` (AXI little-endian lane order), i.e. the first byte of the frame on the wire.
"""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WIDTHS", "axis_layout", "AxisSignature", "AxiTop", "check_width", "connect_beats"]

WIDTHS = (64, 128, 256, 512)


def check_width(width):
    if width not in WIDTHS:
        raise ValueError(f"data width must be one of {WIDTHS}, not {width!r}")
    return width


def axis_layout(width, user_width=0):
    """Payload of one AXI4-Stream beat: data, keep, last and (if ``user_width``) user."""
    fields = {"data": width, "keep": width // 8, "last": 1}
    if user_width:
        fields["user"] = user_width
    return data.StructLayout(fields)


def AxisSignature(width, user_width=0):
    """A packet stream of ``width``-bit beats with ``user_width`` bits of tuser."""
    return stream.Signature(axis_layout(width, user_width))


_AXI_NAMES = {"data": "tdata", "keep": "tkeep", "last": "tlast", "user": "tuser"}


def connect_beats(m, source, sink):
    """Connect packet stream ``source`` to ``sink`` field by field: ``data``, ``keep``,
    ``last``, ``valid``, ``ready``; ``user`` only if both have it (where a unit downstream
    takes a frame's ``tuser`` from its header record, its beats carry none)."""
    fields = ["data", "keep", "last"]
    if "user" in source.payload.shape().members and "user" in sink.payload.shape().members:
        fields.append("user")
    m.d.comb += [getattr(sink.payload, f).eq(getattr(source.payload, f)) for f in fields]
    m.d.comb += [sink.valid.eq(source.valid), source.ready.eq(sink.ready)]


class AxiTop(wiring.Component):
    """Wrap ``unit`` so every stream port ``NAME`` becomes flat AXI ports ``NAME_t*``.

    Stream ports whose payload is an :func:`axis_layout` get ``tdata/tkeep/tlast/tuser``; a
    stream with any other payload carries it whole in ``NAME_tdata``. Other ports keep their
    names (nested names joined with ``_``).

    Parameters
    ----------
    unit : wiring.Component
        The unit to wrap; it becomes submodule ``unit``.
    """

    def __init__(self, unit):
        self._unit = unit
        self._map = []          # (outer name, flow, getter(inner object) -> value)
        members = {}
        for name, member in unit.signature.members.items():
            if member.is_port:
                members[name] = member
                self._map.append((name, member.flow, lambda u, n=name: getattr(u, n)))
                continue
            sig = member.signature
            flipped = isinstance(sig, wiring.FlippedSignature)
            base = sig.flip() if flipped else sig
            if not isinstance(base, stream.Signature):
                raise TypeError(f"AxiTop: port {name!r} is neither a port nor a stream")
            sink = member.flow == In     # an In stream is a sink (s_axis...)
            fwd, back = (In, Out) if sink else (Out, In)
            payload_shape = base.members["payload"].shape
            fields = (payload_shape.members if isinstance(payload_shape, data.StructLayout)
                      and "keep" in payload_shape.members else None)
            if fields is None:
                members[f"{name}_tdata"] = fwd(payload_shape)
                self._map.append((f"{name}_tdata", fwd,
                                  lambda u, n=name: Value.cast(getattr(u, n).payload)))
            else:
                for field, shape in fields.items():
                    outer = f"{name}_{_AXI_NAMES[field]}"
                    members[outer] = fwd(shape)
                    self._map.append((outer, fwd,
                                      lambda u, n=name, f=field: getattr(getattr(u, n).payload, f)))
            members[f"{name}_tvalid"] = fwd(1)
            self._map.append((f"{name}_tvalid", fwd, lambda u, n=name: getattr(u, n).valid))
            members[f"{name}_tready"] = back(1)
            self._map.append((f"{name}_tready", back, lambda u, n=name: getattr(u, n).ready))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self._unit
        for outer, flow, get in self._map:
            inner = get(unit)
            if flow == In:
                m.d.comb += inner.eq(getattr(self, outer))
            else:
                m.d.comb += getattr(self, outer).eq(inner)
        return m
