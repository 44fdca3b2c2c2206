"""Fail fast, with the offline route, when a download cannot reach the internet.

TensorFlow Datasets retries a failed download for minutes and Keras prints a long
traceback; one short connection attempt before either starts tells the reader at once.
Every download that tlkit starts (ImageNet weights, Fashion-MNIST, tfds datasets) calls
`require_network` first. Set `TLKIT_NO_NETWORK=1` to refuse every download outright.
"""

from __future__ import annotations

import os
import socket
import threading

# The hosts that Keras weights and most tfds datasets are served from.
DOWNLOAD_HOSTS = ("storage.googleapis.com",)
NO_NETWORK_ENV = "TLKIT_NO_NETWORK"
OFFLINE_HINT = (
    "To run offline, set TLKIT_PROFILE=offline and TLKIT_ASSETS to a folder laid out like "
    "shared/data (weights/ and datasets/), or put the weight files in $KERAS_HOME/models."
)


def network_available(host: str = DOWNLOAD_HOSTS[0], port: int = 443, timeout: float = 5.0) -> bool:
    """Whether one TCP connection to `host` succeeds within `timeout` seconds.

    The deadline covers the name lookup too (a machine whose DNS server is unreachable
    can otherwise block for tens of seconds before `socket` gives up).
    """
    if os.environ.get(NO_NETWORK_ENV, "") not in ("", "0"):
        return False
    result = []

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except Exception:  # OSError, or anything a patched or broken resolver raises
            result.append(False)

    worker = threading.Thread(target=attempt, name="tlkit-network-check", daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def require_network(what: str, host: str = DOWNLOAD_HOSTS[0], timeout: float = 5.0, hint: str = "") -> None:
    """Raises `ConnectionError` naming `what` and the offline route if `host` is unreachable.

    `hint` adds what else the reader can do (e.g. how to load a local file instead).
    """
    if not network_available(host, timeout=timeout):
        refused = os.environ.get(NO_NETWORK_ENV, "") not in ("", "0")
        reason = f"${NO_NETWORK_ENV} is set" if refused else f"{host} is unreachable (no network?)"
        raise ConnectionError(f"Cannot download {what}: {reason}. {hint + ' ' if hint else ''}{OFFLINE_HINT}")
