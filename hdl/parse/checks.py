"""The model's checks, behind the walk: measure, judge, decide (one header per cycle each)."""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nvgre as model_nvgre
from nicoffload.model import parse as model

from .layouts import (HEADERS_LAYOUT, L4_PROTOS, NVGRE_LAYOUT, STEP_FIELDS_LAYOUT,
                      UNFOLLOWABLE_EXT,
                      WALKED_EXT, WINDOW_BYTES, big_endian, byte_of, is_one_of,
                      judged_layout, measured_layout, step_layout)

__all__ = ["Measure", "Judge", "Decide"]


def _pipe(layout):
    """A pipeline stage's registers: valid and a payload, never waiting."""
    return stream.Signature(layout, always_ready=True)


class Measure(wiring.Component):
    """Makes every comparison of the model's checks for a step, each a single compare of
    registers (the sums they need come from the read stage, per frame, or from this stage for
    the step before: ``ip_end`` of the frame, ``remaining`` bytes of the datagram).

    Attributes
    ----------
    step : In(stream.Signature(step_layout(user_width), always_ready=True))
        The steps of the walk with their bytes (:class:`StepRead`).
    step_end : In(12)
        The offset past ``step``'s header (:attr:`StepRead.step_end`).
    walk_continues : In(1)
        The walk is on an EXT or L4 step this cycle: ``step``'s frame has another step.
    measured : Out(stream.Signature(measured_layout(user_width), always_ready=True))
        The step's comparisons, one cycle later.
    """

    def __init__(self, user_width):
        super().__init__({
            "step": In(_pipe(step_layout(user_width))),
            "step_end": In(12),
            "walk_continues": In(1),
            "measured": Out(_pipe(measured_layout(user_width))),
        })

    def elaborate(self, platform):
        m = Module()
        step, valid = self.step.payload, self.step.valid
        out = self.measured.payload
        frame = step.frame
        ip, head, end = step.ip_bytes, step.head_bytes, self.step_end
        # Of the frame being measured: ``ip_end`` from its L3 step; ``remaining`` = ip_end -
        # the offset of the next header, from the step before (which is of the same frame for
        # EXT and L4 steps; where it would be negative, that step failed).
        ip_end = Signal(17)
        remaining = Signal(17)
        routing_seen = Signal()
        # The protocol of this step's header (EXT, L4): the Next Header of the step before.
        is_hopopt, is_routing, is_fragment, is_tcp = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [
            self.measured.valid.eq(valid),
            out.l2_failed.eq(step.l2_failed), out.l3.eq(step.l3), out.ext.eq(step.ext),
            out.l4.eq(step.l4), out.gre.eq(step.gre), out.inner.eq(step.inner),
            out.offset.eq(step.offset), out.end.eq(end),
            # The walk of this frame ends with this step unless the walk is now on its next.
            out.last.eq(~self.walk_continues),
            out.frame.eq(frame),
            out.ip_header_len.eq(end - frame.l3),
            out.pseudo_dst.eq(Mux(step.l3, Mux(frame.is4, frame.l3 + 16, frame.l3 + 24),
                                  step.offset_plus_8)),
        ]

        # L3 (the frame is ``room`` bytes from l3 on, when it ended in the window)
        version = byte_of(ip, 0)[4:8]
        hlen4 = Cat(C(0, 2), byte_of(ip, 0)[0:4])
        total = big_endian(ip, 2, 2)
        payload_len = big_endian(ip, 4, 2)
        fragment_field4 = big_endian(ip, 6, 2)
        ip_end4 = frame.l3 + total
        ip_end6 = step.l3_plus_40 + payload_len
        m.d.sync += [
            out.bad_version.eq(version != Mux(frame.is4, 4, 6)),
            out.bad_ihl.eq(hlen4 < 20),
            out.short_hlen.eq(frame.ended & (step.room < hlen4)),
            out.total_lt_hlen.eq(total < hlen4),
            out.ip_fragment.eq(fragment_field4[13] | (fragment_field4[0:13] != 0)),
        ]
        with m.If(frame.is4):
            m.d.sync += [
                out.short_min.eq(frame.ended & (step.room < 20)),
                out.short_ip.eq(frame.ended & (step.room < total)),
            ]
        with m.Else():
            m.d.sync += [
                out.short_min.eq(frame.ended & (step.room_past_ipv6 < 0)),
                out.short_ip.eq(frame.ended & (step.room_past_ipv6 < payload_len)),
            ]
        # L3: this frame's; later steps: as the L3 step measured it.
        m.d.sync += out.ip_end.eq(Mux(step.l3, Mux(frame.is4, ip_end4, ip_end6), ip_end))
        with m.If(valid & step.l3):
            m.d.sync += [
                ip_end.eq(Mux(frame.is4, ip_end4, ip_end6)),
                remaining.eq(Mux(frame.is4, total - hlen4, payload_len)),
                routing_seen.eq(0),
            ]
        with m.If(valid & step.ext):
            m.d.sync += remaining.eq(ip_end - end)

        # EXT, and the protocol that follows the IP header or an extension header
        next_header = Mux(step.l3, Mux(frame.is4, byte_of(ip, 9), byte_of(ip, 6)),
                          byte_of(head, 0))
        ext_len, routing_type, segments_left = byte_of(head, 1), byte_of(head, 2), \
            byte_of(head, 3)
        fragment_field6 = Cat(segments_left, routing_type)      # offset:13, res:2, M:1
        # A routing header is generic: (len + 1) * 8 >= 24 when len >= 2.
        final_dst_known = is_one_of(routing_type, model._ROUTING_FINAL_DST_TYPES) & \
            (ext_len >= 2)
        m.d.sync += [
            out.hbh_misplaced.eq(is_hopopt & (step.offset != step.l3_plus_40)),
            out.ext_short8.eq(remaining < 8),
            out.ext_short.eq(end > ip_end),
            out.ext_long.eq(end > model.MAX_EXT_END),
            out.routing_again.eq(is_routing & routing_seen),
            out.routing_unknown.eq(is_routing & (segments_left != 0) & ~final_dst_known),
            out.routing_final_dst.eq(is_routing & (segments_left != 0)),
            out.ext_fragment.eq(is_fragment &
                                ((fragment_field6[3:16] != 0) | fragment_field6[0])),
            out.next_header.eq(next_header),
            out.next_is_ext.eq(is_one_of(next_header, WALKED_EXT)),
            out.next_unfollowable.eq(is_one_of(next_header, UNFOLLOWABLE_EXT)),
            out.next_is_l4.eq(is_one_of(next_header, L4_PROTOS)),
            out.next_is_gre.eq(next_header == model_nvgre.IPPROTO_GRE),
        ]
        with m.If(valid & step.ext & is_routing):
            m.d.sync += routing_seen.eq(1)
        with m.If(valid):
            m.d.sync += [
                is_hopopt.eq(next_header == model._HOPOPT),
                is_routing.eq(next_header == model._ROUTING),
                is_fragment.eq(next_header == model._FRAGMENT),
                is_tcp.eq(next_header == model.IPPROTO_TCP),
            ]

        # L4 (the datagram has ``remaining`` bytes from this header on)
        limit = WINDOW_BYTES
        hlen_tcp = Cat(C(0, 2), step.tcp_data_offset)
        udp_len = big_endian(head, 4, 2)
        m.d.sync += [
            out.tcp.eq(is_tcp),
            out.l4_short_min.eq(remaining < Mux(is_tcp, 20, 8)),
            out.l4_past_min.eq(step.offset > Mux(is_tcp, limit - 20, limit - 8)),
            out.tcp_bad_offset.eq(hlen_tcp < 20),
            out.tcp_short.eq(remaining < hlen_tcp),
            out.tcp_past.eq(step.offset + hlen_tcp > limit),
            out.tcp_hlen.eq(hlen_tcp),
            out.udp_bad_length.eq((udp_len < 8) | (remaining < udp_len)),
            out.udp_end.eq(step.offset + udp_len),
        ]
        return m


