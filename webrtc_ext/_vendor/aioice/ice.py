"""aioice 0.13.0's ``ice`` module, forked (upstream: aioice 0.13.0, ``aioice/ice.py``).

BSD-3-Clause, see LICENSE next to this file. Every change from upstream is recorded
in docs/fork.md; ``python scripts/fork_diff.py`` shows them. :class:`Connection` is
a thin asyncio shell around the sans-I/O :class:`webrtc_ext.ice_engine.IceCheckList`:
it owns the sockets, the STUN transactions and the timer; the engine decides which
checks to send, nominates, selects pairs and tracks consent.
"""

import asyncio
import copy
import ipaddress
import itertools
import logging
import re
import secrets
import socket
import threading
from collections.abc import Callable
from typing import Any, cast

import aioice.ice
import ifaddr
from aioice import mdns, stun, turn
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import ConnectionClosed, ConnectionEvent, TransportPolicy
from aioice.utils import random_string

from ..._aio import Flag
from ..._internals import set_candidate_network_host
from ...config import NominationMode
from ...ice_engine import (
    Action,
    CandidatePair,
    CheckListState,
    ConsentExpired,
    IceCheckList,
    PairSelected,
    SendRequest,
    StateChanged,
)

logger = logging.getLogger(__name__)

ICE_COMPLETED = 1
ICE_FAILED = 2

# CONSENT_FAILURES and CONSENT_INTERVAL are read from aioice.ice at connect(), so that
# they stay tunable where aiortc's users (and tests) set them. MAX_EARLY_CHECKS moved to
# the engine.

connection_id = itertools.count()
protocol_id = itertools.count()

_mdns = threading.local()


async def get_or_create_mdns_protocol(subscriber: object) -> mdns.MDnsProtocol:
    if not hasattr(_mdns, "lock"):
        _mdns.lock = asyncio.Lock()
        _mdns.protocol = None
        _mdns.subscribers = set()
    async with _mdns.lock:
        if _mdns.protocol is None:
            _mdns.protocol = await mdns.create_mdns_protocol()
        _mdns.subscribers.add(subscriber)
    return cast(mdns.MDnsProtocol, _mdns.protocol)


async def unref_mdns_protocol(subscriber: object) -> None:
    if hasattr(_mdns, "lock"):
        async with _mdns.lock:
            _mdns.subscribers.discard(subscriber)
            if _mdns.protocol and not _mdns.subscribers:
                await _mdns.protocol.close()
                _mdns.protocol = None


def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """
    Get local IP addresses.
    """
    addresses = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and use_ipv4 and ip.ip != "127.0.0.1":
                addresses.append(ip.ip)
            elif use_ipv6 and ip.ip[0] != "::1" and ip.ip[2] == 0:
                addresses.append(ip.ip[0])
    return addresses


async def relayed_candidate(
    *,
    component: int,
    hide_related_address: bool,
    protocol_factory: Callable[[], "StunProtocol"],
    turn_server: tuple[str, int],
    turn_username: str | None,
    turn_password: str | None,
    turn_ssl: bool,
    turn_transport: str,
) -> tuple[Candidate, "StunProtocol"]:
    """
    Connect to a TURN server to obtain a relayed candidate.
    """
    # Connect to TURN server.
    _, protocol = await turn.create_turn_endpoint(
        protocol_factory,
        server_addr=turn_server,
        username=turn_username,
        password=turn_password,
        ssl=turn_ssl,
        transport=turn_transport,
    )

    # Build relayed candidate.
    candidate_address = protocol.transport.get_extra_info("sockname")
    related_address = protocol.transport.get_extra_info("related_address")
    if hide_related_address:
        # Do not expose a disallowed candidate through the related address
        # (RFC 9429 section 3.5.3), using the format of RFC 8839 section 5.1.
        if ipaddress.ip_address(candidate_address[0]).version == 4:
            related_address = ("0.0.0.0", 9)
        else:
            related_address = ("::", 9)
    protocol.local_candidate = Candidate(
        foundation=candidate_foundation("relay", "udp", candidate_address[0]),
        component=component,
        transport="udp",
        priority=candidate_priority(component, "relay"),
        host=candidate_address[0],
        port=candidate_address[1],
        type="relay",
        related_address=related_address[0],
        related_port=related_address[1],
    )
    return protocol.local_candidate, protocol


