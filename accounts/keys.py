"""API key format and hashing. Keys look like `sk-flock-<12 lookup chars><32 secret chars>`;
only the lookup part and a SHA-256 of the whole key are stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

PREFIX = "sk-flock-"
LOOKUP_LEN = 12
SECRET_LEN = 32
_ALPHABET = string.ascii_letters + string.digits


def generate() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(LOOKUP_LEN + SECRET_LEN))
    return PREFIX + body


def lookup_of(plaintext: str) -> str | None:
    if not plaintext.startswith(PREFIX) or len(plaintext) != len(PREFIX) + LOOKUP_LEN + SECRET_LEN:
        return None
    return plaintext[len(PREFIX):len(PREFIX) + LOOKUP_LEN]


def hash_of(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def matches(plaintext: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_of(plaintext), stored_hash)


def display(plaintext: str) -> str:
    """A form safe to show again: the prefix and lookup only."""
    return plaintext[: len(PREFIX) + 4] + "…"
