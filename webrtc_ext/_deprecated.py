"""Old names kept for a while after a rename to follow docs/naming.md, with a warning."""

from __future__ import annotations

import warnings
from typing import Any


class renamed:
    """A class attribute that forwards to ``new_name`` and warns that it was renamed."""

    def __init__(self, new_name: str) -> None:
        self.new_name = new_name
        self.old_name = new_name

    def __set_name__(self, owner: type, name: str) -> None:
        self.old_name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        cls = owner if owner is not None else type(instance)
        warnings.warn(
            f"{cls.__name__}.{self.old_name} is deprecated, use {self.new_name} (docs/naming.md)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(instance if instance is not None else cls, self.new_name)


def warn_renamed(old: str, new: str) -> None:
    """Warn that the public name ``old`` is now ``new``."""
    warnings.warn(
        f"{old} is deprecated, use {new} (docs/naming.md)", DeprecationWarning, stacklevel=3
    )
