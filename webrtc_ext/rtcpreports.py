"""Receiver reports at a configurable interval (``PeerConnectionConfig.rtcp_interval``).

aiortc's ``RTCRtpReceiver._run_rtcp`` sends a receiver report every 0.5 to 1.5 s, fixed.
:class:`RtcpIntervalReceiverMixin` overrides it with a copy of aiortc 1.16.0's loop whose only
change is the wait: ``rtcp_interval * [0.5, 1.5]`` seconds (RFC 3550 §6.3.1), as the forked
sender does for its sender reports (docs/fork.md). The copy must be merged by hand when
upstream changes (``_internals.RTP_RECEIVER_RUN_RTCP_UPSTREAM_SHA256`` notices).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket

from ._aio import Flag
from ._internals import receiver_private, set_receiver_private
from .config import RTCP_INTERVAL

logger = logging.getLogger(__name__)


class RtcpIntervalReceiverMixin(RTCRtpReceiver):
    """aiortc's receiver with ``rtcp_interval``. Overrides ``__init__`` and ``_run_rtcp``."""

    def __init__(self, kind: str, transport: Any) -> None:
        super().__init__(kind, transport)
        # aiortc's two asyncio.Events for the RTCP task's start and exit (~860 bytes each),
        # set by _run_rtcp below and waited on only by stop(): Flags do the same in 56 bytes.
        set_receiver_private(self, "rtcp_started", Flag())
        set_receiver_private(self, "rtcp_exited", Flag())
        self.rtcp_interval = RTCP_INTERVAL
        """Mean seconds between receiver reports (``PeerConnectionConfig.rtcp_interval``)."""

    async def _run_rtcp(self) -> None:
        # aiortc 1.16.0's RTCRtpReceiver._run_rtcp; the wait is the only change.
        logger.debug("RTCRtpReceiver(%s) - RTCP started", receiver_private(self, "kind"))
        receiver_private(self, "rtcp_started").set()
        try:
            while True:
                # The interval between RTCP packets is varied randomly over the
                # range [0.5, 1.5] times the calculated interval.
                await asyncio.sleep(self.rtcp_interval * (0.5 + random.random()))

                # RTCP RR
                lsrs = receiver_private(self, "lsr")
                lsr_times = receiver_private(self, "lsr_time")
                reports = []
                for ssrc, stream in receiver_private(self, "remote_streams").items():
                    lsr = 0
                    dlsr = 0
                    if ssrc in lsrs:
                        lsr = lsrs[ssrc]
                        delay = time.time() - lsr_times[ssrc]
                        if delay > 0 and delay < 65536:
                            dlsr = int(delay * 65536)

                    reports.append(
                        RtcpReceiverInfo(
                            ssrc=ssrc,
                            fraction_lost=stream.fraction_lost,
                            packets_lost=stream.packets_lost,
                            highest_sequence=stream.max_seq,
                            jitter=stream.jitter,
                            lsr=lsr,
                            dlsr=dlsr,
                        )
                    )

                rtcp_ssrc = receiver_private(self, "rtcp_ssrc")
                if rtcp_ssrc is not None and reports:
                    packet = RtcpRrPacket(ssrc=rtcp_ssrc, reports=reports)
                    await self._send_rtcp(packet)

        except asyncio.CancelledError:
            pass

        logger.debug("RTCRtpReceiver(%s) - RTCP finished", receiver_private(self, "kind"))
        receiver_private(self, "rtcp_exited").set()
