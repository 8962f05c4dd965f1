"""A receiver decodes only once its track is read.

aiortc's ``RTCRtpReceiver`` starts a decoder thread in ``receive()`` and puts every decoded
frame on its track's queue, which has no bound: a remote track that nobody reads (an audio
reply one does not play, a leg used for its data channel only) costs a decoder's CPU and
grows by ~50 frames a second, tens of MB per call-hour. :class:`LazyDecoderReceiverMixin`
keeps the decoder thread idle until the track's first ``recv()``: until then packets are
still received, counted by the statistics and reassembled by the jitter buffer (RTCP, NACK
and PLI go on as before), but no frame is decoded or queued.
"""

from __future__ import annotations

import threading
from typing import Any

from aiortc import RTCDtlsTransport, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from ._internals import receiver_private, set_receiver_private


class LazyRemoteStreamTrack(RemoteStreamTrack):
    """aiortc's remote track that tells its receiver when it is first read."""

    def __init__(self, kind: str, id: str | None, receiver: LazyDecoderReceiverMixin) -> None:
        super().__init__(kind, id)
        self._receiver: LazyDecoderReceiverMixin | None = receiver

    async def recv(self) -> Any:
        """The next decoded frame (the first call starts the receiver's decoder)."""
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            receiver._track_read()
        return await super().recv()


class LazyDecoderReceiverMixin(RTCRtpReceiver):
    """Receiver side: the decoder runs from the track's first ``recv()`` on.

    Overrides ``receive`` and aiortc's private ``__stop_decoder``; the track aiortc's peer
    connection creates is replaced by a :class:`LazyRemoteStreamTrack` with the same id.
    """

    def __init__(self, kind: str, transport: RTCDtlsTransport) -> None:
        self._lazy_track: MediaStreamTrack | None = None
        self._parked_decoder: threading.Thread | None = None
        self._decoding_wanted = False
        super().__init__(kind, transport)

    # aiortc's peer connection assigns ``receiver._track``; the track it is given is swapped
    # for one that reports its first read.
    @property  # type: ignore[override]
    def _track(self) -> MediaStreamTrack | None:
        return self._lazy_track

    @_track.setter
    def _track(self, track: MediaStreamTrack | None) -> None:
        if type(track) is RemoteStreamTrack:
            track = LazyRemoteStreamTrack(track.kind, track.id, self)
        self._lazy_track = track

    @property
    def decoding(self) -> bool:
        """Whether received frames are being decoded for the track."""
        return receiver_private(self, "decoder_thread") is not None

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        """aiortc's ``receive``; the decoder thread it starts waits for the track's first read."""
        await super().receive(parameters)
        decoder = receiver_private(self, "decoder_thread")
        if decoder is not None and not self._decoding_wanted:
            # aiortc hands the decoder an encoded frame only while this attribute is set.
            self._parked_decoder = decoder
            set_receiver_private(self, "decoder_thread", None)

    def _track_read(self) -> None:
        self._decoding_wanted = True
        self._unpark()

    def _unpark(self) -> None:
        decoder, self._parked_decoder = self._parked_decoder, None
        if decoder is not None:
            set_receiver_private(self, "decoder_thread", decoder)

    def _RTCRtpReceiver__stop_decoder(self) -> None:
        # A parked decoder is stopped as a running one: its exit ends the track.
        self._unpark()
        receiver_private(super(), "stop_decoder")()  # type: ignore[arg-type]
