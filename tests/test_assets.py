"""tlkit.assets against an HTTP server on 127.0.0.1 that each test starts, serving a tiny fake pack.

No test reaches the internet: the fake pack is fetched through the mirror setting
(`TLKIT_ASSETS_MIRROR`) or through stand-in `SOURCES` pointing at the same local server.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from tlkit import assets

REPO = Path(__file__).resolve().parents[1]
RNG_BYTES = hashlib.sha256(b"tlkit").digest() * 6250  # 200 kB of fixed, incompressible-looking bytes
GZ_CONTENT = b"IDX-like payload\n" * 500

PACK = {
    "weights/tiny.h5": RNG_BYTES,
    "datasets/tiny/a/1.jpg": b"\xff\xd8 first image",
    "datasets/tiny/b/2.jpg": b"\xff\xd8 second image",
    "datasets/gz/x-idx1-ubyte.gz": gzip.compress(GZ_CONTENT, compresslevel=9, mtime=0),
    "embeddings/notes.txt": b"notes beside the verified copy\n",
}
CHECKS = {"datasets/gz/x-idx1-ubyte.gz": "gunzip", "embeddings/notes.txt": "optional"}


def _write_manifest(path: Path, pack: dict[str, bytes], checks: dict[str, str] | None = None) -> Path:
    lines = ["# test manifest\n"]
    for rel, data in pack.items():
        check = (CHECKS if checks is None else checks).get(rel, "sha256")
        digest = hashlib.sha256(gzip.decompress(data) if check == "gunzip" else data).hexdigest()
        lines.append(f"{digest}\t{len(data)}\t{rel}\t{check}\n")
    path.write_text("".join(lines))
    return path


class Server:
    """Serves `files` (URL path -> bytes) with HTTP Range support and injectable faults."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.faults: dict[str, list[str]] = {}  # path -> faults for its next requests: "truncate"
        self.requests: list[tuple[str, str | None]] = []
        self.heads: list[str] = []  # HEAD requests: the network checks
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
                server.heads.append(path)
                self.send_response(200 if path in server.files else 404)
                self.send_header("Content-Length", str(len(server.files.get(path, b""))))
                self.end_headers()

            def do_GET(self):
                path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
                server.requests.append((path, self.headers.get("Range")))
                if path not in server.files:
                    self.send_error(404)
                    return
                data = server.files[path]
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                body = data[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                fault = server.faults.get(path, [None]).pop(0) if server.faults.get(path) else None
                self.wfile.write(body[: len(body) // 2] if fault == "truncate" else body)
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _no_mirror_from_outside(monkeypatch):
    """A mirror set for the whole run (a classroom's) must not redirect these tests."""
    monkeypatch.delenv("TLKIT_ASSETS_MIRROR", raising=False)


@pytest.fixture
def server():
    srv = Server(PACK)
    yield srv
    srv.close()


@pytest.fixture
def manifest(tmp_path) -> Path:
    return _write_manifest(tmp_path / "manifest.tsv", PACK)


def _dead_url() -> str:
    with socket.socket() as s:  # a port nothing listens on once this socket closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_good_fetch_builds_the_pack_and_sha256sums(server, manifest, tmp_path):
    dest = assets.fetch(tmp_path / "pack", mirror=server.url, manifest=manifest, progress=False)
    for rel, data in PACK.items():
        assert (dest / rel).read_bytes() == data
    assert not list(dest.rglob("*.part"))
    sums = (dest / "datasets" / "tiny" / "SHA256SUMS").read_text().splitlines()
    assert sums == [f"{hashlib.sha256(PACK[f'datasets/tiny/{n}']).hexdigest()}  {n}" for n in ("a/1.jpg", "b/2.jpg")]
    assert assets.verify(dest, manifest=manifest) == []
    served = len(server.requests)
    assets.fetch(dest, mirror=server.url, manifest=manifest, progress=False)  # complete: nothing fetched again
    assert len(server.requests) == served


def test_gunzip_check_accepts_the_same_content_compressed_otherwise(server, manifest, tmp_path):
    server.files["datasets/gz/x-idx1-ubyte.gz"] = gzip.compress(GZ_CONTENT, compresslevel=1, mtime=12345)
    dest = assets.fetch(tmp_path / "pack", only=["gz"], mirror=server.url, manifest=manifest, progress=False)
    assert gzip.decompress((dest / "datasets/gz/x-idx1-ubyte.gz").read_bytes()) == GZ_CONTENT


def test_wrong_hash_is_refused_naming_the_file(server, manifest, tmp_path):
    server.files["datasets/tiny/b/2.jpg"] = b"\xff\xd8 tampered"
    with pytest.raises(assets.AssetsError, match=r"Refused datasets/tiny/b/2\.jpg: its file has sha256"):
        assets.fetch(tmp_path / "pack", only=["tiny"], mirror=server.url, manifest=manifest, progress=False)
    assert not (tmp_path / "pack/datasets/tiny/b/2.jpg").exists()
    assert not (tmp_path / "pack/datasets/tiny/b/2.jpg.part").exists()
    assert (tmp_path / "pack/datasets/tiny/a/1.jpg").read_bytes() == PACK["datasets/tiny/a/1.jpg"]


def test_truncated_file_is_kept_as_part_and_reported(server, manifest, tmp_path):
    server.faults["weights/tiny.h5"] = ["truncate"] * 10
    start = time.monotonic()
    with pytest.raises(assets.AssetsError, match=r"interrupted .*run the same command again to resume"):
        assets.fetch(
            tmp_path / "pack", only=["weights"], mirror=server.url, manifest=manifest, progress=False, retries=1
        )
    assert time.monotonic() - start < 5
    part = tmp_path / "pack/weights/tiny.h5.part"
    assert 0 < part.stat().st_size < len(RNG_BYTES)
    assert not (tmp_path / "pack/weights/tiny.h5").exists()


def test_interrupted_fetch_resumes_with_a_range_request(server, manifest, tmp_path):
    server.faults["weights/tiny.h5"] = ["truncate"]
    with pytest.raises(assets.AssetsError, match="interrupted"):  # first run: breaks off, no retry
        assets.fetch(
            tmp_path / "pack", only=["weights"], mirror=server.url, manifest=manifest, progress=False, retries=0
        )
    have = (tmp_path / "pack/weights/tiny.h5.part").stat().st_size
    assert have == len(RNG_BYTES) // 2
    assets.fetch(tmp_path / "pack", only=["weights"], mirror=server.url, manifest=manifest, progress=False)
    assert (tmp_path / "pack/weights/tiny.h5").read_bytes() == RNG_BYTES
    assert server.requests[-1] == ("weights/tiny.h5", f"bytes={have}-")


def test_a_broken_transfer_is_resumed_within_one_run(server, manifest, tmp_path):
    server.faults["weights/tiny.h5"] = ["truncate"]
    assets.fetch(tmp_path / "pack", only=["weights"], mirror=server.url, manifest=manifest, progress=False)
    assert (tmp_path / "pack/weights/tiny.h5").read_bytes() == RNG_BYTES
    assert [r for p, r in server.requests if p == "weights/tiny.h5"] == [None, f"bytes={len(RNG_BYTES) // 2}-"]


def test_server_down_fails_within_seconds(manifest, tmp_path):
    start = time.monotonic()
    with pytest.raises(assets.AssetsError, match=r"Cannot reach 127\.0\.0\.1"):
        assets.fetch(tmp_path / "pack", mirror=_dead_url(), manifest=manifest, progress=False)
    assert time.monotonic() - start < 5


def test_unknown_part_name_is_rejected(manifest, tmp_path):
    with pytest.raises(assets.AssetsError, match=r"Invalid value for argument `only`.*weights, tiny, gz, embeddings"):
        assets.fetch(tmp_path / "pack", only=["weight"], mirror="http://unused/", manifest=manifest)


def test_public_sources_are_mapped_onto_the_layout(server, manifest, tmp_path, monkeypatch):
    """The source route: a zip holding a tar.gz (Caltech-101's layout), a plain file, a derived GloVe file."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        for rel in ("101_Objects/a/1.jpg", "101_Objects/b/2.jpg", "101_Objects/b/tmp"):
            data = PACK.get("datasets/tiny/" + rel.split("/", 1)[1], b"stray file")
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("top/inner.tar.gz", inner.getvalue())
        z.writestr("__MACOSX/top/._inner.tar.gz", b"resource fork")
    glove = io.BytesIO()
    with zipfile.ZipFile(glove, "w") as z:
        z.writestr("glove.6B.50d.txt", "the 0.41800 -6.3681e-05\n, 0.013441 1.0\nof 2 3\n")
    expected_glove = b"the 0.418 -6.3681e-05\n, 0.013441 1\n"
    server.files.update({"src/tiny.zip": outer.getvalue(), "src/glove.zip": glove.getvalue()})
    pack = dict(PACK, **{"embeddings/glove.txt.gz": gzip.compress(expected_glove)})
    monkeypatch.setitem(CHECKS, "embeddings/glove.txt.gz", "gunzip")
    manifest = _write_manifest(tmp_path / "sources.tsv", pack)
    monkeypatch.setattr(assets, "GLOVE_WORDS", 2)
    monkeypatch.setattr(
        assets,
        "SOURCES",
        {
            "tiny": [assets.Source(server.url + "src/tiny.zip", "datasets/tiny", "archive", "top/inner.tar.gz", 2)],
            "weights": [assets.Source(server.url + "weights/tiny.h5", "weights/tiny.h5")],
            "embeddings": [assets.Source(server.url + "src/glove.zip", "embeddings/glove.txt.gz", kind="glove")],
        },
    )
    dest = assets.fetch(tmp_path / "pack", only=["tiny", "weights", "embeddings"], manifest=manifest, progress=False)
    assert sorted(p.relative_to(dest / "datasets/tiny").as_posix() for p in (dest / "datasets/tiny").rglob("*")) == [
        "SHA256SUMS", "a", "a/1.jpg", "b", "b/2.jpg"
    ]  # fmt: skip
    assert (dest / "weights/tiny.h5").read_bytes() == RNG_BYTES
    assert gzip.decompress((dest / "embeddings/glove.txt.gz").read_bytes()) == expected_glove
    assert not (dest / "embeddings/notes.txt").exists()  # optional: no source publishes it
    assert not any((dest / ".downloads").iterdir())  # archives removed once unpacked


def test_ensure_never_downloads_into_tlkit_assets(server, manifest, tmp_path, monkeypatch):
    incomplete = tmp_path / "incomplete"
    (incomplete / "weights").mkdir(parents=True)
    monkeypatch.setenv("TLKIT_ASSETS", str(incomplete))
    monkeypatch.setenv("TLKIT_ASSETS_MIRROR", server.url)
    with pytest.raises(assets.AssetsError, match=r"lacks 4 of the pack's files .*does not download"):
        assets.ensure(manifest=manifest)
    assert server.requests == []


def test_ensure_prefers_a_complete_candidate_then_fetches_into_the_cache(server, manifest, tmp_path, monkeypatch):
    monkeypatch.delenv("TLKIT_ASSETS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TLKIT_ASSETS_MIRROR", server.url)
    copy = assets.fetch(tmp_path / "copy", mirror=server.url, manifest=manifest, progress=False)
    served = len(server.requests)
    assert assets.ensure([tmp_path / "absent", copy], manifest=manifest) == copy.resolve()
    assert len(server.requests) == served
    fetched = assets.ensure([tmp_path / "absent"], manifest=manifest)
    assert fetched == (tmp_path / "cache/tlkit/assets").resolve() and not assets.missing(fetched, manifest=manifest)
    assert assets.locate() == fetched


def test_no_assets_and_no_network_is_one_paragraph_within_seconds(tmp_path):
    """What `make test` prints first on a machine with neither assets nor network."""
    env = {k: v for k, v in os.environ.items() if k not in ("TLKIT_ASSETS", "PYTHONPATH")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), TLKIT_ASSETS_MIRROR=_dead_url())
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "tlkit.assets", "ensure", str(tmp_path / "no_shared")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=30,
    )
    assert time.monotonic() - start < 10
    assert run.returncode == 1 and run.stdout == ""
    paragraph = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(paragraph) == 1, run.stderr
    assert "Two ways on" in paragraph[0] and "TLKIT_ASSETS" in paragraph[0] and "cannot be reached" in paragraph[0]


def test_the_manifest_covers_every_source_and_part():
    entries = assets.read_manifest()
    counts = {name: sum(e.part == name for e in entries) for name in assets.parts(entries)}
    assert counts == {
        "caltech101": 9144, "eurosat": 13000, "fashion-mnist": 4, "sentiment-labelled-sentences": 4,
        "embeddings": 3, "weights": 2,
    }  # fmt: skip
    assert set(assets.SOURCES) == set(counts)
    for name, sources in assets.SOURCES.items():
        required = {e.path for e in entries if e.part == name and e.check != "optional"}
        covered = {p for p in required for s in sources if p == s.target or p.startswith(s.target + "/")}
        assert covered == required, name
    eurosat = {e.path.split("/")[2] for e in entries if e.part == "eurosat"}
    assert eurosat == {"Forest", "Industrial", "Pasture", "Residential", "River"}


def test_dataset_path_fetches_a_missing_part_into_the_cache(server, manifest, tmp_path, monkeypatch):
    """What the full profile's loaders call for the datasets the pack holds."""
    monkeypatch.setattr(assets, "manifest_path", lambda: manifest)
    monkeypatch.delenv("TLKIT_ASSETS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TLKIT_ASSETS_MIRROR", server.url)
    with pytest.raises(assets.AssetsError, match="Two ways on"):
        assets.dataset_path("tiny", download=False)
    folder = assets.dataset_path("tiny")
    assert folder == (tmp_path / "cache/tlkit/assets/datasets/tiny").resolve()
    assert (folder / "b/2.jpg").read_bytes() == PACK["datasets/tiny/b/2.jpg"]


@pytest.mark.usefixtures("assets")  # $TLKIT_ASSETS holds the real pack; skips without it
def test_full_profile_reads_a_complete_local_copy_without_network(monkeypatch):
    from tlkit import data

    def refuse(*args, **kwargs):
        raise OSError("network unreachable (cut by the test)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TLKIT_PROFILE", "full")
    index = data.index_source("caltech101", classes=["Leopards", "airplanes"])  # lists files, decodes none
    assert index.class_names == ["Leopards", "airplanes"] and len(index.labels) == 200 + 800


def test_glove_derivation_reproduces_the_pack_file(assets, tmp_path):
    """Lines as glove.6B.zip holds them give the pack's file, byte for byte (its first 2,000 lines here).

    The stand-in zip holds the pack's own lines followed by more words: the derivation must keep
    exactly the first `words` lines and write them as the pack has them. (The full 20,000 take
    ~10x longer; `fetch` checks those against the manifest's hash.)
    """
    from tlkit import assets as tla  # the `assets` argument is the pack folder

    entry = next(e for e in tla.read_manifest() if e.path == "embeddings/glove.6B.50d.top20k.txt.gz")
    lines = gzip.decompress((assets / entry.path).read_bytes())
    assert hashlib.sha256(lines).hexdigest() == entry.sha256 and lines.count(b"\n") == tla.GLOVE_WORDS
    first = b"".join(lines.splitlines(keepends=True)[:2000])
    with zipfile.ZipFile(tmp_path / "glove.6B.zip", "w") as z:
        z.writestr("glove.6B.50d.txt", first + b"zzyzx" + b" 0.50000" * 50 + b"\n")
        z.writestr("glove.6B.100d.txt", b"the" + b" 0.1" * 100 + b"\n")
    tla.derive_glove_subset(tmp_path / "glove.6B.zip", tmp_path / "out.txt.gz", words=2000)
    assert gzip.decompress((tmp_path / "out.txt.gz").read_bytes()) == first


# ---------------------------------------------------------------------------- the full profile and a classroom mirror


def _classroom_pack() -> dict[str, bytes]:
    """A tiny pack laid out like the real one, with every part the full profile's loaders read."""
    from PIL import Image

    rng = np.random.default_rng(0)

    def jpeg() -> bytes:
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(out, "JPEG", quality=90)
        return out.getvalue()

    def idx(array: np.ndarray) -> bytes:
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)

    pack = {}
    for part, classes in (("caltech101", ("Leopards", "airplanes")), ("eurosat", ("Forest", "River"))):
        for name in classes:
            for i in range(6):
                pack[f"datasets/{part}/{name}/{name}_{i}.jpg"] = jpeg()
    for split, per_class in (("train", 3), ("t10k", 1)):
        labels = np.repeat(np.arange(10), per_class)
        pack[f"datasets/fashion-mnist/{split}-images-idx3-ubyte.gz"] = idx(rng.integers(0, 256, (len(labels), 28, 28)))
        pack[f"datasets/fashion-mnist/{split}-labels-idx1-ubyte.gz"] = idx(labels)
    for name in ("amazon_cells", "imdb", "yelp"):
        pack[f"datasets/sentiment-labelled-sentences/{name}_labelled.txt"] = b"Great phone.\t1\nAwful.\t0\n"
    pack["embeddings/glove.6B.50d.top20k.txt.gz"] = gzip.compress(b"the 0.1 0.2 0.3\ngood 0.5 0.4 0.1\n", mtime=0)
    pack["weights/mobilenet_2_5_224_tf_no_top.h5"] = RNG_BYTES
    pack["weights/imagenet_class_index.json"] = b'{"0": ["n01440764", "tench"]}'
    return pack


def _only_loopback(monkeypatch):
    """Cuts every name lookup but 127.0.0.1's: no internet, only the mirror this test starts."""
    lookup = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", b"127.0.0.1"):
            raise OSError(f"no internet in this test (asked for {host})")
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


@pytest.fixture
def classroom(tmp_path, monkeypatch):
    """The full profile as a new user's first run in a classroom: an empty cache, no `TLKIT_ASSETS`,
    no internet, and `TLKIT_ASSETS_MIRROR` pointing at a server on 127.0.0.1 that serves the pack."""
    pack = _classroom_pack()
    server = Server(pack)
    gz = {rel: "gunzip" for rel in pack if rel.endswith(".gz")}
    manifest = _write_manifest(tmp_path / "classroom.tsv", pack, gz)
    monkeypatch.setattr(assets, "manifest_path", lambda: manifest)
    monkeypatch.setenv("TLKIT_PROFILE", "full")
    monkeypatch.delenv("TLKIT_ASSETS", raising=False)
    monkeypatch.delenv("TLKIT_NO_NETWORK", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("TLKIT_ASSETS_MIRROR", server.url)
    _only_loopback(monkeypatch)
    server.pack = pack
    yield server
    server.close()


def test_full_profile_fetches_each_part_from_the_mirror_when_first_needed(classroom, tmp_path):
    import tlkit
    from tlkit.backbones import find_weight_file, get_spec, weight_dirs
    from tlkit.data import fetched_part

    cache = tmp_path / "cache" / "tlkit" / "assets"
    caltech = tlkit.load_dataset("caltech101", 32, images_per_class=3, val_per_class=1, test_per_class=2)
    assert caltech.class_names == ["Leopards", "airplanes"] and caltech.train.class_counts().tolist() == [3, 3]
    assert caltech.train.images.shape == (6, 32, 32, 3) and caltech.test.class_counts().tolist() == [2, 2]
    assert [p.relative_to(cache).as_posix() for p in cache.glob("*/*")] == ["datasets/caltech101"]
    assert {p.split("/")[1] for p, _ in classroom.requests} == {"caltech101"}  # that part only, so far

    # The cache now holds one part, so locate() returns it: the weights lookups must still work.
    spec = get_spec("mobilenet_0.25")
    assert weight_dirs() == [cache.resolve() / "weights", tmp_path / "keras_home" / "models"]
    assert find_weight_file(spec, 128) is None  # no weights part yet, and nothing breaks

    eurosat = tlkit.load_dataset("eurosat", 32, images_per_class=2, val_per_class=1, test_per_class=1)
    assert eurosat.class_names == ["Forest", "River"] and eurosat.train.class_counts().tolist() == [2, 2]
    fashion = tlkit.load_dataset(
        "fashion_mnist", 32, classes=["Sandal", "Bag"], images_per_class=2, val_per_class=1, test_per_class=1
    )
    assert fashion.class_names == ["Sandal", "Bag"] and fashion.train.images.shape == (4, 32, 32, 3)
    vectors = tlkit.text.load_word_vectors()
    assert vectors.words == ["the", "good"] and vectors.dim == 3
    texts, labels = tlkit.text.load_sentences("yelp")
    assert texts == ["Great phone.", "Awful."] and labels.tolist() == [1, 0]
    assert fetched_part("weights") == cache.resolve() / "weights"
    assert find_weight_file(spec, 128) == cache.resolve() / "weights" / "mobilenet_2_5_224_tf_no_top.h5"

    assert assets.verify(cache) == []  # every part now in the cache, hash-checked
    fetched = sorted(p for p, _ in classroom.requests)
    assert fetched == sorted(classroom.pack)  # each file fetched once, all from the mirror
    assert classroom.heads == [""] * 6  # one network check (of the mirror) before each part's fetch


def test_full_profile_with_a_mirror_that_is_down_fails_fast_naming_it(classroom, monkeypatch, tmp_path):
    import tlkit

    dead = _dead_url()
    monkeypatch.setenv("TLKIT_ASSETS_MIRROR", dead)
    start = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        tlkit.load_dataset("caltech101", 32)
    assert time.monotonic() - start < 10
    text = str(info.value)
    host = urllib.parse.urlsplit(dead).netloc
    assert text.startswith(f"Cannot download the caltech101 files from the mirror: {host} did not answer"), text
    assert f"$TLKIT_ASSETS_MIRROR is {dead}" in text and "TLKIT_ASSETS" in text
    assert not (tmp_path / "cache" / "tlkit").exists()


def test_full_profile_with_no_network_set_refuses_the_mirror_too(classroom, monkeypatch):
    import tlkit

    monkeypatch.setenv("TLKIT_NO_NETWORK", "1")
    with pytest.raises(ConnectionError, match=r"the embeddings files from the mirror: \$TLKIT_NO_NETWORK is set"):
        tlkit.text.load_word_vectors()
    assert classroom.requests == [] and classroom.heads == []
