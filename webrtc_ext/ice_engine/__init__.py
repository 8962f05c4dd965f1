"""The ICE check list, nomination and consent as a sans-I/O engine (see ``checklist``)."""

from .checklist import (
    CHECK_INTERVAL,
    CONSENT_INTERVAL,
    CONSENT_TIMEOUT,
    LITE_CONNECT_TIMEOUT,
    MAX_EARLY_CHECKS,
    IceCheckList,
)
from .model import (
    Action,
    CandidatePair,
    CheckListState,
    ConsentExpired,
    PairSelected,
    PairState,
    RequestKind,
    SendRequest,
    StateChanged,
    pair_priority,
    remote_address,
)

__all__ = [
    "CHECK_INTERVAL",
    "CONSENT_INTERVAL",
    "CONSENT_TIMEOUT",
    "LITE_CONNECT_TIMEOUT",
    "MAX_EARLY_CHECKS",
    "Action",
    "CandidatePair",
    "CheckListState",
    "ConsentExpired",
    "IceCheckList",
    "PairSelected",
    "PairState",
    "RequestKind",
    "SendRequest",
    "StateChanged",
    "pair_priority",
    "remote_address",
]