class Judge(wiring.Component):
    """Puts a step's comparisons in the model's order: its error, the record fields it sets
    and whether the walk ends there.

    Attributes
    ----------
    measured : In(stream.Signature(measured_layout(user_width), always_ready=True))
        The step's comparisons (:class:`Measure`).
    judged : Out(stream.Signature(judged_layout(user_width), always_ready=True))
        What the step does to its frame's record if the walk gets to it, one cycle later.
    """

    def __init__(self, user_width):
        super().__init__({
            "measured": In(_pipe(measured_layout(user_width))),
            "judged": Out(_pipe(judged_layout(user_width))),
        })

    def elaborate(self, platform):
        m = Module()
        step = self.measured.payload
        fields = Signal(STEP_FIELDS_LAYOUT)
        sets = Signal.like(self.judged.payload.sets)
        stop = Signal()
        out = self.judged.payload
        m.d.sync += [
            self.judged.valid.eq(self.measured.valid),
            out.first.eq(step.l2_failed | step.l3), out.l2_failed.eq(step.l2_failed),
            out.last.eq(step.last), out.frame.eq(step.frame),
            out.fields.eq(fields), out.sets.eq(sets), out.stop.eq(stop),
        ]

        def put(field, value):
            m.d.comb += [getattr(fields, field).eq(value), getattr(sets, field).eq(1)]

        def fail(code):
            put("error", code)
            m.d.comb += stop.eq(1)

        def to_l4(l4, fragment):
            """The walk leaves IP at ``l4``: the record's L4 fields, then L4 or the end."""
            put("l4_proto", step.next_header)
            put("l4", l4)
            # l4_header_len stays 0; after GRE (not a fragment) the inner walk's answer
            # follows as the frame's last step.
            with m.If(fragment | ~(step.next_is_l4 | step.next_is_gre)):
                m.d.comb += stop.eq(1)

        def next_ipv6(l4, fragment):
            """After the IPv6 header or an extension header: the model's loop condition."""
            with m.If(~fragment & step.next_is_ext):
                pass                                # the walk goes on to that header
            with m.Elif(~fragment & step.next_unfollowable):
                fail(model.ParseError.EXT_UNFOLLOWABLE)
            with m.Else():
                put("ip_header_len", step.ip_header_len)
                to_l4(l4, fragment)

        with m.If(step.l3 & step.frame.is4):
            self._ipv4(m, step, put, fail, to_l4)
        with m.Elif(step.l3):
            with m.If(step.short_min):
                fail(model.ParseError.L3_TRUNCATED)
            with m.Elif(step.bad_version):
                fail(model.ParseError.BAD_VERSION)
            with m.Else():
                put("is_ipv6", 1)
                with m.If(step.short_ip):
                    fail(model.ParseError.BAD_IP_LENGTH)
                with m.Else():
                    put("ip_end", step.ip_end)
                    put("pseudo_dst", step.pseudo_dst)
                    next_ipv6(step.end, C(0, 1))
        with m.Elif(step.ext):
            self._extension(m, step, put, fail, next_ipv6)
        with m.Elif(step.l4):
            m.d.comb += stop.eq(1)
            self._transport(m, step, put, fail)
        with m.Elif(step.gre):
            m.d.comb += stop.eq(1)
            with m.If(step.inner.is_nvgre):
                for name, _ in NVGRE_LAYOUT:
                    put(name, getattr(step.inner, name))
            with m.Else():
                put("lso_refusal", step.inner.lso_refusal)
        return m

    @staticmethod
    def _ipv4(m, step, put, fail, to_l4):
        with m.If(step.short_min):
            fail(model.ParseError.L3_TRUNCATED)
        with m.Elif(step.bad_version):
            fail(model.ParseError.BAD_VERSION)
        with m.Else():
            put("is_ipv4", 1)
            with m.If(step.bad_ihl):
                fail(model.ParseError.BAD_IHL)
            with m.Elif(step.short_hlen):
                fail(model.ParseError.L3_TRUNCATED)
            with m.Else():
                put("ip_header_len", step.ip_header_len)
                with m.If(step.total_lt_hlen | step.short_ip):
                    fail(model.ParseError.BAD_IP_LENGTH)
                with m.Else():
                    put("ip_end", step.ip_end)
                    put("is_fragment", step.ip_fragment)
                    put("pseudo_dst", step.pseudo_dst)
                    to_l4(step.end, step.ip_fragment)

    @staticmethod
    def _extension(m, step, put, fail, next_ipv6):
        with m.If(step.hbh_misplaced):
            fail(model.ParseError.EXT_UNFOLLOWABLE)
        with m.Elif(step.ext_short8):
            fail(model.ParseError.EXT_TRUNCATED)
        with m.Elif(step.ext_short):
            fail(model.ParseError.EXT_TRUNCATED)
        with m.Elif(step.ext_long):
            fail(model.ParseError.EXT_TOO_LONG)
        with m.Elif(step.routing_again):
            fail(model.ParseError.EXT_UNFOLLOWABLE)
        with m.Elif(step.routing_unknown):
            fail(model.ParseError.EXT_UNFOLLOWABLE)
        with m.Else():
            with m.If(step.routing_final_dst):
                put("pseudo_dst", step.pseudo_dst)
            put("is_fragment", step.ext_fragment)
            next_ipv6(step.end, step.ext_fragment)

    @staticmethod
    def _transport(m, step, put, fail):
        with m.If(step.tcp):
            with m.If(step.l4_short_min):
                fail(model.ParseError.L4_TRUNCATED)
            with m.Elif(step.l4_past_min):
                fail(model.ParseError.PAST_LIMIT)
            with m.Elif(step.tcp_bad_offset):
                fail(model.ParseError.BAD_TCP_OFFSET)
            with m.Elif(step.tcp_short):
                fail(model.ParseError.L4_TRUNCATED)
            with m.Elif(step.tcp_past):
                fail(model.ParseError.PAST_LIMIT)
            with m.Else():
                put("l4_header_len", step.tcp_hlen)
                put("l4_end", step.ip_end)
        with m.Else():
            with m.If(step.l4_short_min):
                fail(model.ParseError.L4_TRUNCATED)
            with m.Elif(step.l4_past_min):
                fail(model.ParseError.PAST_LIMIT)
            with m.Elif(step.udp_bad_length):
                fail(model.ParseError.BAD_UDP_LENGTH)
            with m.Else():
                put("l4_header_len", 8)
                put("l4_end", step.udp_end)


