"""Fail fast, with the offline route, when a download cannot reach the internet.

TensorFlow Datasets retries a failed download for minutes and Keras prints a long
traceback; one short HTTP request before either starts tells the reader at once. The
request asks for a known small file (the headers of a Keras weight file) and must be
answered within the deadline: a network that accepts connections but serves nothing (a
captive portal, a firewall that swallows traffic, a hung proxy) fails the check too.
Every download that tlkit starts calls `require_network` (or `require_urls`) first, asking
the host the download will come from: storage.googleapis.com for ImageNet weights, the
classroom mirror `$TLKIT_ASSETS_MIRROR` (else the part's public source) for the asset pack,
and each download host a tfds dataset pins. Set `TLKIT_NO_NETWORK=1` to refuse every
download outright, a mirror's included.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

# The hosts that Keras weights and most tfds datasets are served from.
DOWNLOAD_HOSTS = ("storage.googleapis.com",)
# A small file every Keras installation downloads from there (only its headers are asked for).
PROBE_URLS = {
    "storage.googleapis.com": "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
    "mobilenet_2_5_128_tf_no_top.h5",
}
NO_NETWORK_ENV = "TLKIT_NO_NETWORK"
OFFLINE_HINT = (
    "To run offline, set TLKIT_PROFILE=offline and TLKIT_ASSETS to a folder laid out like "
    "shared/data (weights/ and datasets/), or put the weight files in $KERAS_HOME/models."
)


def probe_url(host: str, port: int = 443) -> str:
    """The URL `network_available` asks for on `host`: its known small file, else its root."""
    if host in PROBE_URLS and port == 443:
        return PROBE_URLS[host]
    scheme = "https" if port == 443 else "http"
    default = {"https": 443, "http": 80}[scheme]
    return f"{scheme}://{host}{'' if port == default else f':{port}'}/"


def url_answers(url: str, timeout: float = 5.0) -> bool:
    """Whether an HTTP HEAD request for `url` gets a response (status below 500) within `timeout` seconds.

    The deadline covers everything: the name lookup (a machine whose DNS server is
    unreachable can otherwise block for tens of seconds), the connection, and the wait for
    the response (a server that accepts and never answers).
    """
    result = []

    def attempt():
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "tlkit-network-check"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                result.append(response.status < 500)
        except urllib.error.HTTPError as error:  # the server answered: 403/404 still prove a working network
            result.append(error.code < 500)
        except Exception:  # noqa: BLE001 (OSError, timeouts, or anything a patched or broken resolver raises)
            result.append(False)

    if not url.startswith(("http://", "https://")):
        raise ValueError(f"Invalid value for argument `url`. Received: url={url!r}. Expected an http(s) URL.")
    worker = threading.Thread(target=attempt, name="tlkit-network-check", daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def network_available(
    host: str = DOWNLOAD_HOSTS[0], port: int = 443, timeout: float = 5.0, url: str | None = None
) -> bool:
    """Whether `host` serves an HTTP request (for `url`, default `probe_url(host, port)`) within `timeout` s."""
    if refused():
        return False
    return url_answers(url or probe_url(host, port), timeout)


def refused() -> bool:
    """Whether `$TLKIT_NO_NETWORK` asks tlkit to refuse every download."""
    return os.environ.get(NO_NETWORK_ENV, "") not in ("", "0")


def require_network(
    what: str, host: str = DOWNLOAD_HOSTS[0], timeout: float = 5.0, hint: str = "", url: str | None = None
) -> None:
    """Raises `ConnectionError` naming `what` and the offline route if `host` does not answer.

    `hint` adds what else the reader can do (e.g. how to load a local file instead).
    """
    if not network_available(host, timeout=timeout, url=url):
        _refuse(what, [host], timeout, hint)


def require_urls(what: str, urls: Sequence[str], timeout: float = 5.0, hint: str = "") -> None:
    """Raises `ConnectionError` naming `what`, the hosts that did not answer and the offline route,
    unless the host of every URL answers an HTTP request for it within `timeout` seconds.

    The hosts are asked at the same time, so the check takes at most `timeout` seconds however
    many there are.

    Args:
        what: what is about to be downloaded, e.g. `"the tfds dataset 'beans'"`.
        urls: the URLs the download will fetch (one per host is enough).
        timeout: seconds each host has to answer.
        hint: what else the reader can do.

    Example:

    ```python
    require_urls("the tfds dataset 'beans'", ["https://storage.googleapis.com/ibeans/train.zip"])
    ```
    """
    if not urls:
        raise ValueError("Invalid value for argument `urls`. Received: urls=[]. Expected at least one URL.")
    if refused():
        _refuse(what, [], timeout, hint)
    with ThreadPoolExecutor(len(urls)) as pool:
        answered = list(pool.map(lambda url: url_answers(url, timeout), urls))
    silent = list(dict.fromkeys(urllib.parse.urlsplit(u).netloc for u, ok in zip(urls, answered) if not ok))
    if silent:
        _refuse(what, silent, timeout, hint)


def _refuse(what: str, hosts: Sequence[str], timeout: float, hint: str) -> None:
    if refused():
        reason = f"${NO_NETWORK_ENV} is set"
    else:
        reason = (
            f"{' and '.join(hosts)} did not answer an HTTP request within {timeout:g} s "
            "(no network, or one that serves nothing?)"
        )
    raise ConnectionError(f"Cannot download {what}: {reason}. {hint + ' ' if hint else ''}{OFFLINE_HINT}")
