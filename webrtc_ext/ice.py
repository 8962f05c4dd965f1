"""ICE: configurable nomination, every STUN/TURN server, a port range, ICE-lite, counters.

:class:`IceConnection` subclasses the forked aioice ``Connection``
(:mod:`webrtc_ext._vendor.aioice.ice`), whose check list, nomination and consent are the
sans-I/O :class:`webrtc_ext.ice_engine.IceCheckList`. This module adds what aioice has no
option for: host addresses and a port range, every STUN and TURN server, the datagram fast
path and the candidate-pair grid for stats.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import ipaddress
import logging
import math
import random
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pylibsrtp
from aioice import Candidate, TransportPolicy, stun
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.turn import UDP_SOCKET_BUFFER_SIZE
from aiortc import RTCIceServer
from aiortc.rtcicetransport import parse_stun_turn_uri

from ._vendor.aioice.ice import (
    Connection,
    StunProtocol,
    get_host_addresses,
    relayed_candidate,
    server_reflexive_candidate,
)
from .config import PeerConnectionConfig
from .ice_engine import CandidatePair

if TYPE_CHECKING:
    from ._native import RecvPath

logger = logging.getLogger(__name__)

#: Datagrams read from a socket per event-loop wake-up, at most (the first one included + this).
DRAIN_BATCH = 32
#: Seconds between two reads of one socket below which it is drained: datagrams arrive faster
#: than one per wake-up (a burst, or a fast stream), so more are likely queued. An audio leg
#: (one datagram per 20 ms) is not: asking would cost a failed ``recvfrom`` per datagram.
DRAIN_GAP = 0.002
#: How long gathering waits for STUN and TURN servers, in seconds.
GATHER_TIMEOUT = 5.0


class TurnTransport(enum.Enum):
    """How we reach a TURN server (the relayed address itself is always UDP)."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


@dataclass(frozen=True)
class TurnServer:
    """One TURN server of the configuration."""

    url: str
    host: str
    port: int
    transport: TurnTransport
    username: str | None
    password: str | None


@dataclass(frozen=True)
class IceServers:
    """The STUN and TURN servers of a configuration, every one of them kept."""

    stun: tuple[tuple[str, int], ...]
    turn: tuple[TurnServer, ...]
    rejected: tuple[tuple[str, str], ...]
    """``(url, reason)`` for each URL that cannot be used."""


def parse_ice_servers(servers: Sequence[RTCIceServer]) -> IceServers:
    """Sort configured URLs into STUN and TURN servers, keeping all of them (not only the first)."""
    stun_servers: list[tuple[str, int]] = []
    turn_servers: list[TurnServer] = []
    rejected: list[tuple[str, str]] = []
    for server in servers:
        urls = server.urls if isinstance(server.urls, list) else [server.urls]
        for url in urls:
            try:
                parsed = parse_stun_turn_uri(url)
            except ValueError as exc:
                rejected.append((url, str(exc)))
                continue
            scheme = parsed["scheme"]
            if scheme == "stun":
                stun_servers.append((parsed["host"], parsed["port"]))
            elif scheme == "stuns":
                rejected.append((url, "stuns (STUN over TLS) is not supported"))
            elif server.credentialType != "password":
                rejected.append((url, f"credentialType {server.credentialType!r} is not supported"))
            elif scheme == "turns" and parsed["transport"] != "tcp":
                rejected.append((url, "turns needs transport=tcp (TLS over TCP)"))
            elif scheme == "turn" and parsed["transport"] not in ("udp", "tcp"):
                rejected.append((url, f"unknown TURN transport {parsed['transport']!r}"))
            else:
                transport = (
                    TurnTransport.TLS if scheme == "turns" else TurnTransport(parsed["transport"])
                )
                turn_servers.append(
                    TurnServer(
                        url=url,
                        host=parsed["host"],
                        port=parsed["port"],
                        transport=transport,
                        username=server.username,
                        password=server.credential,
                    )
                )
    return IceServers(tuple(stun_servers), tuple(turn_servers), tuple(rejected))


#: The largest value of a 32-bit PRIORITY (RFC 8445 §7.1.1, RFC 8445 §5.1.2).
MAX_PRIORITY = 2**32 - 1


def host_local_preference(index: int) -> int:
    """The local preference of the host candidate on the ``index``-th address, first preferred.

    RFC 8445 §5.1.2.1: candidates of one type and component MUST have unique local
    preferences. With equal ones (aioice gives every host candidate 65535) two pairs can tie,
    and with aggressive nomination the two agents may then select different pairs.
    """
    return max(65535 - index, 0)


