"""Without a network, every download tlkit starts fails fast with the offline route.

The sockets are cut inside the test process (and every downloader is replaced by a
tripwire), so these tests behave the same on a laptop with internet and in an offline CI.
"""

import socket
import time
from unittest import mock

import pytest

import tlkit
from tlkit import data, network

# A download that fails must say so within ~10 s (tfds alone retries for ~200 s); the
# network check's own deadline is 5 s, so 15 s leaves room for a loaded CI machine.
FAIL_FAST_S = 15


def _refuse(*args, **kwargs):
    raise OSError("network unreachable (cut by the test)")


def _tripwire(*args, **kwargs):
    raise AssertionError("a download started: the network check should have stopped it")


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """No sockets, no downloaders, no local weights or assets, and the full profile."""
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", _tripwire)
    monkeypatch.setattr("keras.src.datasets.fashion_mnist.get_file", _tripwire)
    monkeypatch.setenv("TLKIT_PROFILE", "full")
    monkeypatch.delenv("TLKIT_ASSETS", raising=False)
    monkeypatch.delenv("TLKIT_NO_NETWORK", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path


def _fails_fast(call) -> str:
    """Runs `call`, which must raise ConnectionError within FAIL_FAST_S naming the offline
    route (TLKIT_ASSETS, KERAS_HOME); returns the message."""
    start = time.perf_counter()
    with pytest.raises(ConnectionError) as info:
        call()
    assert time.perf_counter() - start < FAIL_FAST_S
    text = str(info.value)
    assert "TLKIT_ASSETS" in text and "KERAS_HOME" in text, text
    return text


def test_imagenet_weights_fail_fast_without_network(no_network):
    message = _fails_fast(lambda: tlkit.load_backbone("mobilenet_v2", 96))
    assert "weights='/path/to/" in message  # how to load a local file instead


def test_failed_weight_download_says_how_to_load_by_path(no_network, monkeypatch):
    # The network answers, but the file does not come (a 404, a proxy): no Keras traceback.
    monkeypatch.setattr(network, "network_available", lambda *a, **k: True)

    def not_found(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: 404 -- Not Found")

    monkeypatch.setattr("keras.src.utils.file_utils.get_file", not_found)
    with pytest.raises(ConnectionError, match="Downloading ImageNet weights for mobilenet_0.25 failed") as info:
        tlkit.load_backbone("mobilenet_0.25", 128)
    assert "weights='/path/to/mobilenet_2_5_128_tf_no_top.h5'" in str(info.value)


def test_fashion_mnist_download_fails_fast_without_network(no_network):
    _fails_fast(lambda: tlkit.load_dataset("fashion_mnist", 32))


def test_tfds_download_fails_fast_without_network(no_network):
    tfds = pytest.importorskip("tensorflow_datasets")
    # mock_data replaces download_and_prepare with a no-op and serves fake examples, so
    # even with a network this test never downloads; the check must still refuse first.
    # (patched with mock.patch inside mock_data, so both are undone in order when the test ends)
    with (
        tfds.testing.mock_data(num_examples=4),
        mock.patch.object(tfds.core.DatasetBuilder, "download_and_prepare", _tripwire),
    ):
        message = _fails_fast(lambda: tlkit.load_dataset("cats_vs_dogs", 32))
    assert "cats_vs_dogs" in message


def test_tfds_code_path_runs_offline_with_mock_data(no_network, monkeypatch):
    """The full profile's tfds route, end to end, with fake examples, no download, and a network that answers."""
    tfds = pytest.importorskip("tensorflow_datasets")
    asked = []
    monkeypatch.setattr(network, "url_answers", lambda url, timeout=5.0: asked.append(url) or True)
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        splits = tlkit.load_dataset("cats_vs_dogs", 32, val_per_class=0, test_per_class=1)
    # the dataset is not prepared, so its own download host is asked before download_and_prepare
    assert {u.split("/")[2] for u in asked} == {"download.microsoft.com", "storage.googleapis.com"}
    assert splits.class_names == ["cat", "dog"]
    assert len(splits.train) + len(splits.test) == 12
    assert splits.train.images.shape[1:] == (32, 32, 3)


def test_tfds_community_dataset_fails_fast_without_network(no_network):
    pytest.importorskip("tensorflow_datasets")
    assert "huggingface:beans" in _fails_fast(lambda: data.index_tfds("huggingface:beans"))


def test_unknown_tfds_name_suggests_the_closest(no_network):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(ValueError, match="Did you mean 'cats_vs_dogs'"):
        data.index_tfds("cats_vs_dog")


def test_offline_profile_never_checks_the_network(monkeypatch, tmp_path):
    monkeypatch.setenv("TLKIT_PROFILE", "offline")
    monkeypatch.setenv("TLKIT_ASSETS", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(network, "network_available", _tripwire)
    with pytest.raises(ValueError, match="offline profile does not download"):
        tlkit.load_dataset("cats_vs_dogs", 32)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        tlkit.load_backbone("mobilenet_v2", 96)


def test_network_check_has_a_deadline(monkeypatch):
    # A name lookup that hangs (an unreachable DNS server) is not bounded by the socket
    # timeout; the check's own deadline must still answer within `timeout`.
    monkeypatch.delenv("TLKIT_NO_NETWORK", raising=False)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: time.sleep(30) or _refuse())
    start = time.perf_counter()
    assert not network.network_available(timeout=1.0)
    assert time.perf_counter() - start < 3


def test_no_network_variable_refuses_every_download(monkeypatch):
    monkeypatch.setattr(socket, "create_connection", _tripwire)
    monkeypatch.setenv("TLKIT_NO_NETWORK", "1")
    assert "TLKIT_NO_NETWORK is set" in _fails_fast(lambda: network.require_network("the test file"))


# ---------------------------------------------------------------------------- a network that serves nothing


@pytest.fixture
def silent_server():
    """A server on 127.0.0.1 that accepts connections and never answers (a hung proxy, a black hole)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # the kernel completes the handshakes; nothing is ever read or sent
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def answering_server():
    """An HTTP server on 127.0.0.1 that serves one small file."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200 if self.path == "/small.txt" else 404)
            self.send_header("Content-Length", "5")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_server_that_accepts_but_never_answers_is_no_network(silent_server, monkeypatch):
    monkeypatch.delenv("TLKIT_NO_NETWORK", raising=False)
    with socket.create_connection(("127.0.0.1", silent_server), timeout=1):
        pass  # a TCP connection succeeds: a connect-only check would call this a network
    start = time.perf_counter()
    assert not network.network_available("127.0.0.1", silent_server, timeout=1.0)
    assert not network.network_available(url=f"http://127.0.0.1:{silent_server}/small.txt", timeout=1.0)
    assert time.perf_counter() - start < 4  # two checks, each within its 1 s deadline
    with pytest.raises(ConnectionError, match="did not answer an HTTP request within 1 s.*TLKIT_ASSETS"):
        network.require_network("the test file", "127.0.0.1", timeout=1.0, url=f"http://127.0.0.1:{silent_server}/")


def test_a_server_that_answers_is_a_network(answering_server, monkeypatch):
    monkeypatch.delenv("TLKIT_NO_NETWORK", raising=False)
    assert network.network_available(url=f"http://127.0.0.1:{answering_server}/small.txt", timeout=5.0)
    assert network.network_available("127.0.0.1", answering_server, timeout=5.0)  # a 404 is an answer too
    assert network.probe_url("storage.googleapis.com").endswith(".h5")  # the known small file


def test_require_urls_asks_every_host_at_once_and_names_the_silent_ones(silent_server, answering_server, monkeypatch):
    monkeypatch.delenv("TLKIT_NO_NETWORK", raising=False)
    urls = [f"http://127.0.0.1:{answering_server}/small.txt", f"http://127.0.0.1:{silent_server}/a.zip"] * 2
    start = time.perf_counter()
    with pytest.raises(ConnectionError) as info:
        network.require_urls("the test dataset", urls, timeout=1.0, hint="Try later.")
    assert time.perf_counter() - start < 2.5  # four requests, asked together, each within 1 s
    text = str(info.value)
    assert text.startswith(f"Cannot download the test dataset: 127.0.0.1:{silent_server} did not answer"), text
    assert str(answering_server) not in text and "Try later. To run offline" in text
    network.require_urls("the test file", urls[:1], timeout=5.0)  # a host that answers: no error
