"""The members the C path reads at their slot offsets are plain slots that change nothing else.

webrtc_ext._native reads and writes a ``__slots__`` member at its offset (``fast_get`` and
``fast_set``). A slot declared on a subclass hides any class attribute of the same name in a
base class (a default, a property): instances would then raise AttributeError where they read
the default before. No class of the library may do that.
"""

from __future__ import annotations

import importlib
import pkgutil

import webrtc_ext

SPECIAL = ("__dict__", "__weakref__")


def library_classes() -> list[type]:
    classes: dict[str, type] = {}
    for module_info in pkgutil.walk_packages(webrtc_ext.__path__, "webrtc_ext."):
        if module_info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(module_info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__.startswith("webrtc_ext"):
                classes[f"{value.__module__}.{value.__qualname__}"] = value
    return list(classes.values())


def test_no_slot_hides_a_class_attribute_of_a_base() -> None:
    hidden = [
        (klass.__qualname__, name, base.__qualname__)
        for klass in library_classes()
        for name in vars(klass).get("__slots__", ())
        if name not in SPECIAL
        for base in klass.__mro__[1:]
        if name in vars(base)
    ]
    assert hidden == []


def test_the_per_packet_classes_keep_their_members_in_slots() -> None:
    from webrtc_ext.composed import DtlsTransport, RtpReceiver, RtpSender
    from webrtc_ext.ice import IceProtocol
    from webrtc_ext.rawrtp import RtpFanOut

    for klass, name in [
        (RtpSender, "_munger"),
        (RtpReceiver, "_rtp_callbacks"),
        (DtlsTransport, "_tx_srtp"),
        (IceProtocol, "counters"),
        (RtpFanOut, "_native_targets"),
    ]:
        assert type(getattr(klass, name)).__name__ == "member_descriptor", (klass, name)
    assert len(library_classes()) > 100, "the walk found the library's classes"
