"""Agent passwords, kept only as Argon2id hashes (argon2-cffi, RFC 9106 parameters)."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

PREFIX = "$argon2"


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` in the PHC string format (``$argon2id$v=19$...``)."""
    return _hasher().hash(password)


def is_hash(value: str) -> bool:
    """Whether ``value`` looks like a hash rather than a password."""
    return value.startswith(PREFIX)


def hash_problem(value: str) -> str | None:
    """Why ``value`` is not a usable Argon2 hash, or ``None`` if it is one."""
    try:
        extract_parameters(value)
    except (InvalidHashError, ValueError, IndexError) as exc:
        return f"not a valid Argon2 hash ({exc or 'unreadable'})"
    return None


def verify_password(hashed: str, password: str) -> bool:
    """Whether ``password`` matches ``hashed`` (constant time inside Argon2)."""
    try:
        return _hasher().verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A hash to verify against for an unknown name, so timing does not reveal which names exist."""
    return hash_password("no such agent")
