"""The whole NIC as one object: the model twin of the RTL top level (issue 11).

:class:`Nic` holds an adapter's configuration (``model.config.Adapter``), the TX path, the RX
path with its RSC state and the register view (``model.regmap``), and keeps the statistics
counters the RTL's register block counts. It is what a driver or NIC developer imports as
the reference::

    from nicoffload.model.nic import Nic
    nic = Nic()                                   # bound with the default keywords
    result = nic.transmit(frame, checksum=info)   # wire frames and the TX completion
    for time, indication in nic.receive(frame, now=0):
        ...
    nic.end_indication()                          # the end of a receive indication

The parts are usable alone: :class:`TxPath` (LSO, then checksum insertion, per host frame)
and :class:`RxPath` (checksum verification, then RSC, with the idle timer and receive
indications), and the functions the command line and the testbenches share
(:func:`tx_model_send`, :func:`tx_model`, :func:`rx_model`, :func:`rx_rsc_engine`,
:func:`rx_model_stream`).

Configuration changes (:meth:`Nic.set_offload_parameters`, :meth:`Nic.set_offload_encapsulation`)
take effect between frames: the model handles one frame per call, so a change always falls
between two. Each successful change yields exactly one
NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG record (``config.Adapter`` makes it); switching RSC
off for an IP version first indicates every open SCU (DESIGN 3,
``querying-and-changing-rsc-state.md``). The datapath obeys the configuration *as the
registers say it*: the paths take their enables and limits from ``RegisterView.decode`` of
the register values the configuration produces, as the RTL takes them from its registers.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from nicoffload.model import lso as lso_model
from nicoffload.model import nbl
from nicoffload.model import regmap as rm
from nicoffload.model import rsc as rsc_model
from nicoffload.model.checksum import TX_MAX_FRAME, rx_validate, tx_fill
from nicoffload.model.config import Adapter, StatusIndication, bind

__all__ = ["TxRequest", "TxResult", "ConfigChange", "TxPath", "RxPath", "Nic", "tx_limits",
           "tx_model_send", "tx_model", "rx_model", "rx_rsc_engine", "rx_model_stream"]


@dataclasses.dataclass(frozen=True)
class TxRequest:
    """A host frame as the transport hands it to the miniport, with its NBL info.

    ``host`` is the index of the capture record it was made from: one record gives one
    request, or several when the transport segments a large send in software."""
    frame: bytes
    checksum: nbl.ChecksumTx
    lso: int = 0
    supplemental: int = 0
    host: int = 0

    @property
    def tuser(self) -> int:
        return nbl.TxUser.for_frame(self.frame, self.checksum, self.lso, self.supplemental)


def tx_limits(datapath=None) -> lso_model.LsoLimits:
    """The LSO limits of ``datapath`` (the model's defaults without one)."""
    return lso_model.LsoLimits(**datapath.lso_limits()) if datapath is not None else \
        lso_model.LsoLimits()


def tx_model_send(request: TxRequest, limits: lso_model.LsoLimits
                  ) -> tuple[tuple[bytes, ...], nbl.TxCompletion]:
    """The wire frames of one request and its TX completion (the model NIC)."""
    if request.lso:
        result = lso_model.segment(request.frame, request.lso, limits,
                                   supplemental=request.supplemental)
        return result.segments, result.completion
    supplemental = nbl.SendSupplemental.from_int(request.supplemental)
    return (tx_fill(request.frame, request.checksum, supplemental, encap=limits.encap),), \
        nbl.TxCompletion()


def tx_model(requests: list[TxRequest], datapath=None
             ) -> tuple[list[bytes], list[nbl.TxCompletion]]:
    """The wire frames and one TX completion per request."""
    limits = tx_limits(datapath)
    wire, completions = [], []
    for r in requests:
        segments, completion = tx_model_send(r, limits)
        wire.extend(segments)
        completions.append(completion)
    return wire, completions


def rx_model(frames, datapath) -> list[tuple[bytes, nbl.ChecksumRx]]:
    """The receive checksum stage alone: each frame unchanged with its checksum word."""
    return [(bytes(f), rx_validate(f, enables=datapath)) for f in frames]


def rx_rsc_engine(datapath, *, contexts: int = rsc_model.DEFAULT_CONTEXTS,
                  timeout_us: int | None = None) -> rsc_model.RscEngine:
    """The model's RSC coalescer as ``nicoffload rx`` runs it.

    Its clock is the capture's, in nanoseconds (``pcapio`` times), so the idle timer is
    ``timeout_us * 1000`` (``None``: no idle timer). RSC is on for the IP versions
    ``datapath`` has it on (``rsc_ipv4``/``rsc_ipv6``: the *RscIPv4/*RscIPv6 keywords, once
    bind has switched the receive offloads on); with both off every frame passes through.
    """
    return rsc_model.RscEngine(
        contexts=contexts, idle_timeout=None if timeout_us is None else timeout_us * 1000,
        rsc_ipv4=datapath.rsc_ipv4, rsc_ipv6=datapath.rsc_ipv6)


# ---------------------------------------------------------------------------------------------
# The two paths
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TxResult:
    """What one host frame became: the wire frames (none when dropped) and its completion."""
    segments: tuple[bytes, ...]
    completion: nbl.TxCompletion

    def __iter__(self):
        return iter((self.segments, self.completion))


def _counter_dict() -> dict[str, int]:
    return {c.name: 0 for c in rm.COUNTERS}


class TxPath:
    """The model TX path: LSO segmentation, then checksum insertion, one host frame a call.

    Parameters
    ----------
    limits : lso.LsoLimits
        What the LSO stage obeys (:meth:`set_limits` changes it between frames).

    Attributes
    ----------
    counts : dict
        The TX statistics counters of ``model.regmap`` (TX_IN/OUT frames and bytes,
        TX_OVERSIZE, TX_DROP_<reason>), counted as the RTL counts them.
    """

    def __init__(self, limits: lso_model.LsoLimits):
        self.limits = limits
        self.counts = _counter_dict()

    def set_limits(self, limits: lso_model.LsoLimits) -> None:
        self.limits = limits

    def transmit(self, request: TxRequest) -> TxResult:
        segments, completion = tx_model_send(request, self.limits)
        c = self.counts
        c["TX_IN_FRAMES"] += 1
        c["TX_IN_BYTES"] += len(request.frame)
        c["TX_OUT_FRAMES"] += len(segments)
        c["TX_OUT_BYTES"] += sum(len(s) for s in segments)
        if completion.Status:
            c[f"TX_DROP_{nbl.TxStatus(completion.Status).name}"] += 1
        elif not request.lso and len(request.frame) > TX_MAX_FRAME:
            c["TX_OVERSIZE"] += 1
        return TxResult(tuple(segments), completion)


class RxPath:
    """The model RX path: checksum verification, then RSC, with receive indications and the
    idle timer.

    Parameters
    ----------
    enables : config.Datapath or anything with ``checksum.RX_ENABLE_NAMES`` attributes
        Which receive checks run (:meth:`set_enables` changes them between frames).
    engine : rsc.RscEngine
        The coalescer; its idle timer in the unit of the times given here.

    Every method returns the frames indicated, as ``(time, rsc.Indication)`` in order, with
    the time the NIC indicates each (see :func:`rx_model_stream`). Times never decrease: a
    time earlier than the one before counts as the one before (a NIC's clock does not run
    backwards).

    Attributes
    ----------
    counts : dict
        The RX statistics counters of ``model.regmap`` (RX_IN/OUT frames and bytes, RX_*
        checksum failures); RSC's are ``engine.statistics``.
    """

    def __init__(self, enables, engine: rsc_model.RscEngine):
        self.enables = enables
        self.engine = engine
        self.counts = _counter_dict()
        self.now: int | None = None
        self._arrivals = deque()     # arrival times in this indication: every possible last join

    def _out(self, time: int, indications) -> list[tuple[int, rsc_model.Indication]]:
        out = [(time, indication) for indication in indications]
        self.counts["RX_OUT_FRAMES"] += len(out)
        self.counts["RX_OUT_BYTES"] += sum(len(i.frame) for _, i in out)
        return out

    def advance(self, now: int) -> list[tuple[int, rsc_model.Indication]]:
        """Let time run to ``now``: the SCUs the idle timer ends, each at the moment its timer
        runs out (its last join plus the timeout)."""
        now = now if self.now is None else max(self.now, now)
        self.now = now
        out = []
        timeout = self.engine.idle_timeout
        if timeout is not None:
            while self._arrivals and self._arrivals[0] + timeout <= now:
                deadline = self._arrivals.popleft() + timeout
                out += self._out(deadline, self.engine.expire(deadline))
        return out

    def receive(self, frame, now: int) -> list[tuple[int, rsc_model.Indication]]:
        """A frame from the wire arriving at ``now``."""
        out = self.advance(now)
        now = self.now
        if self.engine.idle_timeout is not None and \
                (not self._arrivals or self._arrivals[-1] != now):
            self._arrivals.append(now)
        checksum = rx_validate(frame, enables=self.enables)
        c = self.counts
        c["RX_IN_FRAMES"] += 1
        c["RX_IN_BYTES"] += len(frame)
        c["RX_IP_CHECKSUM_FAILED"] += checksum.IpChecksumFailed
        c["RX_TCP_CHECKSUM_FAILED"] += checksum.TcpChecksumFailed
        c["RX_UDP_CHECKSUM_FAILED"] += checksum.UdpChecksumFailed
        return out + self._out(now, self.engine.receive(frame, checksum, now))

    def end_indication(self) -> list[tuple[int, rsc_model.Indication]]:
        """The end of a receive indication: every open SCU, at the time of its last frame."""
        self._arrivals.clear()
        return self._out(self.now or 0, self.engine.end_indication())

    def set_enables(self, enables) -> list[tuple[int, rsc_model.Indication]]:
        """New receive enables (``rsc_ipv4``/``rsc_ipv6`` among them); switching RSC off for
        an IP version first indicates every open SCU."""
        self.enables = enables
        return self._out(self.now or 0, self.engine.set_enables(enables.rsc_ipv4,
                                                                enables.rsc_ipv6))

    def stream(self, records, *, batch: int = 64):
        """:meth:`receive` for each ``(time, frame)`` of ``records``, a receive indication
        ending after every ``batch`` frames and at the end; yields ``(time, Indication)``."""
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ValueError(f"batch must be a positive integer, not {batch!r}")
        count = 0
        for time, frame in records:
            yield from self.receive(frame, time)
            count += 1
            if count % batch == 0:
                yield from self.end_indication()
        if count % batch:
            yield from self.end_indication()


def rx_model_stream(records, datapath, engine: rsc_model.RscEngine, *, batch: int = 64):
    """The model RX path (checksum verification, then RSC) over a stream of capture records.

    Parameters
    ----------
    records : iterable of (time_ns, frame)
        The wire frames and their capture times (``pcapio.CaptureReader``), read one at a
        time: nothing is held beyond the open SCUs and the arrival times of the current
        receive indication.
    datapath : config.Datapath
        Which receive checks run.
    engine : rsc.RscEngine
        The coalescer (``rx_rsc_engine``), its clock in nanoseconds.
    batch : int
        Input frames per receive indication (DESIGN 4 ``--batch``); the end of ``records``
        always ends one.

    Yields
    ------
    (time_ns, rsc.Indication)
        Every frame indicated to the host, in order, with the time the model indicates it:
        a frame indicated alone, or an SCU an arrival finalizes, at that arrival's time; an
        SCU the idle timer finalizes at the moment the timer runs out (its last join plus
        the timeout: the engine's clock is run to each such moment before the next arrival);
        the SCUs the end of a receive indication finalizes at the time of the indication's
        last frame. The times never decrease. A record earlier than the one before it (a
        merged capture) arrives, for the NIC, at the time of the one before: a NIC's clock
        does not run backwards.
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch must be a positive integer, not {batch!r}")
    return RxPath(datapath, engine).stream(records, batch=batch)


# ---------------------------------------------------------------------------------------------
# The NIC
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ConfigChange:
    """What one successful configuration change did.

    Attributes
    ----------
    status : config.StatusIndication
        The NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG record of the change.
    indicated : tuple of (time, rsc.Indication)
        The SCUs switching RSC off indicated first (empty otherwise).
    writes : tuple of (address, value)
        The register writes that bring the hardware to the new configuration: every RW
        register whose value changed, in address order.
    """
    status: StatusIndication
    indicated: tuple
    writes: tuple


class Nic:
    """The model of the whole NIC: configuration, TX path, RX path with RSC, registers.

    Parameters
    ----------
    adapter : config.Adapter, optional
        The configuration to start from (default: ``config.bind(keywords, capabilities)``,
        what a protocol driver sets up at bind time).
    keywords : iterable of "NAME=VALUE", optional
        Registry keywords for the default adapter.
    capabilities : config.NicCapabilities, optional
        The hardware, for the default adapter and the capability registers.
    rsc_contexts : int
        RSC flow contexts (default 8).
    rsc_idle_timeout : int or None
        RSC idle time T in the unit of the times given to :meth:`receive` (the RTL counts
        clock cycles; ``nicoffload rx`` gives nanoseconds); None: no idle timer.
    id_mode : str
        LSO IPv4 ID mode, ``"ndis"`` (default) or ``"linux"``.
    data_bytes : int
        HW_PARAMS.DataBytes of the register view (W / 8).

    Attributes
    ----------
    adapter : config.Adapter
        The configuration (its ``indications`` are every status indication so far).
    tx, rx : TxPath, RxPath
        The two paths.
    view : regmap.RegisterView
        Configuration <-> register values.
    registers : regmap.RegisterFile
        The register block as a bus master sees it: configuration, constants and this
        NIC's counters; CTRL.StatsClear zeroes them.
    tx.counts, rx.counts : dict
        The raw counts behind :meth:`counters`.
    """

    def __init__(self, adapter: Adapter | None = None, *, keywords=(), capabilities=None,
                 rsc_contexts: int = rsc_model.DEFAULT_CONTEXTS,
                 rsc_idle_timeout: int | None = None, id_mode: str = "ndis",
                 data_bytes: int = 8):
        self.adapter = adapter if adapter is not None else bind(keywords, capabilities)
        self.id_mode = id_mode
        self.rsc_idle_timeout = rsc_idle_timeout
        self.view = rm.RegisterView(self.adapter.capabilities, data_bytes=data_bytes,
                                    rsc_contexts=rsc_contexts)
        config = self.view.decode(self._config_values())
        self.tx = TxPath(config.lso_limits)
        self.rx = RxPath(config.datapath, rsc_model.RscEngine(
            contexts=rsc_contexts, idle_timeout=rsc_idle_timeout,
            rsc_ipv4=config.datapath.rsc_ipv4, rsc_ipv6=config.datapath.rsc_ipv6))
        self._rsc_base = rsc_model.RscStatistics()
        self._cleared = _counter_dict()
        self._registers: rm.RegisterFile | None = None

    # --- configuration ------------------------------------------------------------------

    def _config_values(self) -> dict[str, int]:
        # The timeout is the caller's unit and may not fit a register: the paths do not
        # need it from there (RSC has it), so it stays out of what they decode.
        return self.view.adapter_values(self.adapter, id_mode=self.id_mode)

    @property
    def datapath(self):
        """The operational ``config.Datapath`` the paths obey."""
        return self.rx.enables

    @property
    def indications(self) -> tuple[StatusIndication, ...]:
        """Every status indication so far, oldest first."""
        return self.adapter.indications

    def csr_values(self) -> dict[str, int]:
        """``{name: value}`` of every non-counter register, as the RTL should hold them.

        Raises
        ------
        ValueError
            A setting that does not fit its register (an idle timeout over 2**32 - 1, more
            than 255 RSC contexts).
        """
        values = self.view.constants()
        values.update(self.view.adapter_values(self.adapter, id_mode=self.id_mode,
                                               rsc_idle_timeout=self.rsc_idle_timeout))
        return values

    @property
    def registers(self) -> rm.RegisterFile:
        """The register block as a bus master sees it (made on first use, so a setting that
        does not fit a register fails only here; see :meth:`csr_values`). It is a view:
        configure through the ``set_*`` methods, which update it."""
        if self._registers is None:
            self._registers = rm.RegisterFile(self.csr_values(), counters=self.counters,
                                              on_clear=self.clear_statistics)
        return self._registers

    def _apply(self, change) -> ConfigChange:
        before = self._config_values()
        status = change()
        after = self._config_values()
        config = self.view.decode(after)
        self.tx.set_limits(config.lso_limits)
        indicated = tuple(self.rx.set_enables(config.datapath))
        if self._registers is not None:
            self._registers.values.update(self.csr_values())
        writes = tuple((r.address, after[r.name]) for r in rm.REGISTERS.config
                       if after[r.name] != before[r.name])
        return ConfigChange(status, indicated, writes)

    def set_offload_parameters(self, params) -> ConfigChange:
        """OID_TCP_OFFLOAD_PARAMETERS (``config.Adapter.set_offload_parameters``), between
        frames. Raises ``config.OidError`` for a refused set (nothing changes)."""
        return self._apply(lambda: self.adapter.set_offload_parameters(params))

    def set_offload_encapsulation(self, encapsulation) -> ConfigChange:
        """OID_OFFLOAD_ENCAPSULATION (``config.Adapter.set_offload_encapsulation``)."""
        return self._apply(lambda: self.adapter.set_offload_encapsulation(encapsulation))

    # --- traffic ------------------------------------------------------------------------

    def transmit(self, frame, checksum: nbl.ChecksumTx | None = None, lso: int = 0,
                 supplemental: int = 0) -> TxResult:
        """One host frame with its NBL info (or a :class:`TxRequest`): its wire frames and
        TX completion."""
        request = frame if isinstance(frame, TxRequest) else \
            TxRequest(bytes(frame), checksum or nbl.ChecksumTx(), lso, supplemental)
        return self.tx.transmit(request)

    def receive(self, frame, now: int = 0) -> list[tuple[int, rsc_model.Indication]]:
        """A wire frame arriving at time ``now``; the frames indicated, with their times."""
        return self.rx.receive(bytes(frame), now)

    def advance(self, now: int) -> list[tuple[int, rsc_model.Indication]]:
        """Let time run to ``now`` (the RSC idle timer)."""
        return self.rx.advance(now)

    def end_indication(self) -> list[tuple[int, rsc_model.Indication]]:
        """End the current receive indication: every open SCU is indicated."""
        return self.rx.end_indication()

    def receive_stream(self, records, *, batch: int = 64):
        """:meth:`receive` over ``(time, frame)`` records, a receive indication every
        ``batch`` frames and at the end (``RxPath.stream``)."""
        return self.rx.stream(records, batch=batch)

    # --- statistics ---------------------------------------------------------------------

    @property
    def rsc_statistics(self) -> rsc_model.RscStatistics:
        """OID_TCP_RSC_STATISTICS since the last clear."""
        now, base = self.rx.engine.statistics, self._rsc_base
        return rsc_model.RscStatistics(**{
            f.name: getattr(now, f.name) - getattr(base, f.name)
            for f in dataclasses.fields(rsc_model.RscStatistics)})

    def counters(self) -> dict[str, int]:
        """Every statistics counter of ``model.regmap``, as the RTL counts them."""
        out = {name: self.tx.counts[name] + self.rx.counts[name] - self._cleared[name]
               for name in self._cleared}
        rsc = self.rsc_statistics
        out.update(RSC_COALESCED_PKTS=rsc.CoalescedPkts, RSC_COALESCED_OCTETS=rsc.CoalescedOctets,
                   RSC_COALESCE_EVENTS=rsc.CoalesceEvents, RSC_ABORTS=rsc.Aborts)
        return {name: value % (1 << 64) for name, value in out.items()}

    def clear_statistics(self) -> None:
        """CTRL.StatsClear: every counter to 0."""
        self._cleared = {name: self.tx.counts[name] + self.rx.counts[name]
                         for name in self._cleared}
        self._rsc_base = self.rx.engine.statistics
