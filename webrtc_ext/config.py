"""The typed configuration of :class:`webrtc_ext.RTCPeerConnection`."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from aiortc import RTCBundlePolicy, RTCCertificate, RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy


class NominationMode(enum.Enum):
    """How the controlling ICE agent nominates a candidate pair (RFC 8445 §8.1.1)."""

    AGGRESSIVE = "aggressive"
    """Every check carries USE-CANDIDATE; the first pair that succeeds is selected at once and
    a later nominated pair of higher priority replaces it (RFC 5245 §8.1.1.2)."""

    REGULAR = "regular"
    """Checks run without USE-CANDIDATE; the best valid pair is then nominated with a
    second check (RFC 8445 §8.1.1)."""


#: The hash functions aiortc can fingerprint a certificate with (RFC 8122 §5).
FINGERPRINT_ALGORITHMS = ("sha-256", "sha-384", "sha-512")

#: aiortc's mean RTCP report interval (seconds): the library's default.
RTCP_INTERVAL = 1.0
#: The longest :attr:`PeerConnectionConfig.rtcp_interval` accepted (seconds). A peer that hears
#: nothing for several intervals may think the stream is gone (RFC 3550 §6.3.5).
MAX_RTCP_INTERVAL = 30.0


class ConfigurationError(ValueError):
    """A :class:`PeerConnectionConfig` value is out of range or inconsistent."""


@dataclass(frozen=True)
class PeerConnectionConfig:
    """Everything :class:`webrtc_ext.RTCPeerConnection` can be configured with.

    It is a superset of aiortc's :class:`~aiortc.RTCConfiguration`: the first four fields
    mean the same thing, the rest are the library's own.
    """

    ice_servers: Sequence[RTCIceServer] = ()
    """STUN and TURN servers; every one is used. Empty by default: gathering never waits on a
    public STUN server."""

    ice_transport_policy: RTCIceTransportPolicy = RTCIceTransportPolicy.ALL
    bundle_policy: RTCBundlePolicy = RTCBundlePolicy.BALANCED
    always_negotiate_data_channels: bool = False
    """aiortc's ``alwaysNegotiateDataChannels``: an ``application`` m-line in every offer."""

    nomination: NominationMode = NominationMode.AGGRESSIVE
    """Nomination on the controlling side. Aggressive by default: a peer that waits for
    nomination (OpenAI's stack, Pion, any controlled agent) can send media one round trip
    sooner, and toward an ICE-lite peer such as WhatsApp it is the only check needed."""

    regular_nomination_timeout: float = 0.5
    """Regular nomination: how long (seconds) after the first valid pair to wait for checks of
    higher-priority pairs before nominating the best valid pair."""

    upgrade_window: float = 5.0
    """Aggressive nomination: how long (seconds) after the first nominated pair checks of
    higher-priority pairs may still replace it."""

    ice_lite: bool = False
    """Act as an ICE-lite agent (RFC 8445 §2.5): host candidates only, no checks of our own,
    always controlled, and ``a=ice-lite`` in our SDP."""

    host_addresses: Sequence[str] | None = None
    """Local addresses to gather host candidates on. ``None`` means every interface except
    loopback and link-local (aioice's behaviour); an explicit list may include loopback."""

    use_ipv4: bool = True
    use_ipv6: bool = True

    port_range: tuple[int, int] | None = None
    """Inclusive ``(min, max)`` local UDP port range for host candidates, for firewalls and
    Kubernetes. ``None`` lets the kernel choose."""

    dtls_mtu: int = 1200
    """Largest UDP payload a DTLS datagram may have (WebRTC's 1200-byte guidance)."""

    certificates: Sequence[RTCCertificate] = ()
    """DTLS certificates (W3C ``RTCConfiguration.certificates``); the first one is used. Empty:
    a fresh ECDSA certificate per connection, as aiortc does. See
    :meth:`webrtc_ext.RTCCertificate.from_pem` and ``generateCertificate``."""

    dtls_handshake_timeout: float = 30.0
    """Seconds the DTLS handshake may take, retransmissions included, before it fails."""

    fingerprint_algorithms: Sequence[str] = FINGERPRINT_ALGORITHMS
    """Hash functions of the ``a=fingerprint`` lines in our descriptions, in order, from
    ``sha-256``, ``sha-384`` and ``sha-512``. All three by default (aiortc's behaviour); a peer
    that accepts only one line, such as WhatsApp (error 138008), wants ``("sha-256",)``."""

    audio_codecs: Sequence[str] | None = None
    """Restrict and order audio codecs by MIME type, e.g. ``("audio/opus",)``. ``None`` keeps
    aiortc's list."""

    dtmf: bool = True
    """Negotiate RFC 4733 ``telephone-event`` beside audio."""

    rtcp_interval: float = RTCP_INTERVAL
    """Mean seconds between the RTCP reports each sender (SR) and receiver (RR) sends, each
    wait drawn from 0.5 to 1.5 times it (RFC 3550 §6.3.1). aiortc's 1 s by default; libwebrtc
    (Chrome, and most phones' WebRTC stacks) uses 5 s for audio. Longer costs fewer wake-ups
    and packets per connection; round-trip time, loss and jitter reported by the peer
    (``remote-inbound-rtp``) then update as often."""

    def __post_init__(self) -> None:
        if not isinstance(self.nomination, NominationMode):
            try:
                object.__setattr__(self, "nomination", NominationMode(self.nomination))
            except ValueError:
                raise ConfigurationError(
                    f"nomination must be 'aggressive' or 'regular', not {self.nomination!r}"
                ) from None
        if self.port_range is not None:
            low, high = self.port_range
            if not (1 <= low <= high <= 65535):
                raise ConfigurationError(
                    f"port_range must be (min, max) with 1 <= min <= max <= 65535, "
                    f"not {self.port_range!r}"
                )
        if not (228 <= self.dtls_mtu <= 65507):
            raise ConfigurationError(
                f"dtls_mtu must be between 228 and 65507 bytes, not {self.dtls_mtu}"
            )
        if not (0 < self.rtcp_interval <= MAX_RTCP_INTERVAL):
            raise ConfigurationError(
                f"rtcp_interval must be above 0 and at most {MAX_RTCP_INTERVAL:g} seconds, "
                f"not {self.rtcp_interval!r}"
            )
        if self.dtls_handshake_timeout <= 0:
            raise ConfigurationError("dtls_handshake_timeout must be positive")
        if self.regular_nomination_timeout < 0 or self.upgrade_window < 0:
            raise ConfigurationError("nomination timeouts must not be negative")
        algorithms = tuple(str(a).lower() for a in self.fingerprint_algorithms)
        unknown = [a for a in algorithms if a not in FINGERPRINT_ALGORITHMS]
        if not algorithms or unknown or len(set(algorithms)) != len(algorithms):
            raise ConfigurationError(
                f"fingerprint_algorithms must name each of {list(FINGERPRINT_ALGORITHMS)} at "
                f"most once, and at least one, not {list(self.fingerprint_algorithms)}"
            )
        object.__setattr__(self, "fingerprint_algorithms", algorithms)
        if not (self.use_ipv4 or self.use_ipv6):
            raise ConfigurationError("at least one of use_ipv4 and use_ipv6 must be true")

    @classmethod
    def from_any(
        cls, configuration: PeerConnectionConfig | RTCConfiguration | None
    ) -> PeerConnectionConfig:
        """Accept either configuration type (or ``None``) as a :class:`PeerConnectionConfig`."""
        if configuration is None:
            return cls()
        if isinstance(configuration, PeerConnectionConfig):
            return configuration
        if isinstance(configuration, RTCConfiguration):
            return cls(
                ice_servers=tuple(configuration.iceServers or ()),
                ice_transport_policy=configuration.iceTransportPolicy,
                bundle_policy=configuration.bundlePolicy,
                always_negotiate_data_channels=configuration.alwaysNegotiateDataChannels,
            )
        raise TypeError(
            "configuration must be a PeerConnectionConfig or an aiortc RTCConfiguration, "
            f"not {type(configuration).__name__}"
        )

    def to_aiortc(self) -> RTCConfiguration:
        """The aiortc configuration handed to the parent class."""
        # An empty list, not None: None would make aiortc add its public STUN server.
        return RTCConfiguration(
            iceServers=list(self.ice_servers),
            iceTransportPolicy=self.ice_transport_policy,
            bundlePolicy=self.bundle_policy,
            alwaysNegotiateDataChannels=self.always_negotiate_data_channels,
        )

    def with_changes(self, **changes: Any) -> PeerConnectionConfig:
        """A copy with some fields changed (validated again)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ConfigurationError(f"unknown configuration keys: {sorted(unknown)}")
        return replace(self, **changes)
