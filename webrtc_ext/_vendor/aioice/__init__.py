"""aioice 0.13.0 modules that webrtc_ext rewrites in substance (BSD-3-Clause, LICENSE).

Only ``ice`` is vendored; ``stun``, ``candidate``, ``turn`` and ``mdns`` come from the
aioice dependency. docs/fork.md records every change; ``scripts/fork_diff.py`` shows
them.
"""

#: The upstream release these modules were copied from.
UPSTREAM = "aioice"
UPSTREAM_VERSION = "0.13.0"
#: Vendored module -> its path in the upstream distribution.
VENDORED = {"ice.py": "aioice/ice.py"}
