"""aiortc's ICE gatherer and transport, driven by :class:`webrtc_ext.ice.IceConnection`."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

from aiortc.rtcicetransport import (
    RTCIceCandidate,
    RTCIceGatherer,
    RTCIceParameters,
    RTCIceTransport,
    candidate_from_aioice,
)

from ._deprecated import renamed
from ._internals import ice_transport_set_state
from .config import PeerConnectionConfig
from .ice import CandidatePairInfo, IceCandidatePair, IceConnection, IceGatheringError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RTCIceCandidatePair:
    """The W3C ``RTCIceCandidatePair``: the local and remote candidate of the selected pair."""

    local: RTCIceCandidate
    remote: RTCIceCandidate


class IceGatherer(RTCIceGatherer):
    """An :class:`aiortc.RTCIceGatherer` whose connection is an :class:`IceConnection`."""

    def __init__(
        self,
        config: PeerConnectionConfig,
        *,
        turn_ssl_context: ssl.SSLContext | None = None,
        local_username: str | None = None,
        local_password: str | None = None,
    ) -> None:
        # No servers for the parent: the connection it builds is replaced at once, and must
        # not get aiortc's default public STUN server.
        super().__init__(
            iceServers=[], local_username=local_username, local_password=local_password
        )
        # The forked aioice Connection: the same interface as aioice's, another class.
        self._connection: IceConnection = IceConnection(  # type: ignore[assignment]
            ice_controlling=False,
            config=config,
            turn_ssl_context=turn_ssl_context,
            local_username=local_username,
            local_password=local_password,
        )
        self._ice_lite = config.ice_lite

    def getLocalParameters(self) -> RTCIceParameters:
        """Our ICE parameters, with ``iceLite`` set when we act as a lite agent."""
        parameters = super().getLocalParameters()
        parameters.iceLite = self._ice_lite
        return parameters

    @property
    def gathering_errors(self) -> list[IceGatheringError]:
        """The STUN/TURN servers that gave no candidate, with the reason."""
        return list(self._connection.gathering_errors)

    gatheringErrors = renamed("gathering_errors")


class IceTransport(RTCIceTransport):
    """An :class:`aiortc.RTCIceTransport` that exposes the candidate-pair grid.

    Emits ``selectedcandidatepairchange`` (the W3C event) whenever the selected pair changes.
    """

    def __init__(self, gatherer: IceGatherer) -> None:
        super().__init__(gatherer)
        self._connection: IceConnection = gatherer._connection  # type: ignore[assignment]
        self._connection.on_selected_pair_change = self._selected_pair_changed
        gatherer.on("statechange", self._gathering_state_changed)

    def _gathering_state_changed(self) -> None:
        # aiortc never starts a transport without local candidates, which would leave the
        # connection "new" for ever: with none at all (every TURN server of a relay-only
        # configuration refused us, say), the transport has failed.
        gatherer = self.iceGatherer
        if gatherer.state == "completed" and not gatherer.getLocalCandidates():
            logger.warning("ICE failed: no local candidate was gathered")
            ice_transport_set_state(self, "failed")

    def _selected_pair_changed(self, pair: IceCandidatePair) -> None:
        self.emit("selectedcandidatepairchange")

    @property
    def connection(self) -> IceConnection:
        """The underlying ICE connection."""
        return self._connection

    def getSelectedCandidatePair(self) -> RTCIceCandidatePair | None:
        """The selected candidate pair (W3C ``RTCIceTransport.getSelectedCandidatePair``)."""
        pair = self._connection.selected_pair
        if pair is None:
            return None
        return RTCIceCandidatePair(
            local=candidate_from_aioice(pair.local_candidate),
            remote=candidate_from_aioice(pair.remote_candidate),
        )

    def candidate_pairs(self) -> list[CandidatePairInfo]:
        """Every pair of the grid with its state, nominated flag, priority and counters."""
        return self._connection.candidate_pairs()

    getCandidatePairs = renamed("candidate_pairs")

    @property
    def selectedCandidatePairChanges(self) -> int:
        """How many times the selected pair changed (webrtc-stats ``transport`` field)."""
        return self._connection.selected_pair_changes
