"""The optional C part of webrtc_ext (the raw RTP path's per-packet work, webrtc_ext/_native.c).

Everything else is in pyproject.toml. ``optional=True``: without a C compiler or Python's
headers the package installs without it, and webrtc_ext runs the same path in Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "webrtc_ext._native",
            ["webrtc_ext/_native.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
