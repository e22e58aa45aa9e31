"""Receive segment coalescing (RSC) RTL: the twin of ``nicoffload.model.rsc``.

:class:`RscEngine` sits after the receive checksum stage. It takes frames whose last beat
carries ``nbl.RxUser`` (the ChecksumRx word; RSC words zero), each beside its parse record
(``hdl.parse.HEADERS_LAYOUT``, the RX path's one parse), and indicates frames with their
``nbl.RxUser`` on the last beat, exactly as ``model.rsc.RscEngine`` does (read that module's
docstring for every rule; this one says how the hardware does it).

Structure::

    s (beat + record) ─► RscIngress ─► landing RAM (3 frame slots)      RscEvents (arrival log)
                          │ header bytes (at 0, l3, l4)                     │ time, frame, eoi,
                          └► SegmentAnalyzer ─► descriptor FIFO ─┐          │ disable, enables
                                                                  ▼          ▼
                                            RscSequencer (flow contexts, lookup, rules, timer)
                                                                  │ commands, decision order
                                                                  ▼
      RscMover ─┬─ copy queue ─► RscCopier: landing ─► SCU RAM (realigned, payload summed)
                └─ emit queue ─► RscEmitter: a landing frame, or an SCU (sum its headers,
                   (+ ticket)    then send it patched) ─► m (RxUser)

The stages overlap: a frame comes into one landing slot while the one before is analyzed and
another is copied; the sequencer decides a frame and hands its commands over without waiting
for them; the copier copies frame n while the emitter sends an SCU ended earlier. Outputs
leave in decision order because every output (a frame alone or an SCU) goes through the one
emit queue. What keeps the two engines apart (:class:`RscMover`): an SCU's emission waits
until the copies dispatched before it are written and summed (its ticket); a region being
emitted is not opened again until its last read (``regions_busy``: the sequencer picks
another free region, or waits); a landing slot is released by the engine that reads the
frame out.

Time and the arrival log
    Every event the model sees is stamped, in order, into :class:`RscEvents`: a frame's last
    beat entering the path (``frame_end``), an end-of-indication marker (``s_eoi``, one
    handshake per marker; a marker in the cycle of a frame end comes after that frame), and
    RSC being switched off for an IP version (``enables`` falling: every SCU is flushed before
    the next frame). The time is a 32-bit cycle counter. The sequencer's notion of "now" is
    the time of the oldest event not yet decided, or the current cycle when there is none, so
    an SCU the idle timer ends is ended exactly before the frames the model ends it before.
    The testbench feeds the model each frame with the cycle its last beat was taken at the
    path's input, calls ``expire(t)`` before ``end_indication()`` / ``set_enables()`` at the
    marker's cycle ``t``, and gets the same output, bit for bit.

Flow contexts (``contexts``, default 8) are split by how they are read. What every context
shows at once is in flip-flops (``TAG_LAYOUT``): ``valid``, a 16-bit hash of the flow key's
VLAN tags, IP version and addresses (the address tag), the ports, and the last-join time (the
idle timer's ages). Lookup compares the descriptor's tag and ports with every context at once
(LOOK registers a candidate bit per context), FIND picks the oldest candidate, RULE compares
its whole address key (a LUT RAM beside its state) with the descriptor's, and a candidate
whose key differs (tags alike) is dropped for the next: the hit is the exact match, and the
347-bit key goes to one compare, not one per context. The rest (``STATE_LAYOUT``: the
fields that must be equal, H.NXT/ACK/WND/TSval/TSecr, PSH OR, TTL min, counts, lengths, the
first segment's RxUser word) is one entry of a small RAM (LUT RAM), read at one address register once the lookup or a
flush has chosen the context, and written whole when an SCU opens or is joined. The opening
order and the last-join order are a flip-flop per pair of contexts (set when a context becomes
the newest): the opening order picks the SCU to evict and the flush order, the last-join order
the next SCU the idle timer ends (of those its ages have ended).

SCU buffer: regions of ``max(max_scu_bytes, max_frame_bytes)`` bytes in one RAM
(``amaranth.lib.memory``, byte write enables), one per context and one more
(``default_regions``): a context holds the region its SCU opened in (a small RAM beside its
state), and an SCU opens in a free context and a region that no open SCU holds and that is
not being emitted. So when a new flow evicts an SCU (more flows than contexts), its segment
is copied into a spare region while the evicted SCU is emitted from its own. The segment
that opens an SCU is copied whole (padding too: a one-segment SCU is indicated unchanged); each joining segment's payload
is copied behind the SCU's payload, realigned by a byte rotation. Beside each region the
copier keeps a running one's-complement sum of the SCU's payload, taken from the beats the
copies write (16-bit words at their places in the region; the opening copy restarts it with
its own payload bytes, each joining copy adds its whole write), a few cycles behind the
write (the emitter reads it once the SCU's copies are counted done). An SCU of more than
one segment is emitted in two passes: the first reads only the beats that hold headers (up
to the header length) and sums the rewritten IPv4 header, the pseudo-header addresses and the TCP header, then adds the stored payload sum (IPv4 header and
TCP checksums); the second sends the SCU with every field rewritten.

Statistics: the sequencer registers one cycle's OID_TCP_RSC_STATISTICS increments
(``RSC_STATS_LAYOUT``: ``stats`` of the engine, ``rsc_stats`` of ``RscUnit`` and
``hdl.rxpath.RxPath``) at the decisions where ``model.rsc.RscEngine`` counts them, so the sums
equal ``RscEngine.statistics`` (checked by ``tb/tb_rsc.py``, ``tb/tb_rxpath.py`` and, as the
RSC_* registers, ``tb/tb_nic.py``).

Limits: frames up to ``max_frame_bytes`` (default 16,384: more than a 9,018-byte jumbo frame);
a longer frame is cut at that length (not supported). Throughput: a frame costs its beats
into the landing RAM (back to back: the next frame's first beat may come the cycle after a
last beat), its copy's beats and one cycle in the copier (the next copy is worked out while
one runs), and about seven cycles of decisions in the sequencer, all three overlapped; an SCU
costs its beats once more in the emitter (and a few cycles for its header sums), alongside
the copies. So coalesced traffic comes in at the rate of the slower of the ingress and the
copier, as long as the emitter keeps up on average (an SCU's bytes are fewer than its
segments'). Back-to-back 1,500-byte IPv4 segments (one flow, or eight taking turns) come
in at 0.997 of W/8 at W=64 and 0.964 at W=512 (0.977 is the most at W=512: 24 beats for
23.4 of bytes); sixty-four flows taking turns over the eight contexts, each segment evicting
an SCU, at 0.997 and 0.947 (the spare regions); ``nicoffload bench --offload rsc`` measures it ("in (arrival)", every frame
cross-checked). Its "in" figure (first input beat to last output beat; W=64 / W=512: 0.85 /
0.82 for one flow, 0.51 / 0.49 for eight) also holds the SCUs the final marker ends, indicated only after
the last segment: for eight flows every SCU. It was 0.50 at W=64 and 0.41 at W=512 when
one mover did one command at a time and the sequencer waited for each.
What is left: short frames pay the sequencer's cycles per frame (about seven: a 64-byte
frame is eight beats at W=64, one at W=512).
"""


from .common import *  # noqa: F401,F403
from .engine import Attach, RscEngine, RscUnit  # noqa: F401
from .ingress import RscEvents, RscIngress, SegmentAnalyzer  # noqa: F401
from .copier import RscCopier  # noqa: F401
from .emitter import RscEmitter  # noqa: F401
from .mover import RscMover  # noqa: F401
from .sequencer import RscSequencer  # noqa: F401

__all__ = ["RSC_IN_LAYOUT", "EVENT_LAYOUT", "RSC_STATS_LAYOUT", "DEFAULT_MAX_FRAME_BYTES", "RscEvents",
           "RscIngress", "SegmentAnalyzer", "RscMover", "RscCopier", "RscEmitter",
           "RscSequencer", "RscEngine",
           "RscUnit", "Attach"]
