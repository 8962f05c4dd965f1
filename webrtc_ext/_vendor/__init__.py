"""Upstream modules webrtc_ext forks: each keeps its license; docs/fork.md records every change."""
