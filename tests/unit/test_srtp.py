"""FastSrtpSession: byte for byte what pylibsrtp.Session gives, errors included."""

from __future__ import annotations

import struct

import pylibsrtp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pylibsrtp import Policy, Session

from webrtc_ext.srtp import FastSrtpSession, fast_session

KEY = bytes(range(30))


def _sessions() -> tuple[Session, Session]:
    """A sender and a receiver keyed alike (aiortc's policies)."""
    tx = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    rx = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND))
    return tx, rx


def _rtp(sequence: int, payload: bytes, ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHII", 0x80, 111, sequence & 0xFFFF, 960 * sequence, ssrc) + payload


def _rtcp_rr(ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


def test_wraps_a_pylibsrtp_session() -> None:
    tx, _ = _sessions()
    fast = fast_session(tx)
    assert isinstance(fast, FastSrtpSession)
    assert fast.session is tx
    assert fast_session(fast) is fast, "wrapping twice changes nothing"
    assert fast_session(None) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=1200), min_size=1, max_size=8))
def test_protects_exactly_as_pylibsrtp_and_round_trips(payloads: list[bytes]) -> None:
    reference_tx, _ = _sessions()
    tx, rx = (fast_session(s) for s in _sessions())
    for sequence, payload in enumerate(payloads, start=1):
        plain = _rtp(sequence, payload)
        protected = tx.protect(plain)
        assert protected == reference_tx.protect(plain)
        assert rx.unprotect(protected) == plain
    report = _rtcp_rr()
    assert rx.unprotect_rtcp(tx.protect_rtcp(report)) == report


def test_a_tampered_packet_fails_with_pylibsrtps_error_and_the_next_one_passes() -> None:
    tx, rx = (fast_session(s) for s in _sessions())
    protected = bytearray(tx.protect(_rtp(1, b"voice")))
    protected[14] ^= 0x01
    with pytest.raises(pylibsrtp.Error, match="authentication failure"):
        rx.unprotect(bytes(protected))
    report = bytearray(tx.protect_rtcp(_rtcp_rr()))
    report[6] ^= 0x01
    with pytest.raises(pylibsrtp.Error, match="authentication failure"):
        rx.unprotect_rtcp(bytes(report))
    good = tx.protect(_rtp(2, b"next"))
    assert rx.unprotect(good) == _rtp(2, b"next")
    with pytest.raises(pylibsrtp.Error, match="replay"):
        rx.unprotect(good)


def test_bad_arguments_are_refused_as_pylibsrtp_refuses_them() -> None:
    tx, rx = _sessions()
    fast_tx, fast_rx = fast_session(tx), fast_session(rx)
    for fast in (fast_tx, fast_rx):
        with pytest.raises(ValueError, match="too long"):
            fast.protect(_rtp(1, bytes(1500)))
        with pytest.raises(TypeError):
            fast.unprotect(bytearray(_rtp(1, b"x")))  # type: ignore[arg-type]
    # A refused call leaves the session usable.
    assert fast_rx.unprotect(fast_tx.protect(_rtp(1, b"x"))) == _rtp(1, b"x")


def test_an_unknown_session_type_is_left_as_it_is() -> None:
    class Other:
        def protect(self, packet: bytes) -> bytes:
            return packet

    other = Other()
    assert fast_session(other) is other