class Decide(wiring.Component):
    """Merges the steps of a frame, in order, into its record; ignores every step after the
    first error (the walk may have gone on past it) and emits the record on the frame's last
    step.

    Attributes
    ----------
    judged : In(stream.Signature(judged_layout(user_width), always_ready=True))
        The judged steps (:class:`Judge`).
    records : Out(stream.Signature(HEADERS_LAYOUT(user_width)))
        One record per frame. ``ready`` is not looked at: the parser takes a frame for the
        walk only with a place for its record, so the record FIFO is never full here.
    """

    def __init__(self, user_width):
        self.user_width = user_width
        super().__init__({
            "judged": In(_pipe(judged_layout(user_width))),
            "records": Out(stream.Signature(HEADERS_LAYOUT(user_width))),
        })

    def elaborate(self, platform):
        m = Module()
        layout = HEADERS_LAYOUT(self.user_width)
        step, valid = self.judged.payload, self.judged.valid
        record = Signal(layout)         # the record so far
        stopped = Signal()              # the model's walk has ended (an error, or done)
        base = Signal(layout)
        base_stopped = Signal()
        with m.If(step.first):
            m.d.comb += [
                base.error.eq(step.frame.l2_error),
                base.l3.eq(step.frame.l3),
                base.ip_end_unchecked.eq(~step.frame.ended),
                base_stopped.eq(step.l2_failed),
            ]
            if self.user_width:
                m.d.comb += base.user.eq(step.frame.user)
        with m.Else():
            m.d.comb += [base.eq(record), base_stopped.eq(stopped)]
        merged = Signal(layout)         # the record after this step
        m.d.comb += merged.eq(base)
        for name, _ in STEP_FIELDS_LAYOUT:
            with m.If(~base_stopped & getattr(step.sets, name)):
                m.d.comb += getattr(merged, name).eq(getattr(step.fields, name))
        with m.If(valid):
            m.d.sync += [record.eq(merged), stopped.eq(base_stopped | step.stop)]
        m.d.comb += [
            self.records.valid.eq(valid & step.last),
            self.records.payload.eq(merged),
        ]
        return m