async def server_reflexive_candidate(
    protocol: "StunProtocol", stun_server: tuple[str, int]
) -> tuple[Candidate, None]:
    """
    Query STUN server to obtain a server-reflexive candidate.
    """
    # lookup address
    loop = asyncio.get_running_loop()
    stun_server = (
        await loop.run_in_executor(None, socket.gethostbyname, stun_server[0]),
        stun_server[1],
    )

    # perform STUN query
    request = stun.Message(
        message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST
    )
    response, _ = await protocol.request(request, stun_server)

    local_candidate = protocol.local_candidate
    return Candidate(
        foundation=candidate_foundation("srflx", "udp", local_candidate.host),
        component=local_candidate.component,
        transport=local_candidate.transport,
        priority=candidate_priority(local_candidate.component, "srflx"),
        host=response.attributes["XOR-MAPPED-ADDRESS"][0],
        port=response.attributes["XOR-MAPPED-ADDRESS"][1],
        type="srflx",
        related_address=local_candidate.host,
        related_port=local_candidate.port,
    ), None


def validate_password(value: str) -> None:
    """
    Check the password is well-formed.

    See RFC 5245 - 15.4. "ice-ufrag" and "ice-pwd" Attributes
    """
    if not re.match("^[a-zA-Z0-9+/]{22,256}$", value):
        raise ValueError("Password must satisfy 22*256ice-char")


def validate_remote_candidate(candidate: Candidate, host: str) -> str:
    """
    Check the remote candidate is supported and return its canonical address.
    """
    if candidate.type not in ["host", "relay", "srflx"]:
        raise ValueError(f'Unexpected candidate type "{candidate.type}"')
    return str(ipaddress.ip_address(host))


def validate_username(value: str) -> None:
    """
    Check the username is well-formed.

    See RFC 5245 - 15.4. "ice-ufrag" and "ice-pwd" Attributes
    """
    if not re.match("^[a-zA-Z0-9+/]{4,256}$", value):
        raise ValueError("Username must satisfy 4*256ice-char")


class StunProtocol(asyncio.DatagramProtocol):
    local_candidate: Candidate
    transport: asyncio.DatagramTransport

    def __init__(self, receiver: "Connection") -> None:
        self.__closed: asyncio.Future[bool] = asyncio.Future()
        self.id = next(protocol_id)
        self.receiver = receiver
        self.transactions: dict[bytes, stun.Transaction] = {}

    def connection_lost(self, exc: Exception | None) -> None:
        self.__log_debug("connection_lost(%s)", exc)
        if not self.__closed.done():
            self.receiver.protocol_lost(self)
            self.__closed.set_result(True)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.__log_debug("connection_made(%s)", transport)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        # Force an IPv6 four-tuple to a two-tuple.
        addr = (addr[0], addr[1])
        data = cast(bytes, data)

        try:
            message = stun.parse_message(data)
            self.__log_debug("< %s %s", addr, message)
        except ValueError:
            self.receiver.data_received(data, self.local_candidate.component)
            return

        if (
            message.message_class == stun.Class.RESPONSE
            or message.message_class == stun.Class.ERROR
        ) and message.transaction_id in self.transactions:
            transaction = self.transactions[message.transaction_id]
            transaction.response_received(message, addr)
        elif message.message_class == stun.Class.REQUEST:
            self.receiver.request_received(message, addr, self)

    def error_received(self, exc: Exception) -> None:
        self.__log_debug("error_received(%s)", exc)

    # custom

    async def close(self) -> None:
        self.transport.close()
        await self.__closed

    async def request(
        self,
        request: stun.Message,
        addr: tuple[str, int],
        integrity_key: bytes | None = None,
        retransmissions: int | None = None,
    ) -> tuple[stun.Message, tuple[str, int]]:
        """
        Execute a STUN transaction and return the response.
        """
        assert request.transaction_id not in self.transactions

        if integrity_key is not None:
            request.add_message_integrity(integrity_key)

        transaction = stun.Transaction(
            request,
            addr,
            self,
            retransmissions=retransmissions,
            integrity_key=integrity_key,
        )
        self.transactions[request.transaction_id] = transaction
        try:
            return await transaction.run()
        finally:
            del self.transactions[request.transaction_id]

    async def send_data(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)

    def send_stun(self, message: stun.Message, addr: tuple[str, int]) -> None:
        """
        Send a STUN message.
        """
        self.__log_debug("> %s %s", addr, message)
        self.transport.sendto(bytes(message), addr)

    def __log_debug(self, msg: str, *args: object) -> None:
        logger.debug("%s %s " + msg, self.receiver, self, *args)

    def __repr__(self) -> str:
        return f"protocol({self.id})"


