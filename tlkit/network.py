"""Fail fast, with the offline route, when a download cannot reach the internet.

TensorFlow Datasets retries a failed download for minutes and Keras prints a long
traceback; one short connection attempt before either starts tells the reader at once.
"""

from __future__ import annotations

import os
import socket

# The hosts that Keras weights and most tfds datasets are served from.
DOWNLOAD_HOSTS = ("storage.googleapis.com",)
OFFLINE_HINT = (
    "To run offline, set TLKIT_PROFILE=offline and TLKIT_ASSETS to a folder laid out like "
    "shared/data (weights/ and datasets/), or put the weight files in $KERAS_HOME/models."
)


def network_available(host: str = DOWNLOAD_HOSTS[0], port: int = 443, timeout: float = 5.0) -> bool:
    """Whether one TCP connection to `host` succeeds within `timeout` seconds."""
    if os.environ.get("TLKIT_NO_NETWORK"):
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_network(what: str, host: str = DOWNLOAD_HOSTS[0], timeout: float = 5.0) -> None:
    """Raises `ConnectionError` naming `what` and the offline route if `host` is unreachable."""
    if not network_available(host, timeout=timeout):
        raise ConnectionError(
            f"Cannot download {what}: {host} is unreachable (no network?). {OFFLINE_HINT}"
        )