def remote_candidate_problem(candidate: Candidate) -> str | None:
    """Why a remote candidate can never be checked (RFC 8445 §5.1), or ``None`` if it can."""
    if not 1 <= candidate.port <= 65535:
        return f"port {candidate.port} is not between 1 and 65535"
    if not 1 <= candidate.component <= 256:
        return f"component {candidate.component} is not between 1 and 256"
    if not 1 <= candidate.priority <= MAX_PRIORITY:
        return f"priority {candidate.priority} is not between 1 and 2**32-1"
    return None


@dataclass(frozen=True)
class IceGatheringError:
    """A STUN or TURN server that gave no candidate (W3C RTCPeerConnectionIceErrorEvent)."""

    url: str
    address: str | None
    port: int | None
    errorCode: int
    errorText: str


@dataclass(frozen=True)
class CandidatePairInfo:
    """A snapshot of one pair of the candidate-pair grid, with its counters."""

    id: str
    local: Candidate
    remote: Candidate
    component: int
    state: str
    nominated: bool
    selected: bool
    priority: int
    requests_sent: int
    requests_received: int
    responses_sent: int
    responses_received: int
    consent_requests_sent: int
    packets_sent: int
    packets_received: int
    bytes_sent: int
    bytes_received: int
    current_round_trip_time: float | None
    total_round_trip_time: float
    round_trip_time_measurements: int
    last_packet_sent_timestamp: float | None
    last_packet_received_timestamp: float | None


#: A pair of the check list, with its counters (the engine's pair).
IceCandidatePair = CandidatePair


class _PeerCounters:
    """Packets and bytes exchanged with one remote address over one local socket."""

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "last_received",
        "last_sent",
        "packets_received",
        "packets_sent",
    )

    def __init__(self) -> None:
        self.packets_sent = 0
        self.packets_received = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.last_sent: float | None = None
        self.last_received: float | None = None


class IceProtocol(StunProtocol):
    """A local socket: demultiplexes by first byte (RFC 7983) and never lets bad input escape."""

    # In slots: the C path (webrtc_ext._native) reads these for every packet at their
    # offsets rather than in the instance dictionary; the rest stays in ``__dict__``.
    __slots__ = ("_socket", "counters")

    receiver: IceConnection

    def __init__(self, receiver: IceConnection) -> None:
        super().__init__(receiver)
        self.counters: dict[tuple[str, int], _PeerCounters] = {}
        self.malformed_stun = 0
        self._socket: socket.socket | None = None
        self._last_read = -math.inf
        self._draining = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A duplicate of the socket's descriptor (same socket, public API only): after one
            # datagram, read what else is already queued without another event-loop round
            # trip, and send without asyncio's per-call checks.
            self._socket = socket.fromfd(sock.fileno(), sock.family, sock.type)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        super().connection_lost(exc)

    def peer_counters(self, addr: tuple[str, int]) -> _PeerCounters:
        """The counters for one remote address, created on first use."""
        counters = self.counters.get(addr)
        if counters is None:
            counters = self.counters[addr] = _PeerCounters()
        return counters

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        self._handle_datagram(cast(bytes, data), addr)
        # Read what else is queued, without another event-loop round trip, while datagrams
        # come faster than one per wake-up (DRAIN_GAP); otherwise the next is the loop's.
        now = time.monotonic()
        last, self._last_read = self._last_read, now
        if not self._draining and now - last > DRAIN_GAP:
            return
        drained = False
        sock = self._socket
        for _ in range(DRAIN_BATCH):
            if sock is None:
                break
            try:
                data, addr = sock.recvfrom(65536)
            except OSError:  # BlockingIOError when empty; errors are asyncio's to report
                break
            drained = True
            self._handle_datagram(data, addr)
            sock = self._socket
        self._draining = drained

    def _handle_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if not data:
            return
        if data[0] > 3:
            native = self.receiver.native_receive
            if native is not None:
                # SRTP for a raw receiver: counted here, decrypted, parsed and delivered to
                # the receiver's callbacks in one C call (webrtc_ext.native); False: the rest.
                try:
                    if native.deliver(self, data, addr):
                        return
                except pylibsrtp.Error as exc:
                    logger.debug("dropped SRTP packet that failed to unprotect: %s", exc)
                    return
                except ValueError as exc:
                    logger.info("dropped malformed RTP packet: %s", exc)
                    return
                except Exception:
                    logger.warning("dropped a datagram the data callback failed on", exc_info=True)
                    return
            # RFC 7983: 0-3 is STUN; DTLS (20-63) and RTP/RTCP (128-191) go straight up,
            # without being parsed as STUN first.
            counters = self.counters.get(addr)
            if counters is None:
                counters = self.peer_counters((addr[0], addr[1]))
            counters.packets_received += 1
            counters.bytes_received += len(data)
            counters.last_received = time.time()
            self.receiver.data_received(data, self.local_candidate.component)
            return
        peer = (addr[0], addr[1])
        try:
            message = stun.parse_message(data)
        except Exception as exc:
            self.malformed_stun += 1
            logger.info("dropped malformed STUN datagram from %s: %s", peer, exc)
            return
        try:
            if (
                message.message_class in (stun.Class.RESPONSE, stun.Class.ERROR)
                and message.transaction_id in self.transactions
            ):
                self.transactions[message.transaction_id].response_received(message, peer)
            elif message.message_class == stun.Class.REQUEST:
                self.receiver.request_received(message, peer, self)
        except Exception:
            self.malformed_stun += 1
            logger.warning(
                "dropped STUN message from %s that could not be handled", peer, exc_info=True
            )

    async def send_data(self, data: bytes, addr: tuple[str, int]) -> None:
        self.send_datagram(data, addr)

    def send_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        """Send one datagram now, counting it (the synchronous form of ``send_data``)."""
        counters = self.peer_counters(addr)
        counters.packets_sent += 1
        counters.bytes_sent += len(data)
        counters.last_sent = time.time()
        sock = self._socket
        if sock is not None:
            try:
                sock.sendto(data, addr)
                return
            except OSError:
                pass  # a full buffer or an error: asyncio's transport buffers or reports it
        self.transport.sendto(data, addr)


