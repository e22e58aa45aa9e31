"""The standardized registry keywords for task offload: names, values, defaults, resolution.

The rules here: ``registry-values-for-task-offload.md`` (seed) and
``using-registry-values-to-enable-and-disable-task-offloading.md`` (granular and grouped
checksum keywords 0 off / 1 Tx / 2 Rx / 3 both, LSO and IPsec keywords, DisableTaskOffload;
the miniport reads "all of the granular settings"), ``standardized-inf-keywords-for-rsc.md``
(*RscIPv4, *RscIPv6) and ``standardized-inf-keywords-for-nvgre-task-offload.md``
(*EncapsulatedPacketTaskOffload). Where a grouped and a granular keyword both speak of one
checksum, the granular one wins (DESIGN section 3). A keyword is accepted whether or not the
datapath has built its offload; what is built decides what is *reported* (:mod:`.adapter`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Mapping


class KeywordError(ValueError):
    """A registry keyword with an unknown name or a value it does not allow.

    Attributes
    ----------
    keyword : str
        The keyword as written by the user (or its canonical NDIS spelling when known).
    """

    def __init__(self, keyword: str, message: str):
        super().__init__(message)
        self.keyword = keyword


# ---------------------------------------------------------------------------------------------
# Registry keywords
# ---------------------------------------------------------------------------------------------

_CHECKSUM_VALUES = {0: "Disabled", 1: "Tx Enabled", 2: "Rx Enabled", 3: "Rx & Tx Enabled"}
_ON_OFF_VALUES = {0: "Disabled", 1: "Enabled"}
_IPSEC_VALUES = {0: "Disabled", 1: "Auth Header Enabled", 2: "ESP Enabled",
                 3: "Auth Header & ESP Enabled"}
_REGISTRY_PAGE = "registry-values-for-task-offload.md"


@dataclasses.dataclass(frozen=True)
class KeywordSpec:
    """One standardized keyword: its NDIS spelling, values (value -> EnumDesc), default.

    ``covers`` lists, for a grouped keyword, the granular keywords it speaks for.
    """

    name: str
    values: Mapping[int, str]
    default: int
    source: str
    covers: tuple[str, ...] = ()

    @property
    def field(self) -> str:
        """The :class:`Keywords` field (the name without its leading '*')."""
        return self.name.lstrip("*")

    def allowed(self) -> str:
        return ", ".join(f"{value} ({meaning})" for value, meaning in self.values.items())


#: Every keyword this model reads, in the order the registry pages list them.
KEYWORD_SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("*IPChecksumOffloadIPv4", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*TCPChecksumOffloadIPv4", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*TCPChecksumOffloadIPv6", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*UDPChecksumOffloadIPv4", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*UDPChecksumOffloadIPv6", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*LsoV1IPv4", _ON_OFF_VALUES, 1, _REGISTRY_PAGE),
    KeywordSpec("*LsoV2IPv4", _ON_OFF_VALUES, 1, _REGISTRY_PAGE),
    KeywordSpec("*LsoV2IPv6", _ON_OFF_VALUES, 1, _REGISTRY_PAGE),
    KeywordSpec("*IPsecOffloadV1IPv4", _IPSEC_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*IPsecOffloadV2", _IPSEC_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*IPsecOffloadV2IPv4", _IPSEC_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*TCPUDPChecksumOffloadIPv4", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE,
                covers=("*IPChecksumOffloadIPv4", "*TCPChecksumOffloadIPv4",
                        "*UDPChecksumOffloadIPv4")),
    KeywordSpec("*TCPUDPChecksumOffloadIPv6", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE,
                covers=("*TCPChecksumOffloadIPv6", "*UDPChecksumOffloadIPv6")),
    KeywordSpec("*RscIPv4", _ON_OFF_VALUES, 1, "standardized-inf-keywords-for-rsc.md"),
    KeywordSpec("*RscIPv6", _ON_OFF_VALUES, 1, "standardized-inf-keywords-for-rsc.md"),
    KeywordSpec("*EncapsulatedPacketTaskOffload", _ON_OFF_VALUES, 1,
                "standardized-inf-keywords-for-nvgre-task-offload.md"),
    KeywordSpec("DisableTaskOffload", {0: "Task offloads enabled", 1: "All task offloads disabled"},
                0, _REGISTRY_PAGE),
)

_SPECS_BY_FOLDED_NAME = {spec.name.casefold(): spec for spec in KEYWORD_SPECS}
GROUPED_KEYWORDS = tuple(spec for spec in KEYWORD_SPECS if spec.covers)


def keyword_spec(name: str) -> KeywordSpec:
    """The spec of a keyword, matched case-insensitively on the exact NDIS spelling.

    Raises
    ------
    KeywordError
        Unknown name (the message suggests the nearest known keyword).
    """
    spec = _SPECS_BY_FOLDED_NAME.get(name.strip().casefold())
    if spec is not None:
        return spec
    folded = list(_SPECS_BY_FOLDED_NAME)
    near = difflib.get_close_matches(name.strip().casefold(), folded, n=1, cutoff=0.6)
    hint = (f"did you mean {_SPECS_BY_FOLDED_NAME[near[0]].name!r}?" if near else
            "known keywords: " + ", ".join(spec.name for spec in KEYWORD_SPECS))
    raise KeywordError(name, f"unknown keyword {name!r}; {hint}")


_DECIMAL = re.compile(r"[+-]?[0-9]+")


def keyword_value(spec: KeywordSpec, value: int | str) -> int:
    """Check ``value`` (an int or a decimal string, as the registry stores it) for ``spec``.

    Raises
    ------
    KeywordError
        Not an integer, or not one of the values the keyword allows; the message names the
        keyword and lists the allowed values.
    """
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise KeywordError(spec.name, f"keyword {spec.name}: value {value!r} is not an integer; "
                                      f"allowed values: {spec.allowed()}")
    if number not in spec.values:
        raise KeywordError(spec.name, f"keyword {spec.name}: value {number} is out of range; "
                                      f"allowed values: {spec.allowed()}")
    return number


def parse_keyword(text: str) -> tuple[str, int]:
    """``"NAME=VALUE"`` -> ``(canonical NDIS name, value)``.

    Raises
    ------
    KeywordError
        No ``=``, an unknown name, or a value the keyword does not allow.
    """
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise KeywordError(text, f"expected NAME=VALUE (e.g. '*LsoV2IPv4=0'), got {text!r}")
    spec = keyword_spec(name)
    return spec.name, keyword_value(spec, value)


def parse_keywords(entries: Iterable[str] | Mapping[str, int | str]
                   | Iterable[tuple[str, int | str]]) -> dict[str, int]:
    """Check every entry; ``{canonical name: value}`` in first-seen order, the last value of a
    repeated keyword winning. Entries are ``"NAME=VALUE"`` strings, ``(name, value)`` pairs or a
    mapping."""
    items = entries.items() if isinstance(entries, Mapping) else entries
    given: dict[str, int] = {}
    for item in items:
        if isinstance(item, str):
            name, value = parse_keyword(item)
        else:
            raw_name, raw_value = item
            spec = keyword_spec(raw_name)
            name, value = spec.name, keyword_value(spec, raw_value)
        given[name] = value
    return given


@dataclasses.dataclass(frozen=True)
class Keywords:
    """The standardized keywords the miniport reads at initialization, resolved.

    The grouped checksum keywords are resolved into the granular ones they cover (a granular
    keyword, being the more specific, wins regardless of order; DESIGN section 3), so this
    holds only granular values: ``registry-values-for-task-offload.md`` has the miniport read
    "all of the granular settings". Field names are the keywords without their ``*``.
    OID_TCP_OFFLOAD_PARAMETERS updates these values (``oid-tcp-offload-parameters.md``: NDIS
    "updates the miniport adapter's offload standardized keywords with the new settings").
    """

    IPChecksumOffloadIPv4: int = 3
    TCPChecksumOffloadIPv4: int = 3
    TCPChecksumOffloadIPv6: int = 3
    UDPChecksumOffloadIPv4: int = 3
    UDPChecksumOffloadIPv6: int = 3
    LsoV1IPv4: int = 1
    LsoV2IPv4: int = 1
    LsoV2IPv6: int = 1
    IPsecOffloadV1IPv4: int = 3
    IPsecOffloadV2: int = 3
    IPsecOffloadV2IPv4: int = 3
    RscIPv4: int = 1
    RscIPv6: int = 1
    EncapsulatedPacketTaskOffload: int = 1
    DisableTaskOffload: int = 0

    def __post_init__(self):
        for spec in _RESOLVED_SPECS:
            keyword_value(spec, getattr(self, spec.field))

    @classmethod
    def from_registry(cls, entries: Iterable[str] | Mapping[str, int | str]
                      | Iterable[tuple[str, int | str]] = ()) -> Keywords:
        """Resolve keyword entries (see :func:`parse_keywords`); absent ones take their
        default."""
        given = parse_keywords(entries)
        values: dict[str, int] = {}
        for spec in _RESOLVED_SPECS:
            if spec.name in given:
                values[spec.field] = given[spec.name]
        for grouped in GROUPED_KEYWORDS:
            if grouped.name in given:
                for granular in grouped.covers:
                    values.setdefault(granular.lstrip("*"), given[grouped.name])
        return cls(**values)

    @property
    def task_offload_disabled(self) -> bool:
        return self.DisableTaskOffload == 1

    def as_registry(self) -> dict[str, int]:
        """``{NDIS keyword spelling: value}`` for every resolved keyword."""
        return {spec.name: getattr(self, spec.field) for spec in _RESOLVED_SPECS}

    def replace(self, **changes) -> Keywords:
        return dataclasses.replace(self, **changes)


_RESOLVED_SPECS = tuple(spec for spec in KEYWORD_SPECS if not spec.covers)
assert tuple(spec.field for spec in _RESOLVED_SPECS) == \
    tuple(f.name for f in dataclasses.fields(Keywords))
assert all(getattr(Keywords(), spec.field) == spec.default for spec in _RESOLVED_SPECS)
