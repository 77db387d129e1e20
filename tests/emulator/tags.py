"""AWS tag limits, as VPC Lattice and Lambda both document them: keys of 1-128 and values of 0-256
characters of letters, digits, spaces and `_ . : / = + - @`, no `aws:` keys, at most 50 tags on a
resource (`lattice_targets` for Lattice resources, `lambda_service` for functions)."""

from __future__ import annotations

import unicodedata
from typing import Any


MAX_TAGS = 50


TAG_PUNCTUATION = set("_.:/=+-@")


def _tag_text_ok(text: str) -> bool:
    """Letters, digits, spaces and `_ . : / = + - @` (`[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*`)."""
    return all(unicodedata.category(ch)[0] in "LNZ" or ch in TAG_PUNCTUATION for ch in text)


def tag_problem(key: Any, value: Any) -> str | None:
    if not isinstance(key, str) or not 1 <= len(key) <= 128:
        return f"tag key {key!r} must be 1-128 characters"
    if not isinstance(value, str) or len(value) > 256:
        return f"tag value of {key!r} must be 0-256 characters"
    if not _tag_text_ok(key):
        return f"tag key {key!r} may hold only letters, digits, spaces and _ . : / = + - @"
    if not _tag_text_ok(value):
        return f"tag value {value!r} of {key!r} may hold only letters, digits, spaces and _ . : / = + - @"
    if key.lower().startswith("aws:"):
        return f"tag key {key!r}: the aws: prefix is reserved for AWS use"
    return None


def user_tag_count(tags: dict) -> int:
    return sum(1 for k in tags if not k.lower().startswith("aws:"))
