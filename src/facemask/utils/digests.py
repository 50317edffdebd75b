"""SHA-256 digests: of a file's bytes (a checkpoint's), and of settings written as sorted JSON, so
that equal settings give the same digest whatever their keys' order."""

import hashlib
import json
from pathlib import Path
from typing import Any


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def settings_digest(settings: Any, length: int = 64) -> str:
    """The first `length` hex digits of the SHA-256 of `settings` as sorted JSON (values JSON does
    not write, as their text)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:length]
