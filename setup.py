"""The optional C parts: webrtc_ext's raw RTP path (webrtc_ext/_native.c) and the service's
relay_service/_pools.c (free Python memory given back).

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
        ),
        # The service's: gives CPython's free small-object pools back (relay_service/memory.py).
        Extension(
            "relay_service._pools",
            ["relay_service/_pools.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
    ]
)