class Connection:
    """
    An ICE connection for a single media stream.

    :param ice_controlling: Whether the local peer has the controlling role.
    :param components: The number of components.
    :param stun_server: The address of the STUN server or `None`.
    :param turn_server: The address of the TURN server or `None`.
    :param turn_username: The username for the TURN server.
    :param turn_password: The password for the TURN server.
    :param turn_ssl: Whether to use TLS for the TURN server.
    :param turn_transport: The transport for TURN server, `"udp"` or `"tcp"`.
    :param use_ipv4: Whether to use IPv4 candidates.
    :param use_ipv6: Whether to use IPv6 candidates.
    :param transport_policy: The transport policy.
    :param local_username: An optional local username, otherwise a random one
                           will be generated.
    :param local_password: An optional local password, otherwise a random one
                           will be generated.
    :param ice_lite: Act as an ICE-lite agent (never controlling, no checks).
    :param nomination: The nomination mode when controlling.
    :param regular_nomination_timeout: Regular nomination: how long after the first
                           valid pair to wait for better pairs.
    :param upgrade_window: Aggressive nomination: how long after completion better
                           pairs may still replace the selected one.
    """

    def __init__(
        self,
        ice_controlling: bool,
        components: int = 1,
        stun_server: tuple[str, int] | None = None,
        turn_server: tuple[str, int] | None = None,
        turn_username: str | None = None,
        turn_password: str | None = None,
        turn_ssl: bool = False,
        turn_transport: str = "udp",
        use_ipv4: bool = True,
        use_ipv6: bool = True,
        transport_policy: TransportPolicy = TransportPolicy.ALL,
        local_username: str | None = None,
        local_password: str | None = None,
        *,
        ice_lite: bool = False,
        nomination: NominationMode = NominationMode.AGGRESSIVE,
        regular_nomination_timeout: float = 0.5,
        upgrade_window: float = 5.0,
    ) -> None:
        if local_username is None:
            local_username = random_string(4)
        else:
            validate_username(local_username)

        if local_password is None:
            local_password = random_string(22)
        else:
            validate_password(local_password)

        #: Whether the remote party is an ICE Lite implementation.
        self.remote_is_lite = False
        #: Remote username, which you need to set.
        self.remote_username: str | None = None
        #: Remote password, which you need to set.
        self.remote_password: str | None = None

        self.stun_server = stun_server
        self.turn_server = turn_server
        self.turn_username = turn_username
        self.turn_password = turn_password
        self.turn_ssl = turn_ssl
        self.turn_transport = turn_transport

        # The check list, nomination and consent (sans-I/O).
        self._engine = IceCheckList(
            controlling=ice_controlling,
            local_username=local_username,
            tie_breaker=secrets.randbits(64),
            components=components,
            lite=ice_lite,
            nomination=nomination,
            regular_nomination_timeout=regular_nomination_timeout,
            upgrade_window=upgrade_window,
        )
        self._timer: asyncio.TimerHandle | None = None
        # The deadline the timer was armed for: uvloop's handles have no ``when()``.
        self._timer_when = 0.0
        self._transactions: dict[bytes, asyncio.Task[None]] = {}
        self._consent_close: asyncio.Task[None] | None = None

        # Private attributes.
        self._closed = False
        self._closing = False
        self._check_list_done = False
        self._check_list_ended = Flag()
        self._check_list_result = ICE_FAILED
        self._connecting = False
        self._event_waiter: asyncio.Future[ConnectionEvent] | None = None
        self._id = next(connection_id)
        self._local_candidates: list[Candidate] = []
        self._local_candidates_end = False
        self._local_candidates_start = False
        self._local_password = local_password
        self._local_username = local_username
        self._protocols: list[StunProtocol] = []
        self._remote_candidates_end = False
        self._remote_candidates_resolving = 0
        self._queue: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue()
        self._use_ipv4 = use_ipv4
        self._use_ipv6 = use_ipv6

        self._transport_policy = transport_policy

    @property
    def ice_controlling(self) -> bool:
        """
        Whether we are the controlling agent (an ICE-lite agent never is).
        """
        return self._engine.controlling

    @ice_controlling.setter
    def ice_controlling(self, value: bool) -> None:
        self._engine.controlling = value

    @property
    def ice_lite(self) -> bool:
        """
        Whether we act as an ICE-lite agent.
        """
        return self._engine.lite

    @property
    def nomination(self) -> NominationMode:
        """
        The nomination mode used when controlling.
        """
        return self._engine.nomination

    @property
    def local_candidates(self) -> list[Candidate]:
        """
        Local candidates, automatically set by :meth:`gather_candidates`.
        """
        return self._local_candidates[:]

    @property
    def local_password(self) -> str:
        """
        Local password, set at construction time.
        """
        return self._local_password

    @property
    def local_username(self) -> str:
        """
        Local username, set at construction time.
        """
        return self._local_username

    @property
    def remote_candidates(self) -> list[Candidate]:
        """
        Remote candidates, which you need to populate using
        :meth:`add_remote_candidate`.

        Remote mDNS candidates keep their hostname instead of the resolved
        address (draft-ietf-mmusic-mdns-ice-candidates section 3.3.1).
        """
        return self._engine.remote_candidates[:]

    async def add_remote_candidate(self, remote_candidate: Candidate | None) -> None:
        """
        Add a remote candidate or signal end-of-candidates.

        To signal end-of-candidates, pass `None`. Until then, more candidates
        may be added while :meth:`connect` is running, and :meth:`connect`
        does not report an ICE negotiation failure.

        The candidate is copied, so later changes to it have no effect. A
        candidate with the same transport address as one already added is
        ignored. Once :meth:`close` has been called, remote candidates are
        ignored, including mDNS candidates still being resolved. With the relay
        transport policy, mDNS candidates are ignored without being resolved.

        :param remote_candidate: A :class:`Candidate` instance or `None`.
        """
        if self._remote_candidates_end:
            raise ValueError("Cannot add remote candidate after end-of-candidates.")

        if self._closing:
            return

        # Handle end-of-candidates.
        if remote_candidate is None:
            self._remote_candidates_end = True
            if not self._remote_candidates_resolving:
                self._end_remote_candidates()
            return

        # Keep our own copy, so changes made by either side do not affect the other.
        remote_candidate = copy.copy(remote_candidate)

        # Resolve an mDNS candidate.
        if mdns.is_mdns_hostname(remote_candidate.host):
            # Ignore mDNS candidates with the relay transport policy
            # (draft-ietf-mmusic-mdns-ice-candidates section 3.2).
            if self._transport_policy == TransportPolicy.RELAY:
                self.__log_info(
                    'Remote candidate "%s" ignored with the relay transport policy',
                    remote_candidate.host,
                )
                return

            # Keep the candidate if end-of-candidates arrives meanwhile, as only
            # newly received candidates are ignored (RFC 8838 section 14).
            self._remote_candidates_resolving += 1
            try:
                mdns_protocol = await get_or_create_mdns_protocol(self)
                remote_addr = await mdns_protocol.resolve(remote_candidate.host)
                if remote_addr is None:
                    self.__log_info(
                        'Remote candidate "%s" could not be resolved',
                        remote_candidate.host,
                    )
                elif not self._closing:
                    self.__log_info(
                        'Remote candidate "%s" resolved to %s',
                        remote_candidate.host,
                        remote_addr,
                    )
                    self._add_remote_candidate(remote_candidate, remote_addr)
            finally:
                self._remote_candidates_resolving -= 1
                if (
                    self._remote_candidates_end
                    and not self._remote_candidates_resolving
                    and not self._closing
                ):
                    self._end_remote_candidates()
            return

        self._add_remote_candidate(remote_candidate, remote_candidate.host)

    async def gather_candidates(self) -> None:
        """
        Gather local candidates.

        You **must** call this coroutine before calling :meth:`connect`.
        """
        if not self._local_candidates_start:
            self._local_candidates_start = True

            # Host and server-reflexive candidates are not used with the relay
            # transport policy (RFC 9429 section 3.5.3).
            addresses = []
            if self._transport_policy == TransportPolicy.ALL:
                addresses = get_host_addresses(
                    use_ipv4=self._use_ipv4, use_ipv6=self._use_ipv6
                )
            elif self.turn_server is None:
                self.__log_info(
                    "No candidates gathered with the relay transport policy, "
                    "as there is no TURN server"
                )
            coros = [
                self.get_component_candidates(component=component, addresses=addresses)
                for component in sorted(self._engine.components)
            ]
            for candidates in await asyncio.gather(*coros):
                self._local_candidates += candidates
            self._local_candidates_end = True

    def get_default_candidate(self, component: int) -> Candidate | None:
        """
        Get the default local candidate for the specified component.

        :param component: The component whose default candidate is requested.
        """
        for candidate in sorted(self._local_candidates, key=lambda x: x.priority):
            if candidate.component == component:
                return candidate
        return None

    async def connect(self) -> None:
        """
        Perform ICE handshake.

        This coroutine returns if a candidate pair was successfuly nominated
        and raises an exception otherwise. Failure is only reported once
        end-of-candidates has been signalled with :meth:`add_remote_candidate`,
        so until then this coroutine keeps waiting for more remote candidates.
        """
        if not self._local_candidates_end:
            raise ConnectionError("Local candidates gathering was not performed")

        if self.remote_username is None or self.remote_password is None:
            raise ConnectionError("Remote username or password is missing")

        # Forming candidate pairs (RFC 8445 section 6.1.2.2), then checking.
        for protocol in self._protocols:
            self._engine.add_local_candidate(protocol, protocol.local_candidate)
        engine = self._engine
        engine.consent_interval = aioice.ice.CONSENT_INTERVAL
        engine.consent_timeout = (
            aioice.ice.CONSENT_INTERVAL * aioice.ice.CONSENT_FAILURES
        )
        now = asyncio.get_running_loop().time()
        self._connecting = True
        if self._remote_candidates_end and not self._remote_candidates_resolving:
            self._run(engine.end_of_candidates(now))
        self._run(
            engine.start(self.remote_username, now, remote_lite=self.remote_is_lite)
        )

        # Wait for the check list to complete or fail.
        await self._check_list_ended.wait()
        if self._check_list_result != ICE_COMPLETED:
            self._cancel_transactions()
            raise ConnectionError("ICE negotiation failed")

    async def close(self) -> None:
        """
        Close the connection.
        """
        # Ignore remote candidates from now on, including those resolved meanwhile.
        self._closing = True

        # Stop the engine (checks, consent) and its timer.
        self._engine.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

        # Stop the check list, which also ends connect().
        if not self._check_list_done:
            self._check_list_result = ICE_FAILED
            self._check_list_ended.set()
            self._check_list_done = True

        # Stop the transactions before their sockets are closed.
        tasks = self._cancel_transactions()
        if tasks:
            await asyncio.wait(tasks)

        # Unreference mDNS.
        await unref_mdns_protocol(self)

        self._engine.selected.clear()
        for protocol in self._protocols:
            await protocol.close()
        self._protocols.clear()
        self._local_candidates.clear()

        # Wake up any pending recv().
        self._queue.put_nowait(None)

        # Emit an event.
        if not self._closed:
            self._emit_event(ConnectionClosed())
            self._closed = True

    async def get_event(self) -> ConnectionEvent | None:
        """
        Return the next `ConnectionEvent` or `None` if the connection is
        already closed.

        This method may only be called once at a time.
        """
        assert self._event_waiter is None, "already awaiting event"
        if self._closed:
            return None
        loop = asyncio.get_running_loop()
        self._event_waiter = loop.create_future()
        return await asyncio.shield(self._event_waiter)

    async def recv(self) -> bytes:
        """
        Receive the next datagram.

        The return value is a `bytes` object representing the data received.

        If the connection is not established, a `ConnectionError` is raised.
        """
        data, component = await self.recvfrom()
        return data

    async def recvfrom(self) -> tuple[bytes, int]:
        """
        Receive the next datagram.

        The return value is a `(bytes, component)` tuple where `bytes` is a
        bytes object representing the data received and `component` is the
        component on which the data was received.

        If the connection is not established, a `ConnectionError` is raised.
        """
        if not self._engine.selected:
            raise ConnectionError("Cannot receive data, not connected")

        result = await self._queue.get()
        if result is None:
            raise ConnectionError("Connection lost while receiving data")
        return result

    async def send(self, data: bytes) -> None:
        """
        Send a datagram on the first component.

        If the connection is not established, a `ConnectionError` is raised.

        :param data: The data to be sent.
        """
        await self.sendto(data, 1)

    async def sendto(self, data: bytes, component: int) -> None:
        """
        Send a datagram on the specified component.

        If the connection is not established, a `ConnectionError` is raised.

        :param data: The data to be sent.
        :param component: The component on which to send the data.
        """
        active_pair = self._engine.selected.get(component)
        if active_pair:
            protocol = cast(StunProtocol, active_pair.local_socket)
            await protocol.send_data(data, active_pair.remote_addr)
        else:
            raise ConnectionError("Cannot send data, not connected")

    def set_selected_pair(
        self, component: int, local_foundation: str, remote_foundation: str
    ) -> None:
        """
        Force the selected candidate pair.

        If the remote party does not support ICE, you should using this
        instead of calling :meth:`connect`.
        """
        # find local candidate
        protocol = None
        for p in self._protocols:
            if (
                p.local_candidate.component == component
                and p.local_candidate.foundation == local_foundation
            ):
                protocol = p
                break

        # find remote candidate
        remote_candidate = None
        for c in self._engine.remote_candidates:
            if c.component == component and c.foundation == remote_foundation:
                remote_candidate = c

        assert protocol and remote_candidate
        self._engine.force_select(
            CandidatePair(protocol, protocol.local_candidate, remote_candidate)
        )

    # private

    def _add_remote_candidate(
        self, remote_candidate: Candidate, network_host: str
    ) -> None:
        """
        Add a remote candidate, reached at the given address.
        """
        # Validate the remote candidate.
        try:
            set_candidate_network_host(
                remote_candidate,
                validate_remote_candidate(remote_candidate, network_host),
            )
        except ValueError as e:
            self.__log_info(
                f'Remote candidate "{remote_candidate.host}" is not valid: {e}'
            )
            return

        # Known addresses, peer-reflexive updates and pairing: the engine's.
        self._engine.add_remote_candidate(remote_candidate)

    def _run(self, actions: list[Action]) -> None:
        """
        Carry out the engine's actions, then re-arm its timer.
        """
        for action in actions:
            if isinstance(action, SendRequest):
                tid = action.message.transaction_id
                self._transactions[tid] = asyncio.create_task(self._transact(action))
            elif isinstance(action, PairSelected):
                self._selected_pair_changed(action.pair)
            elif isinstance(action, StateChanged):
                if not self._check_list_done:
                    completed = action.state is CheckListState.COMPLETED
                    self._check_list_result = ICE_COMPLETED if completed else ICE_FAILED
                    self._check_list_ended.set()
                    self._check_list_done = True
            elif isinstance(action, ConsentExpired):
                self.__log_info("Consent to send expired")
                if self._consent_close is None:
                    self._consent_close = asyncio.create_task(self.close())
        self._arm_timer()

    def _arm_timer(self) -> None:
        when = self._engine.next_timeout()
        if self._closing:
            when = None
        if self._timer is not None:
            if when == self._timer_when:
                return
            self._timer.cancel()
            self._timer = None
        if when is not None:
            self._timer_when = when
            self._timer = asyncio.get_running_loop().call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        assert self._timer is not None
        # asyncio may run a timer up to its clock resolution early.
        now = max(asyncio.get_running_loop().time(), self._timer_when)
        self._timer = None
        self._run(self._engine.handle_timeout(now))

    async def _transact(self, action: SendRequest) -> None:
        """
        Run one STUN transaction of the engine and report its outcome.
        """
        assert self.remote_password is not None
        pair = action.pair
        protocol = cast(StunProtocol, pair.local_socket)
        tid = action.message.transaction_id
        loop = asyncio.get_running_loop()
        try:
            _, addr = await protocol.request(
                action.message,
                pair.remote_addr,
                integrity_key=self.remote_password.encode("utf8"),
                retransmissions=None if action.retransmit else 0,
            )
        except stun.TransactionError as exc:
            code = exc.response.error_code if exc.response is not None else None
            actions = self._engine.request_failed(tid, code, loop.time())
        except (OSError, ValueError) as exc:
            self.__log_info("Check %s could not be sent: %s", pair, exc)
            actions = self._engine.request_failed(tid, None, loop.time())
        else:
            actions = self._engine.response_received(
                tid, (addr[0], addr[1]), loop.time()
            )
        finally:
            self._transactions.pop(tid, None)
        self._run(actions)

    def _cancel_transactions(self) -> list[asyncio.Task[None]]:
        tasks = list(self._transactions.values())
        for task in tasks:
            task.cancel()
        return tasks

    def _selected_pair_changed(self, pair: CandidatePair) -> None:
        """
        Called whenever a component's selected pair changes (a hook for subclasses).
        """

    def _emit_event(self, event: ConnectionEvent) -> None:
        if self._event_waiter is not None:
            waiter = self._event_waiter
            self._event_waiter = None
            waiter.set_result(event)

    def _end_remote_candidates(self) -> None:
        """
        Handle end-of-candidates once all remote candidates have been processed.
        """
        # Before connect(), the engine hears of it when checks start.
        if self._connecting:
            now = asyncio.get_running_loop().time()
            self._run(self._engine.end_of_candidates(now))

    async def get_component_candidates(
        self, component: int, addresses: list[str], timeout: int = 5
    ) -> list[Candidate]:
        candidates = []
        loop = asyncio.get_running_loop()

        # Gather host candidates.
        host_protocols = []
        for address in addresses:
            # Create the transport.
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: StunProtocol(self), local_addr=(address, 0)
                )
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_RCVBUF, turn.UDP_SOCKET_BUFFER_SIZE
                    )
            except OSError as exc:
                self.__log_info("Could not bind to %s - %s", address, exc)
                continue
            host_protocols.append(protocol)

            # Add the host candidate.
            candidate_address = protocol.transport.get_extra_info("sockname")
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", candidate_address[0]),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host"),
                host=candidate_address[0],
                port=candidate_address[1],
                type="host",
            )
            candidates.append(protocol.local_candidate)
        self._protocols += host_protocols

        tasks: list[asyncio.Task[tuple[Candidate, StunProtocol | None]]] = []

        # Query STUN server for server-reflexive candidates (IPv4 only).
        if self.stun_server:
            for protocol in host_protocols:
                if ipaddress.ip_address(protocol.local_candidate.host).version == 4:
                    tasks.append(
                        asyncio.create_task(
                            server_reflexive_candidate(protocol, self.stun_server)
                        )
                    )

        # Connect to TURN server.
        if self.turn_server:
            tasks.append(
                asyncio.create_task(
                    relayed_candidate(
                        component=component,
                        hide_related_address=(
                            self._transport_policy == TransportPolicy.RELAY
                        ),
                        protocol_factory=lambda: StunProtocol(self),
                        turn_server=self.turn_server,
                        turn_username=self.turn_username,
                        turn_password=self.turn_password,
                        turn_ssl=self.turn_ssl,
                        turn_transport=self.turn_transport,
                    )
                )
            )

        # Run tasks in parallel and handle exceptions.
        if len(tasks):
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in done:
                if task.exception() is None:
                    candidate, relay_protocol = task.result()
                    candidates.append(candidate)
                    if relay_protocol is not None:
                        self._protocols.append(relay_protocol)
            for task in pending:
                task.cancel()

        return candidates

    def data_received(self, data: bytes, component: int) -> None:
        self._queue.put_nowait((data, component))

    def protocol_lost(self, protocol: StunProtocol) -> None:
        # Only a nominated pair carries data, so losing any other
        # protocol must not abort a pending recv().
        for pair in self._engine.selected.values():
            if pair.local_socket is protocol:
                self._queue.put_nowait(None)
                return

    def _remote_candidates_expected(self) -> bool:
        """
        Whether more remote candidates may still be added.
        """
        return not self._remote_candidates_end or self._remote_candidates_resolving > 0

    def request_received(
        self,
        message: stun.Message,
        addr: tuple[str, int],
        protocol: StunProtocol,
    ) -> None:
        # Ignore incoming checks once closing, as they would start new checks.
        if self._closing:
            return

        if message.message_method != stun.Method.BINDING:
            self.respond_error(message, addr, protocol, (400, "Bad Request"))
            return

        # Authenticate the request (RFC 8489 section 9.1.3).
        if (
            "MESSAGE-INTEGRITY" not in message.attributes
            or "USERNAME" not in message.attributes
        ):
            self.respond_error(message, addr, protocol, (400, "Bad Request"))
            return
        if not (
            self._valid_username(message.attributes["USERNAME"])
            and message.check_message_integrity(self.local_password.encode("utf8"))
        ):
            self.respond_error(message, addr, protocol, (401, "Unauthenticated"))
            return

        # Detecting and repairing role conflicts (RFC 8445 section 7.3.1.1).
        if self._engine.role_conflict(message):
            self.__log_info("Role conflict, answered with 487")
            self.respond_error(message, addr, protocol, (487, "Role Conflict"))
            return

        # Send a Binding response.
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=message.transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = addr
        response.add_message_integrity(self.local_password.encode("utf8"))
        protocol.send_stun(response, addr)

        # The engine defers checks until connect() has the remote password, even
        # if trickled candidates already formed pairs (RFC 8445 section 7.3).
        now = asyncio.get_running_loop().time()
        self._run(self._engine.check_received(message, addr, protocol, now))

    def respond_error(
        self,
        request: stun.Message,
        addr: tuple[str, int],
        protocol: StunProtocol,
        error_code: tuple[int, str],
    ) -> None:
        response = stun.Message(
            message_method=request.message_method,
            message_class=stun.Class.ERROR,
            transaction_id=request.transaction_id,
        )
        response.attributes["ERROR-CODE"] = error_code

        # 400 and 401 errors report a request which was not authenticated, so
        # they are not signed (RFC 8489 section 9.1.3). FINGERPRINT is always
        # added (RFC 8445 section 7.3).
        if error_code[0] in (400, 401):
            response.add_fingerprint()
        else:
            response.add_message_integrity(self.local_password.encode("utf8"))
        protocol.send_stun(response, addr)

    def _valid_username(self, username: str) -> bool:
        """
        Check the USERNAME of an incoming request.

        It consists of the local and remote username fragments, separated by
        a colon. The remote username fragment can only be checked once it is
        known (RFC 8445 section 7.3).
        """
        local_username, colon, remote_username = username.partition(":")
        return (
            colon == ":"
            and local_username == self.local_username
            and self.remote_username in (None, remote_username)
        )

    def __log_info(self, msg: str, *args: object) -> None:
        logger.info("%s " + msg, self, *args)

    def __repr__(self) -> str:
        return f"Connection({self._id})"
