"""The SDP rules of WhatsApp calling (PROTOCOLS.md), as pure text transforms and checks."""

from __future__ import annotations

import re

_FINGERPRINT = re.compile(r"^a=fingerprint:(\S+) ", re.IGNORECASE)
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/(\d+)", re.IGNORECASE)


def _lines(sdp: str) -> list[str]:
    return [line for line in sdp.replace("\r\n", "\n").split("\n") if line]


def _join(lines: list[str]) -> str:
    return "\r\n".join(lines) + "\r\n"


def prepare_answer(sdp: str) -> str:
    """Our answer as Meta wants it: ``setup:active``, ``ptime:20``.

    The single sha-256 fingerprint Meta accepts comes from the WhatsApp leg's
    ``PeerConnectionConfig.fingerprint_algorithms``.
    """
    result: list[str] = []
    for line in _lines(sdp):
        if line.startswith("a=setup:"):
            result.append("a=setup:active")
            continue
        if line.startswith("a=ptime:"):
            continue
        result.append(line)
    return _join(add_to_audio_section(result, ["a=ptime:20"]))


def add_to_audio_section(lines: list[str], extra: list[str]) -> list[str]:
    """``lines`` with ``extra`` attribute lines appended at the end of the audio section."""
    result: list[str] = []
    in_audio = False
    for line in lines:
        if line.startswith("m="):
            if in_audio:
                result += extra
            in_audio = line.startswith("m=audio")
        result.append(line)
    if in_audio:
        result += extra
    return result


def prepare_offer(sdp: str) -> str:
    """Our business-initiated offer as Meta wants it: ``actpass``, ptime 20."""
    return prepare_answer(sdp).replace("a=setup:active", "a=setup:actpass")


def answer_problems(sdp: str) -> list[str]:
    """Why Meta would refuse this answer with error 138008 (empty if it is acceptable)."""
    lines = _lines(sdp)
    problems = []
    fingerprints = [line for line in lines if _FINGERPRINT.match(line)]
    if len(fingerprints) != 1:
        problems.append(f"expected exactly one a=fingerprint line, found {len(fingerprints)}")
    codecs = {m.group(2).lower() for line in lines if (m := _RTPMAP.match(line))}
    if "opus" not in codecs:
        problems.append("the answer does not include Opus")
    if not any(line.startswith("m=audio") for line in lines):
        problems.append("the answer has no audio m-line")
    setups = {line for line in lines if line.startswith("a=setup:")}
    if setups - {"a=setup:active", "a=setup:passive"}:
        problems.append(f"invalid DTLS role in answer: {sorted(setups)}")
    return problems


def offer_problems(sdp: str) -> list[str]:
    """Why Meta would refuse this business-initiated offer with error 138008."""
    problems = [p for p in answer_problems(sdp) if "DTLS role" not in p]
    return [p.replace("answer", "offer") for p in problems]


def fingerprint_count(sdp: str) -> int:
    """How many ``a=fingerprint`` lines ``sdp`` has."""
    return sum(1 for line in _lines(sdp) if _FINGERPRINT.match(line))
