"""``nicoffload config``: bind with the given keywords and print the resulting offload config.

Does what ``tx`` and ``rx`` do before their first frame (DESIGN section 4: apply the keywords,
then OID_OFFLOAD_ENCAPSULATION for Ethernet II, 802.1Q and LLC/SNAP; see
:func:`nicoffload.model.config.bind`) and shows the result: the keywords as the miniport now
holds them, the current NDIS_OFFLOAD (OID_TCP_OFFLOAD_CURRENT_CONFIG) at the revision asked
for, the encapsulation settings and what the datapath is doing.

An offload the datapath has not built (``nicoffload.model.config.BUILT_OFFLOADS``; NVGRE for
now) is reported not supported, whatever its keyword says; the table says "not supported"
for it rather than "off", and names it on a line of its own. bind does not switch it on, so
its keyword is accepted and shown but nothing operates.

``--json`` prints one object whose keys are NDIS names::

    {"Keywords": {"*IPChecksumOffloadIPv4": 3, ...},
     "OID_TCP_OFFLOAD_CURRENT_CONFIG": {"Header": {...}, "Checksum": {...}, ...},
     "OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES": {...},
     "OID_OFFLOAD_ENCAPSULATION": {"Header": {...}, "IPv4": {...}, "IPv6": {...}},
     "StatusIndications": [{"Oid": ..., "StatusCode": ...}, ...],
     "Datapath": {"tx_ipv4_checksum": true, ...}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import click

from nicoffload.model import config as cfg
from nicoffload.sim.cli import CliError


def report(adapter: cfg.Adapter, revision: int) -> dict[str, Any]:
    """The JSON-ready description of ``adapter`` (NDIS_OFFLOAD structures at ``revision``)."""
    return {
        "Keywords": adapter.keywords().as_registry(),
        "OID_TCP_OFFLOAD_CURRENT_CONFIG": adapter.current_config().to_dict(revision),
        "OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES": adapter.hardware_capabilities().to_dict(revision),
        "OID_OFFLOAD_ENCAPSULATION": adapter.offload_encapsulation().to_dict(),
        "StatusIndications": [{"Oid": indication.Oid, "StatusCode": indication.StatusCode}
                              for indication in adapter.indications],
        "Datapath": adapter.datapath().as_dict(),
    }


def run(keywords: Iterable[str], *, as_json: bool = False, revision: int = 3) -> None:
    """Body of ``nicoffload config``.

    Parameters
    ----------
    keywords : iterable of str
        ``NAME=VALUE`` strings from ``--keyword``.
    as_json : bool
        Print JSON instead of tables.
    revision : int
        NDIS_OFFLOAD revision (1..3) to encode and show.

    Raises
    ------
    CliError
        A malformed entry, an unknown keyword or a value out of range (one line, naming the
        keyword and its allowed values).
    """
    if revision not in cfg.NdisOffload.REVISIONS:
        raise CliError(f"--revision {revision}: NDIS_OFFLOAD revisions are "
                       f"{', '.join(map(str, sorted(cfg.NdisOffload.REVISIONS)))}")
    try:
        adapter = cfg.bind(list(keywords))
    except (cfg.KeywordError, cfg.OidError) as error:
        raise CliError(" ".join(str(error).split())) from None
    if as_json:
        click.echo(json.dumps(report(adapter, revision), indent=2))
    else:
        _print_tables(adapter, revision)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

_ENCAPSULATION_NAMES = ((cfg.NDIS_ENCAPSULATION_NULL, "NULL"),
                        (cfg.NDIS_ENCAPSULATION_IEEE_802_3, "802.3"),
                        (cfg.NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q, "802.1Q"),
                        (cfg.NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q_IN_OOB, "802.1Q-OOB"),
                        (cfg.NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED, "LLC/SNAP"))


def _flags(value: int, names) -> str:
    return ", ".join(name for bit, name in names if value & bit) or "none"


def _directions(transmit: int, receive: int) -> str:
    on = [name for name, flag in (("Tx", transmit), ("Rx", receive))
          if flag == cfg.NDIS_OFFLOAD_SUPPORTED]
    return " ".join(on) or "off"


def _lso(part) -> str:
    if not part.Encapsulation:
        return "off"
    return f"on ({part.MaxOffLoadSize}, {part.MinSegmentCount})"


_NOT_SUPPORTED = "not supported"
_SWITCH_NAMES = {"encap": "encap (NVGRE)"}


def _nvgre(gre, hardware, outer: int) -> str:
    def directions(part):
        return [name for name, flags in (("Tx", part.TransmitChecksumOffloadSupported),
                                         ("Rx", part.ReceiveChecksumOffloadSupported),
                                         ("LSOv2", part.LsoV2Supported)) if flags & outer]
    if not directions(hardware):
        return _NOT_SUPPORTED
    on = directions(gre)
    if not on:
        return "off"
    return f"{' '.join(on)} ({gre.MaxHeaderSizeSupported})"


def _rsc(current, hardware) -> str:
    if not hardware.Enabled:
        return _NOT_SUPPORTED
    return "on" if current.Enabled else "off"


def _print_tables(adapter: cfg.Adapter, revision: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False)
    offload = adapter.current_config().truncated(revision)
    c = offload.Checksum
    absent = f"not in revision {revision}"

    keywords = Table(title="Registry keywords (as the miniport holds them)")
    keywords.add_column("Keyword")
    keywords.add_column("Value", justify="right")
    keywords.add_column("Meaning")
    for spec in cfg.KEYWORD_SPECS:
        if spec.covers:
            continue
        value = getattr(adapter.keywords(), spec.field)
        keywords.add_row(spec.name, str(value), spec.values[value])
    console.print(keywords)

    size = cfg.NdisOffload.sizeof(revision)
    current = Table(title=f"Current config: NDIS_OFFLOAD revision {revision}, {size} bytes "
                          "(OID_TCP_OFFLOAD_CURRENT_CONFIG)")
    current.add_column("Offload")
    current.add_column("IPv4")
    current.add_column("IPv6")
    current.add_row("IP header checksum",
                    _directions(c.IPv4Transmit.IpChecksum, c.IPv4Receive.IpChecksum), "n/a")
    current.add_row("TCP checksum",
                    _directions(c.IPv4Transmit.TcpChecksum, c.IPv4Receive.TcpChecksum),
                    _directions(c.IPv6Transmit.TcpChecksum, c.IPv6Receive.TcpChecksum))
    current.add_row("UDP checksum",
                    _directions(c.IPv4Transmit.UdpChecksum, c.IPv4Receive.UdpChecksum),
                    _directions(c.IPv6Transmit.UdpChecksum, c.IPv6Receive.UdpChecksum))
    current.add_row("LSOv1 (MaxOffLoadSize, MinSegmentCount)", _lso(offload.LsoV1.IPv4), "n/a")
    current.add_row("LSOv2 (MaxOffLoadSize, MinSegmentCount)", _lso(offload.LsoV2.IPv4),
                    _lso(offload.LsoV2.IPv6))
    if revision >= cfg.NDIS_OFFLOAD_REVISION_3:
        hardware = adapter.hardware_capabilities()
        rsc, rsc_hw = offload.Rsc, hardware.Rsc
        current.add_row("RSC", _rsc(rsc.IPv4, rsc_hw.IPv4), _rsc(rsc.IPv6, rsc_hw.IPv6))
        gre, gre_hw = (offload.EncapsulatedPacketTaskOffloadGre,
                       hardware.EncapsulatedPacketTaskOffloadGre)
        current.add_row("NVGRE by outer IP (MaxHeaderSizeSupported)",
                        _nvgre(gre, gre_hw, cfg.NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_OUTER_IPV4),
                        _nvgre(gre, gre_hw, cfg.NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_OUTER_IPV6))
    else:
        current.add_row("RSC", absent, absent)
        current.add_row("NVGRE by outer IP (MaxHeaderSizeSupported)", absent, absent)
    current.add_row("IPsec", _NOT_SUPPORTED, _NOT_SUPPORTED)
    current.add_row("Encapsulation (checksum Tx)",
                    _flags(c.IPv4Transmit.Encapsulation, _ENCAPSULATION_NAMES),
                    _flags(c.IPv6Transmit.Encapsulation, _ENCAPSULATION_NAMES))
    console.print(current)

    encapsulation = adapter.offload_encapsulation()
    state_names = {cfg.NDIS_OFFLOAD_SET_NO_CHANGE: "never set", cfg.NDIS_OFFLOAD_SET_ON: "on",
                   cfg.NDIS_OFFLOAD_SET_OFF: "off"}
    for ip in ("IPv4", "IPv6"):
        part = getattr(encapsulation, ip)
        detail = (f" ({_flags(part.EncapsulationType, _ENCAPSULATION_NAMES)}, "
                  f"HeaderSize {part.HeaderSize})" if part.Enabled == cfg.NDIS_OFFLOAD_SET_ON
                  else "")
        console.print(f"OID_OFFLOAD_ENCAPSULATION {ip}: "
                      f"{state_names.get(part.Enabled, part.Enabled)}{detail}")
    if adapter.task_offload_disabled:
        console.print("DisableTaskOffload=1: every task offload is off; "
                      "OID_OFFLOAD_ENCAPSULATION was not issued")
    console.print(f"Status indications: {len(adapter.indications)} "
                  f"({', '.join(i.Oid for i in adapter.indications) or 'none'})")

    datapath = adapter.datapath()
    active = [name for name in cfg.OFFLOAD_SWITCHES if getattr(datapath, name)]
    console.print("Datapath operational: " + (", ".join(active) or "nothing"))
    supported = adapter.capabilities.supported_switches()
    missing = [name for name in cfg.OFFLOAD_SWITCHES if not supported[name]]
    if missing:
        console.print("Not built in the datapath, reported not supported: "
                      + ", ".join(_SWITCH_NAMES.get(name, name) for name in missing))