class IceConnection(Connection):
    """The forked aioice connection with gathering on chosen addresses, every server, counters."""

    def __init__(
        self,
        *,
        ice_controlling: bool,
        config: PeerConnectionConfig,
        turn_ssl_context: ssl.SSLContext | None = None,
        local_username: str | None = None,
        local_password: str | None = None,
    ) -> None:
        servers = parse_ice_servers(config.ice_servers)
        super().__init__(
            ice_controlling=ice_controlling,
            use_ipv4=config.use_ipv4,
            use_ipv6=config.use_ipv6,
            transport_policy=TransportPolicy[config.ice_transport_policy.name],
            local_username=local_username,
            local_password=local_password,
            ice_lite=config.ice_lite,
            nomination=config.nomination,
            regular_nomination_timeout=config.regular_nomination_timeout,
            upgrade_window=config.upgrade_window,
        )
        self._config = config
        self._servers = servers
        self._turn_ssl_context = turn_ssl_context
        self._send_route: tuple[CandidatePair, IceProtocol, tuple[str, int]] | None = None
        self.on_selected_pair_change: Callable[[IceCandidatePair], None] | None = None
        self.data_callback: Callable[[bytes, int], bool] | None = None
        """Fast path for received non-STUN datagrams: called with ``(data, component)`` as
        they arrive; returning ``True`` consumes the datagram, ``False`` queues it for
        ``recv()`` as usual."""
        self.native_receive: RecvPath | None = None
        """The C receive path of the DTLS transport over this connection, which sets it
        (webrtc_ext.native): datagrams it takes skip ``data_received`` altogether."""
        self.gathering_errors: list[IceGatheringError] = [
            IceGatheringError(url, None, None, 701, reason) for url, reason in servers.rejected
        ]
        for url, reason in servers.rejected:
            logger.warning("ICE server %s is not used: %s", url, reason)

    def data_received(self, data: bytes, component: int) -> None:
        """A datagram for the layer above: offered to ``data_callback`` before the queue."""
        callback = self.data_callback
        if callback is not None:
            try:
                if callback(data, component):
                    return
            except Exception:
                logger.warning("dropped a datagram the data callback failed on", exc_info=True)
                return
        super().data_received(data, component)

    def send_datagram(self, data: bytes, component: int = 1) -> None:
        """Send one datagram on the selected pair now (the synchronous form of ``sendto``)."""
        pair = self._engine.selected.get(component)
        route = self._send_route
        if route is None or route[0] is not pair:
            if pair is None:
                raise ConnectionError("Cannot send data, not connected")
            # Resolved once per selected pair, not per packet (a pair's remote address is
            # fixed once it can be selected: an mDNS name is resolved before pairing).
            route = self._send_route = (
                pair,
                cast(IceProtocol, pair.local_socket),
                pair.remote_addr,
            )
        route[1].send_datagram(data, route[2])

    # -- gathering ------------------------------------------------------------------------

    def _host_addresses(self) -> list[str]:
        if self._config.host_addresses is None:
            return get_host_addresses(use_ipv4=self._use_ipv4, use_ipv6=self._use_ipv6)
        addresses = []
        for address in self._config.host_addresses:
            version = ipaddress.ip_address(address).version
            if (version == 4 and self._use_ipv4) or (version == 6 and self._use_ipv6):
                addresses.append(address)
        return addresses

    async def gather_candidates(self) -> None:
        """Gather host candidates (in the port range) and those of every STUN and TURN server."""
        if self._local_candidates_start:
            return
        self._local_candidates_start = True
        addresses: list[str] = []
        if self._transport_policy == TransportPolicy.ALL:
            addresses = self._host_addresses()
        results = await asyncio.gather(
            *(
                self.get_component_candidates(component=component, addresses=addresses)
                for component in sorted(self._engine.components)
            )
        )
        for candidates in results:
            self._local_candidates += candidates
        self._local_candidates_end = True

    async def _bind(self, address: str) -> IceProtocol | None:
        loop = asyncio.get_running_loop()
        port_range = self._config.port_range
        if port_range is None:
            ports = [0]
        else:
            ports = list(range(port_range[0], port_range[1] + 1))
            random.shuffle(ports)
        for port in ports:
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: IceProtocol(self), local_addr=(address, port)
                )
            except OSError as exc:
                if port != 0 and exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                logger.info("could not bind to %s: %s", address, exc)
                return None
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER_SIZE)
            return protocol
        assert port_range is not None
        logger.warning(
            "no free UDP port on %s in the range %d-%d", address, port_range[0], port_range[1]
        )
        return None

    async def get_component_candidates(
        self, component: int, addresses: list[str], timeout: int = int(GATHER_TIMEOUT)
    ) -> list[Candidate]:
        """Host candidates on every address, then srflx and relay ones from every server."""
        candidates: list[Candidate] = []
        host_protocols: list[IceProtocol] = []
        for index, address in enumerate(addresses):
            protocol = await self._bind(address)
            if protocol is None:
                continue
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host", host_local_preference(index)),
                host=host,
                port=port,
                type="host",
            )
            host_protocols.append(protocol)
            candidates.append(protocol.local_candidate)
        self._protocols += host_protocols
        if self.ice_lite:
            return candidates

        jobs: list[tuple[str, asyncio.Task[tuple[Candidate, StunProtocol | None]]]] = []
        for server in self._servers.stun:
            for protocol in host_protocols:
                if ipaddress.ip_address(protocol.local_candidate.host).version == 4:
                    url = f"stun:{server[0]}:{server[1]}"
                    task: asyncio.Task[tuple[Candidate, StunProtocol | None]] = asyncio.create_task(
                        server_reflexive_candidate(protocol, server)
                    )
                    jobs.append((url, task))
        for index, turn in enumerate(self._servers.turn):
            relay = asyncio.create_task(self._relayed_candidate(component, index, turn))
            jobs.append((turn.url, relay))
        if not jobs:
            return candidates

        _, pending = await asyncio.wait([task for _, task in jobs], timeout=timeout)
        seen: set[tuple[str, int]] = {(c.host, c.port) for c in candidates}
        for url, task in jobs:
            if task in pending:
                task.cancel()
                self._gathering_failed(url, 701, f"no answer within {timeout} s")
                continue
            exc = task.exception()
            if exc is not None:
                self._gathering_failed(url, *_describe_server_error(exc))
                continue
            candidate, relay_protocol = task.result()
            if relay_protocol is not None:
                self._protocols.append(relay_protocol)
            if (candidate.host, candidate.port) not in seen:
                seen.add((candidate.host, candidate.port))
                candidates.append(candidate)
        return candidates

    async def _relayed_candidate(
        self, component: int, index: int, server: TurnServer
    ) -> tuple[Candidate, StunProtocol | None]:
        tls: bool | ssl.SSLContext = False
        if server.transport is TurnTransport.TLS:
            tls = self._turn_ssl_context or True
        candidate, protocol = await relayed_candidate(
            component=component,
            hide_related_address=self._transport_policy == TransportPolicy.RELAY,
            protocol_factory=lambda: IceProtocol(self),
            turn_server=(server.host, server.port),
            turn_username=server.username,
            turn_password=server.password,
            turn_ssl=cast(bool, tls),
            turn_transport="udp" if server.transport is TurnTransport.UDP else "tcp",
        )
        # RFC 8445 §5.1.2.1: prefer relays reached over UDP, then TCP, then TLS, and keep
        # candidates from different servers distinct.
        transport_preference = {TurnTransport.UDP: 3, TurnTransport.TCP: 2, TurnTransport.TLS: 1}
        local_pref = (transport_preference[server.transport] << 13) - min(index, 8191)
        candidate.priority = candidate_priority(component, "relay", local_pref)
        candidate.foundation = candidate_foundation(
            "relay", server.transport.value, f"{server.host}:{server.port}"
        )
        return candidate, protocol

    def _gathering_failed(self, url: str, code: int, text: str) -> None:
        logger.warning("ICE server %s gave no candidate: %s %s", url, code, text)
        self.gathering_errors.append(IceGatheringError(url, None, None, code, text))

    # -- checks --------------------------------------------------------------------------

    async def add_remote_candidate(self, remote_candidate: Candidate | None) -> None:
        """aioice's ``add_remote_candidate``, dropping candidates that can never be checked.

        A port outside 1-65535 would otherwise reach ``sendto``, whose OverflowError is fatal
        to the asyncio transport: the socket closes and the whole call fails.
        """
        if remote_candidate is not None:
            problem = remote_candidate_problem(remote_candidate)
            if problem is not None:
                logger.warning("dropped remote candidate %s: %s", remote_candidate, problem)
                return
        await super().add_remote_candidate(remote_candidate)

    def _selected_pair_changed(self, pair: CandidatePair) -> None:
        if self.on_selected_pair_change is not None:
            self.on_selected_pair_change(pair)

    # -- the grid -------------------------------------------------------------------------

    @property
    def selected_pair(self) -> IceCandidatePair | None:
        """The selected pair of component 1, if any."""
        return self._engine.selected.get(1)

    @property
    def selected_pair_changes(self) -> int:
        """How many times a selected pair changed."""
        return self._engine.selected_pair_changes

    def candidate_pairs(self) -> list[CandidatePairInfo]:
        """Every pair of the grid (the check list plus the selected pairs), with counters."""
        engine = self._engine
        pairs = list(engine.pairs)
        pairs += [p for p in engine.selected.values() if p not in pairs]
        selected = set(map(id, engine.selected.values()))
        infos = []
        for pair in pairs:
            counters = cast(IceProtocol, pair.local_socket).counters.get(pair.remote_addr)
            infos.append(
                CandidatePairInfo(
                    id=pair.id,
                    local=pair.local_candidate,
                    remote=pair.remote_candidate,
                    component=pair.component,
                    state=pair.state.value,
                    nominated=pair.nominated,
                    selected=id(pair) in selected,
                    priority=engine.priority(pair),
                    requests_sent=pair.requests_sent,
                    requests_received=pair.requests_received,
                    responses_sent=pair.responses_sent,
                    responses_received=pair.responses_received,
                    consent_requests_sent=pair.consent_requests_sent,
                    packets_sent=counters.packets_sent if counters else 0,
                    packets_received=counters.packets_received if counters else 0,
                    bytes_sent=counters.bytes_sent if counters else 0,
                    bytes_received=counters.bytes_received if counters else 0,
                    current_round_trip_time=pair.current_round_trip_time,
                    total_round_trip_time=pair.total_round_trip_time,
                    round_trip_time_measurements=pair.round_trip_time_measurements,
                    last_packet_sent_timestamp=counters.last_sent if counters else None,
                    last_packet_received_timestamp=counters.last_received if counters else None,
                )
            )
        return infos


def _describe_server_error(exc: BaseException) -> tuple[int, str]:
    """A W3C icecandidateerror code and a readable text for a STUN/TURN failure."""
    if isinstance(exc, stun.TransactionFailed):
        code, reason = exc.response.attributes.get("ERROR-CODE", (700, "error response"))
        if code == 401:
            reason = f"{reason}: the TURN username or credential was refused"
        return int(code), str(reason)
    if isinstance(exc, stun.TransactionTimeout):
        return 701, "the server did not answer"
    if isinstance(exc, ssl.SSLError):
        return 701, f"TLS handshake failed: {exc}"
    if isinstance(exc, OSError):
        return 701, f"could not reach the server: {exc}"
    return 701, f"{type(exc).__name__}: {exc}"
