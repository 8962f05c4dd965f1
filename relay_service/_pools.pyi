"""relay_service._pools (relay_service/_pools.c): CPython's free small-object pools given back."""

def install() -> bool:
    """Wrap CPython's arena allocator (once) to know where its arenas are."""

def release() -> tuple[int, int]:
    """Give back the pages of the free pools of the arenas made since install():
    (pools, bytes). ValueError, with nothing changed, if a pool in use is not pymalloc's."""

def tracked() -> int:
    """How many arenas release() walks."""
