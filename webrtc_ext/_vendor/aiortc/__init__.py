"""aiortc 1.16.0 modules that webrtc_ext rewrites in substance (BSD-3-Clause, LICENSE).

Only ``rtcrtpsender`` is vendored (its send loop: the sender owns its sequence space and
sends raw RTP); everything else comes from the aiortc dependency, subclassed where the
library only extends it. docs/fork.md records every change; ``scripts/fork_diff.py``
shows them.
"""

#: The upstream release these modules were copied from.
UPSTREAM = "aiortc"
UPSTREAM_VERSION = "1.16.0"
#: Vendored module -> its path in the upstream distribution.
VENDORED = {"rtcrtpsender.py": "aiortc/rtcrtpsender.py"}
