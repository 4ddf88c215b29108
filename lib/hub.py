"""Is the Hugging Face hub reachable, and is a hub model already in the local cache? Asked before any download.

Offline, `from_pretrained` and `load_dataset` retry with back-off for about half
a minute before failing with a long traceback; we ask first and fail at once
with one clear message instead.
"""

from __future__ import annotations

import functools
import os
import socket


@functools.lru_cache(maxsize=1)
def hub_online(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    """False if HF_HUB_OFFLINE is set or the hub cannot be reached within `timeout`."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_cached(name: str) -> bool:
    """Is the hub model `name` in the local Hugging Face cache (its config.json at least)? Offline, such a model
    loads from there (`from_pretrained` reads the cache when HF_HUB_OFFLINE is set, or with local_files_only)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid repo id ("a b", "../x")
        return False
