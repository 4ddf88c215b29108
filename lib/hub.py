"""Is the Hugging Face hub reachable? Asked once, before any hub download.

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
