"""Upstream modules webrtc_ext forks, each with its license (changes: docs/fork.md)."""
