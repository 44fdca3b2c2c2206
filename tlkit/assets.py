"""The offline assets: fetched once from their public sources, checked, and located.

The assets are a folder (the *pack*) with the ImageNet weights of MobileNet alpha=0.25,
Caltech-101, Fashion-MNIST, five EuroSAT classes, 20,000 GloVe vectors and the UCI
sentiment sentences, laid out as

    weights/mobilenet_2_5_224_tf_no_top.h5, weights/imagenet_class_index.json
    datasets/caltech101/<class>/image_NNNN.jpg
    datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    datasets/eurosat/<class>/<class>_<n>.jpg
    datasets/sentiment-labelled-sentences/{amazon_cells,imdb,yelp}_labelled.txt, readme.txt
    embeddings/glove.6B.50d.top20k.txt.gz

Every file is checked against the project's manifest of SHA-256 hashes (`tlkit/assets.tsv.gz`).
`SOURCES` below lists where each part comes from; it is the one place that names them.

`locate()` is tlkit's one lookup of the assets folder and `locate_part("datasets/caltech101")`
its one lookup of a file or folder inside it; both raise `AssetsError` (a `FileNotFoundError`)
naming what was looked for, where, and the fix. The loaders and lessons call these.

    python -m tlkit.assets fetch [--dest DIR] [--only NAME ...]   # or: make assets
    python -m tlkit.assets verify [--dest DIR]
    python -m tlkit.assets locate

The pack goes to `$TLKIT_ASSETS` when that is set, else to `$XDG_CACHE_HOME/tlkit/assets`
(`~/.cache/tlkit/assets`). With `TLKIT_ASSETS_MIRROR=<url prefix>` the same files are fetched
from a mirror that serves the pack's relative paths under that prefix (e.g. a classroom
server: `python -m http.server` in a copy of the pack) instead of the public sources.

This module and `tlkit.network` use the standard library only, and `import tlkit` loads no other
submodule, so `python -m tlkit.assets ...` runs before tlkit's dependencies are installed (the
Makefile and `make lesson` do this).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import hashlib
import http.client
import io
import os
import shutil
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tlkit.network import NO_NETWORK_ENV, network_available, refused

# The environment variables and the command tlkit's messages name; defined here only, imported elsewhere.
ASSETS_ENV = "TLKIT_ASSETS"
MIRROR_ENV = "TLKIT_ASSETS_MIRROR"
FETCH_COMMAND = "python -m tlkit.assets fetch"
CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True)
class Source:
    """Where one part of a pack comes from, and how its files are laid out.

    Args:
        url: the public address of the download.
        target: the pack-relative file (a plain download) or folder (an archive) it fills.
        kind: `"file"` (the download is the file), `"archive"` (a zip or tar whose members are
            mapped into `target`) or `"glove"` (a file derived from the download, see
            `derive_glove_subset`).
        inner: a member of the archive that is itself an archive, opened in its place.
        keep: how many trailing path components of a member name its place in `target`
            (`Leopards/image_0001.jpg` is 2): leading folders of the archive are dropped.
        sha256: the hash of the download itself, where one is published.
    """

    url: str
    target: str
    kind: str = "file"
    inner: str = ""
    keep: int = 1
    sha256: str = ""


_KERAS = "https://storage.googleapis.com/"
_FASHION = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/b2617bb6d3ffa2e429640350f613e3291e10b141/"

# The public sources, one list per part of the pack. How an archive maps onto our layout:
# - Caltech-101 (CaltechDATA record mzrjq-6wc02): caltech-101.zip holds
#   caltech-101/101_ObjectCategories.tar.gz, whose 101_ObjectCategories/<class>/image_NNNN.jpg
#   become datasets/caltech101/<class>/image_NNNN.jpg (the stray BACKGROUND_Google/tmp is not
#   in the manifest and is skipped). The zip's hash is the one TensorFlow Datasets pins.
# - EuroSAT RGB (Zenodo record 7711810): EuroSAT_RGB.zip holds <top>/<class>/<class>_<n>.jpg for
#   10 classes; the members whose <class>/<file> the manifest lists (5 classes) are kept.
# - UCI Sentiment Labelled Sentences (dataset 331): the zip's "sentiment labelled sentences/"
#   folder gives the four files; its __MACOSX/ copies are not in the manifest and are skipped.
# - GloVe: derived from glove.6B.zip, see `derive_glove_subset`.
# - Fashion-MNIST: the publisher's repository at a fixed commit. Its .gz files differ byte for
#   byte from other re-compressed copies, so the manifest checks the *decompressed* content.
SOURCES: dict[str, list[Source]] = {
    "weights": [
        Source(
            _KERAS + "tensorflow/keras-applications/mobilenet/mobilenet_2_5_224_tf_no_top.h5",
            "weights/mobilenet_2_5_224_tf_no_top.h5",
        ),
        Source(_KERAS + "download.tensorflow.org/data/imagenet_class_index.json", "weights/imagenet_class_index.json"),
    ],
    "caltech101": [
        Source(
            "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip?download=1",
            "datasets/caltech101",
            kind="archive",
            inner="caltech-101/101_ObjectCategories.tar.gz",
            keep=2,
            sha256="331234750fc7f77520e50d9565e8b6907b03565e30320da1401130db08c61f91",
        )
    ],
    "fashion-mnist": [
        Source(_FASHION + f"data/fashion/{name}.gz", f"datasets/fashion-mnist/{name}.gz")
        for name in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        )
    ],
    "eurosat": [
        Source(
            "https://zenodo.org/records/7711810/files/EuroSAT_RGB.zip?download=1", "datasets/eurosat", "archive", keep=2
        )
    ],
    "sentiment-labelled-sentences": [
        Source(
            "https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip",
            "datasets/sentiment-labelled-sentences",
            kind="archive",
            keep=1,
        )
    ],
    "embeddings": [
        Source("https://nlp.stanford.edu/data/glove.6B.zip", "embeddings/glove.6B.50d.top20k.txt.gz", kind="glove")
    ],
}
GLOVE_MEMBER, GLOVE_WORDS = "glove.6B.50d.txt", 20_000


class AssetsError(FileNotFoundError):
    """The asset pack, or a part of it, could not be found, fetched or verified; the message says what to do.

    A subclass of `FileNotFoundError`, so `except FileNotFoundError` also catches a missing pack.
    """


# ---------------------------------------------------------------------------- manifest


@dataclasses.dataclass(frozen=True)
class Entry:
    """One manifest line: a pack-relative path, its size and SHA-256.

    `check` is `"sha256"` (the hash of the file), `"gunzip"` (the hash of its decompressed
    content: .gz files are re-compressed differently by different publishers and zlib versions)
    or `"optional"` (the hash of a file no public source publishes, such as notes kept beside a
    verified copy: a mirror serves it, nothing requires it).
    """

    path: str
    size: int
    sha256: str
    check: str = "sha256"

    @property
    def part(self) -> str:
        """The part of the pack it belongs to: `weights`, `caltech101`, `embeddings`, ..."""
        parts = self.path.split("/")
        return parts[1] if parts[0] == "datasets" else parts[0]


def manifest_path() -> Path:
    """The manifest shipped with tlkit: `assets.tsv.gz` (gzipped text) beside this module."""
    path = Path(__file__).resolve().with_name("assets.tsv.gz")
    if not path.is_file():
        raise AssetsError(f"tlkit's asset manifest {path} is missing. Reinstall tlkit.")
    return path


def read_manifest(path: str | os.PathLike | None = None) -> list[Entry]:
    """Reads a manifest (text, or gzipped text if its name ends in `.gz`).

    Lines are `sha256<TAB>size<TAB>path<TAB>check`; `#` starts a comment.
    """
    path = Path(path or manifest_path())
    return list(_parse_manifest(path, path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _parse_manifest(path: Path, mtime_ns: int) -> tuple[Entry, ...]:
    entries = []
    data = path.read_bytes()
    text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            sha256, size, rel, check = line.split("\t")
            entries.append(Entry(rel, int(size), sha256, check))
    return tuple(entries)


def parts(entries: Iterable[Entry]) -> list[str]:
    """The names of the parts the entries belong to, in manifest order."""
    return list(dict.fromkeys(e.part for e in entries))


# ---------------------------------------------------------------------------- locating


def cache_dir() -> Path:
    """The default pack folder: `$XDG_CACHE_HOME/tlkit/assets` (`~/.cache/tlkit/assets`)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "tlkit" / "assets"


def default_dest() -> Path:
    """Where `fetch` writes: `$TLKIT_ASSETS` when set, else `cache_dir()`."""
    value = os.environ.get(ASSETS_ENV)
    return Path(value).expanduser() if value else cache_dir()


def locate(required: bool = True) -> Path | None:
    """The assets folder the lessons and loaders read: `$TLKIT_ASSETS`, else the cache.

    tlkit's one lookup of the folder (`locate_part` finds a file or folder inside it). A set
    `$TLKIT_ASSETS` must name a folder: it is never passed over for the cache. The cache
    (`cache_dir()`) counts once it holds anything, such as one part the full profile fetched.

    Args:
        required: when there is no folder, raise `AssetsError`; with `False`, return `None`.

    Returns:
        The folder (absolute), or `None` when there is none and `required=False`.

    Raises:
        AssetsError: `$TLKIT_ASSETS` is set to something that is not a folder (whatever
            `required` says), or there is no folder and `required=True`. The message names the
            paths looked at and the fix.

    Example:

    ```python
    folder = tlkit.assets.locate()  # e.g. PosixPath('/home/me/.cache/tlkit/assets')
    ```
    """
    value = os.environ.get(ASSETS_ENV)
    if value:
        path = Path(value).expanduser().resolve()
        if path.is_dir():
            return path
        if path.exists():
            state, fix = "is not a folder", f"(`{FETCH_COMMAND} --dest DIR` fills one)"
        else:
            state, fix = "does not exist", f"(`{FETCH_COMMAND}` fetches the pack there)"
        raise AssetsError(
            f"${ASSETS_ENV} does not name a folder. Received: {ASSETS_ENV}={value!r}, and {path} {state}. "
            f"Expected a folder laid out like the asset pack (weights/, datasets/, embeddings/). Point "
            f"{ASSETS_ENV} at one {fix}, or unset it to use the cache {cache_dir()}."
        )
    cache = cache_dir()
    if cache.is_dir() and any(cache.iterdir()):
        return cache.resolve()
    if required:
        raise AssetsError(no_assets_message())
    return None


def locate_part(relative: str | os.PathLike, required: bool = True) -> Path | None:
    """A file or folder of the asset pack, e.g. `datasets/caltech101` or `weights/imagenet_class_index.json`.

    Looks in the folder that `locate` finds (`$TLKIT_ASSETS`, else the cache) and never
    downloads: the full profile fetches a missing part with `dataset_path` instead.

    Args:
        relative: the path inside the pack, `/`-separated: `datasets/<name>`, `embeddings/...`,
            `weights/...`.
        required: when there is no pack, or it lacks `relative`, raise `AssetsError`; with
            `False`, return `None`.

    Returns:
        The path (absolute; it exists), or `None` when it is missing and `required=False`.

    Raises:
        AssetsError: there is no assets folder, it lacks `relative` (with `required=True`), or
            `$TLKIT_ASSETS` is set to something that is not a folder. The message names the
            path looked for, the folder looked in and the fix.
        ValueError: `relative` is empty, absolute or leads out of the pack (`..`).

    Example:

    ```python
    folder = tlkit.assets.locate_part("datasets/caltech101")  # <assets>/datasets/caltech101
    ```
    """
    rel = Path(relative)
    if not rel.parts or rel.is_absolute() or ".." in rel.parts:
        raise ValueError(
            f"Invalid value for argument `relative`. Received: relative={str(relative)!r}. Expected a path "
            "inside the asset pack, e.g. 'datasets/caltech101' or 'embeddings/glove.6B.50d.top20k.txt.gz'."
        )
    root = locate(required=False)
    if root is None:
        if required:
            raise AssetsError(no_assets_message(rel.as_posix()))
        return None
    path = root / rel
    if path.exists():
        return path
    if not required:
        return None
    name = rel.parts[1] if rel.parts[0] == "datasets" and len(rel.parts) > 1 else rel.parts[0]
    only = f" --only {name}" if name in SOURCES else ""
    origin = f"${ASSETS_ENV}" if os.environ.get(ASSETS_ENV) else "the cache"
    raise AssetsError(
        f"{rel.as_posix()} is missing from the asset pack. Received: the pack {root} ({origin}), where {path} "
        f"does not exist. Expected a folder laid out like the pack, holding {rel.as_posix()}. Complete the pack with "
        f"`{FETCH_COMMAND}{only}` (it fills {root}; it needs the internet), or point {ASSETS_ENV} at a copy of "
        "the pack that holds it."
    )


def missing(folder: str | os.PathLike, only: Iterable[str] | None = None, manifest=None) -> list[Entry]:
    """The manifest entries absent from `folder` (or of the wrong size): a quick check, no hashing."""
    folder = Path(folder)
    entries = [e for e in read_manifest(manifest) if only is None or e.part in set(only)]
    absent = []
    for entry in entries:
        if entry.check == "optional":
            continue
        try:
            size = os.stat(folder / entry.path).st_size
        except OSError:
            size = -1
        if size < 0 or (entry.check == "sha256" and size != entry.size):
            absent.append(entry)
    return absent


def dataset_path(name: str, download: bool = True) -> Path:
    """The folder of one part of the pack (e.g. `"caltech101"`), fetched into the cache if absent.

    The full profile's loaders call this for the datasets the pack holds, so they read the same
    files, from the same sources, as the offline profile.

    Args:
        name: a part of the pack: `caltech101`, `fashion-mnist` (or `fashion_mnist`), `eurosat`, ...
        download: fetch the part when it is missing; otherwise raise `AssetsError`.

    Returns:
        The part's folder, e.g. `<assets>/datasets/caltech101`.

    Raises:
        AssetsError: the part is incomplete in the folder `locate` finds and `download=False`,
            `$TLKIT_ASSETS` is not a folder, or fetching fails; or `name` is not a part of the pack.
    """
    name = _check_names([name.replace("_", "-")])[0]
    entries = [e for e in read_manifest() if e.part == name]
    root = entries[0].path.split("/")[0]
    folder = Path(root) / name if root == "datasets" else Path(root)
    here = locate(required=False)
    absent = None if here is None else missing(here, [name])
    if here is not None and not absent:
        return here / folder
    if not download:
        if here is None:
            raise AssetsError(no_assets_message(f"the {name} files"))
        raise AssetsError(
            f"The asset pack in {here} lacks some of the {name} files. Received: {len(absent)} of {len(entries)} "
            f"missing or incomplete (e.g. {absent[0].path}). Expected all of them. Complete it with "
            f"`{FETCH_COMMAND} --dest {here} --only {name}` on a machine with internet, or point {ASSETS_ENV} "
            "at a complete copy."
        )
    return fetch(only=[name]) / folder


def no_assets_message(what: str = "its offline assets", reason: str = "") -> str:
    """One paragraph: there is no assets folder, where tlkit looked, and the two ways on.

    Args:
        what: what was looked for, e.g. `"datasets/caltech101"` or `"the caltech101 files"`.
        reason: a sentence added after where tlkit looked (e.g. why fetching failed).

    Returns:
        The paragraph, in the Received/Expected style of tlkit's errors.
    """
    reason = f" {reason.strip().rstrip('.')}." if reason else ""
    return (
        f"tlkit looked for {what} and found no asset pack (ImageNet weights, Caltech-101, Fashion-MNIST, EuroSAT, "
        f"GloVe vectors; about 260 MB). Received: ${ASSETS_ENV}, which is not set, and the cache {cache_dir()}, "
        f"which is empty.{reason} Expected a folder laid out like the pack (weights/, datasets/, embeddings/). "
        f"Two ways on: fetch it once on a machine with internet (`{FETCH_COMMAND}` or `make assets`; with "
        f"`--dest DIR` to copy the folder here from elsewhere), or point ${ASSETS_ENV} at a copy "
        f"(`export {ASSETS_ENV}=/path/to/assets`). A classroom mirror works too: `{MIRROR_ENV}=http://host/assets/`."
    )


# ---------------------------------------------------------------------------- checking


def file_digest(path: str | os.PathLike, check: str = "sha256") -> str:
    """The SHA-256 of a file, or of its decompressed content when `check == "gunzip"`."""
    digest = hashlib.sha256()
    opener = gzip.open if check == "gunzip" else open  # "sha256" and "optional" hash the file
    try:
        with opener(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except (OSError, EOFError, gzip.BadGzipFile):
        return "unreadable"
    return digest.hexdigest()


def verify(
    folder: str | os.PathLike, only: Iterable[str] | None = None, manifest=None, optional: bool = False
) -> list[Entry]:
    """Hashes every manifest file in `folder`; returns the entries missing or not matching.

    An absent optional file counts only with `optional=True`.
    """
    folder = Path(folder)
    entries = [e for e in read_manifest(manifest) if only is None or e.part in set(only)]
    if not optional:
        entries = [e for e in entries if e.check != "optional" or (folder / e.path).exists()]
    with ThreadPoolExecutor(4) as pool:
        ok = pool.map(
            lambda e: (folder / e.path).is_file() and file_digest(folder / e.path, e.check) == e.sha256, entries
        )
        return [e for e, good in zip(entries, ok) if not good]


def _accept(part: Path, entry: Entry, final: Path, origin: str) -> None:
    """Moves a downloaded `.part` file into place if its hash matches; otherwise deletes it and raises."""
    got = file_digest(part, entry.check)
    if got != entry.sha256:
        part.unlink(missing_ok=True)
        what = "decompressed content" if entry.check == "gunzip" else "file"
        raise AssetsError(
            f"Refused {entry.path}: its {what} has sha256 {got}, the manifest expects {entry.sha256} "
            f"(from {origin}). The file was not kept; the source may have changed or the transfer was damaged."
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, final)


# ---------------------------------------------------------------------------- downloading


class Progress:
    """A one-line progress bar on stderr (a line per file when stderr is not a terminal)."""

    def __init__(self, label: str, total: int | None, enabled: bool = True):
        self.label, self.total, self.done = label, total, 0
        self.enabled, self.tty = enabled, sys.stderr.isatty()
        self._last = 0.0
        self._lock = threading.Lock()

    def update(self, amount: int) -> None:
        with self._lock:
            self.done += amount
            if self.enabled and self.tty and time.monotonic() - self._last > 0.2:
                self._last = time.monotonic()
                self._draw()

    def _draw(self, end: str = "") -> None:
        mb = f"{self.done / 1e6:7.1f}" + (f"/{self.total / 1e6:.1f} MB" if self.total else " MB")
        if self.total:
            filled = int(30 * min(self.done / self.total, 1))
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {100 * self.done / self.total:3.0f}%"
        else:
            bar = ""
        sys.stderr.write(f"\r  {self.label[:38]:38s} {bar} {mb}{end}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            if self.tty:
                self._draw("\n")
            else:
                sys.stderr.write(f"  {self.label}: {self.done / 1e6:.1f} MB\n")


def download(
    url: str,
    part: Path,
    progress: Progress | None = None,
    retries: int = 2,
    timeout: float = 10.0,
) -> None:
    """Downloads `url` into `part`, resuming from the bytes already there (HTTP Range).

    A transfer that breaks off is resumed up to `retries` times; after that the `.part` file
    stays, and running the same command again resumes it. A server that cannot be reached fails
    at once.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    last: BaseException | None = None
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        counted = 0  # what this attempt added to `progress`, taken back if it fails
        headers = {"User-Agent": "tlkit-assets/1", **({"Range": f"bytes={have}-"} if have else {})}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
                if have and response.status != 206:  # the server ignored the Range: start again
                    have = 0
                length = response.headers.get("Content-Length")
                total = have + int(length) if length else None
                if progress is not None and progress.total is None and total:
                    progress.total = total
                with open(part, "ab" if have else "wb") as out:
                    counted = have
                    if progress is not None:
                        progress.update(have)
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        counted += len(chunk)
                        if progress is not None:
                            progress.update(len(chunk))
                if total is not None and part.stat().st_size < total:
                    raise ConnectionError(f"the connection closed after {part.stat().st_size} of {total} bytes")
            return
        except urllib.error.HTTPError as error:
            if error.code == 416 and have:  # nothing left to send: the .part file is complete
                return
            raise AssetsError(f"Downloading {url} failed: HTTP {error.code} {error.reason}.") from None
        except urllib.error.URLError as error:  # before any byte came: refused, no route, no DNS, timeout
            raise AssetsError(f"Cannot reach {urllib.parse.urlsplit(url).netloc} for {url}: {error.reason}.") from None
        except (OSError, http.client.HTTPException, ValueError) as error:  # the transfer broke off
            last = error
            if progress is not None:
                progress.update(-counted)
            time.sleep(min(0.5 * 2**attempt, 2.0))
    size = part.stat().st_size if part.exists() else 0
    raise AssetsError(
        f"Downloading {url} was interrupted ({last}). {part} keeps the {size:,} bytes received: "
        "run the same command again to resume."
    )


def _fetch_file(url: str, entry: Entry, dest: Path, progress: Progress | None, retries: int) -> None:
    final = dest / entry.path
    part = final.with_name(final.name + ".part")
    download(url, part, progress, retries)
    _accept(part, entry, final, url)


def _fetch_from_mirror(mirror: str, entries: list[Entry], dest: Path, show: bool, retries: int) -> None:
    """Fetches each file from `<mirror>/<pack-relative path>`, 8 at a time."""
    prefix = mirror.rstrip("/") + "/"
    total = sum(e.size for e in entries)
    bar = Progress(f"{entries[0].part} ({len(entries)} files)", total, show)
    try:
        with ThreadPoolExecutor(8) as pool:
            jobs = [
                pool.submit(_fetch_file, prefix + urllib.parse.quote(e.path), e, dest, bar, retries) for e in entries
            ]
            errors = [job.exception() for job in jobs if job.exception() is not None]
    finally:
        bar.close()
    if errors:
        refused = [e for e in errors if str(e).startswith("Refused")]
        first = (refused or errors)[0]
        more = f" ({len(errors) - 1} other file(s) failed too.)" if len(errors) > 1 else ""
        raise first if not more else AssetsError(f"{first}{more}")


def _fetch_from_sources(name: str, entries: list[Entry], dest: Path, show: bool, retries: int, keep: bool) -> None:
    wanted = {e.path: e for e in entries}
    for source in SOURCES[name]:
        todo = {p: e for p, e in wanted.items() if p == source.target or p.startswith(source.target + "/")}
        if not todo:
            continue
        if source.kind == "file":
            bar = Progress(source.target.rsplit("/", 1)[-1], None, show)
            try:
                _fetch_file(source.url, todo[source.target], dest, bar, retries)
            finally:
                bar.close()
            continue
        archive = _download_archive(source, dest, show, retries)
        if source.kind == "glove":
            entry = todo[source.target]
            part = dest / (entry.path + ".part")
            part.parent.mkdir(parents=True, exist_ok=True)
            derive_glove_subset(archive, part)
            _accept(part, entry, dest / entry.path, f"{source.url}, derived")
        else:
            _extract(source, archive, todo, dest)
        if not keep:
            archive.unlink()


def _download_archive(source: Source, dest: Path, show: bool, retries: int) -> Path:
    name = urllib.parse.urlsplit(source.url).path.rsplit("/", 1)[-1]
    archive = dest / ".downloads" / name
    if not archive.is_file():
        part = archive.with_name(name + ".part")
        bar = Progress(name, None, show)
        try:
            download(source.url, part, bar, retries)
        finally:
            bar.close()
        if source.sha256 and file_digest(part) != source.sha256:
            part.unlink()
            raise AssetsError(
                f"Refused {name} from {source.url}: its sha256 is not the published {source.sha256}. "
                "The file was not kept; the source may have changed or the transfer was damaged."
            )
        os.replace(part, archive)
    return archive


def _members(source: Source, archive: Path) -> Iterator[tuple[str, io.BufferedIOBase]]:
    """Yields (name, readable file) for every regular file of the archive (or of `source.inner`)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            if source.inner:
                with z.open(source.inner) as inner, tarfile.open(fileobj=inner, mode="r|*") as tar:
                    yield from _tar_members(tar)
                return
            for info in z.infolist():
                if not info.is_dir():
                    with z.open(info) as f:
                        yield info.filename, f
    else:
        with tarfile.open(archive, mode="r|*") as tar:
            yield from _tar_members(tar)


def _tar_members(tar: tarfile.TarFile) -> Iterator[tuple[str, io.BufferedIOBase]]:
    for member in tar:
        if member.isfile():
            yield member.name, tar.extractfile(member)


def _extract(source: Source, archive: Path, todo: dict[str, Entry], dest: Path) -> None:
    """Copies the archive members the manifest lists into place, each checked; skips the rest."""
    found, refused = set(), []
    for name, f in _members(source, archive):
        segments = name.replace("\\", "/").split("/")
        if "__MACOSX" in segments:
            continue
        rel = f"{source.target}/{'/'.join(segments[-source.keep :])}"
        entry = todo.get(rel)
        if entry is None or rel in found:
            continue
        final = dest / rel
        part = final.with_name(final.name + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as out:
            shutil.copyfileobj(f, out, CHUNK)
        try:
            _accept(part, entry, final, f"{source.url} member {name}")
            found.add(rel)
        except AssetsError as error:
            refused.append(str(error))
    absent = sorted(set(todo) - found)
    if refused:
        more = f" ({len(refused) - 1} more refused.)" if len(refused) > 1 else ""
        raise AssetsError(refused[0] + more)
    if absent:
        raise AssetsError(
            f"{source.url} lacks {len(absent)} file(s) the manifest lists, e.g. {', '.join(absent[:3])}. "
            "Its layout may have changed; a mirror of the pack avoids the problem."
        )


def derive_glove_subset(archive: str | os.PathLike, out: str | os.PathLike, words: int | None = None) -> None:
    """Writes the first `words` lines of `glove.6B.50d.txt` (in glove.6B.zip) as a gzipped text file.

    The official file is ranked by word frequency, so its first lines are the commonest words.
    Each line is rewritten as `word v1 ... v50` with every value formatted `'%.5g'` (the official
    file's own 5 significant digits, so the values are unchanged), and gzipped with no file name
    and mtime 0. The manifest checks the decompressed text, which does not depend on the zlib
    version. `words` defaults to `GLOVE_WORDS` (20,000).
    """
    words = words or GLOVE_WORDS
    with zipfile.ZipFile(archive) as z, z.open(GLOVE_MEMBER) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="\n")
        with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as g:
            for _, line in zip(range(words), text):
                word, *values = line.rstrip("\n").split(" ")
                g.write((word + " " + " ".join(f"{float(v):.5g}" for v in values) + "\n").encode("utf-8"))


# ---------------------------------------------------------------------------- fetching


def _check_names(names: Iterable[str], manifest=None) -> list[str]:
    known = parts(read_manifest(manifest))
    names = list(names)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise AssetsError(
            f"Invalid value for argument `only`. Received: only={unknown}. Expected names from: {', '.join(known)}."
        )
    return names


def fetch(
    dest: str | os.PathLike | None = None,
    only: Iterable[str] | None = None,
    mirror: str | None = None,
    manifest: str | os.PathLike | None = None,
    progress: bool = True,
    retries: int = 2,
    keep_archives: bool = False,
) -> Path:
    """Builds (or completes) the asset pack in `dest`, checking every file against the manifest.

    Files already present and matching are kept, so an interrupted fetch resumes where it stopped
    (partial downloads are `.part` files, continued with HTTP Range requests).

    Args:
        dest: the pack folder; default `default_dest()` (`$TLKIT_ASSETS`, else the cache).
        only: the parts to fetch (`weights`, `caltech101`, ...); default all.
        mirror: a URL prefix serving the pack's relative paths; default `$TLKIT_ASSETS_MIRROR`,
            and when neither is set, the public sources in `SOURCES`.
        manifest: another manifest file (the tests use a tiny one); default tlkit's.
        progress: show a progress bar on stderr.
        retries: how often a broken transfer is resumed before giving up.
        keep_archives: keep the downloaded archives in `dest/.downloads`.

    Returns:
        The pack folder.

    Raises:
        AssetsError: a source is unreachable, a transfer broke off, or a file's hash is wrong
            (the message names the file).
    """
    dest = Path(dest).expanduser() if dest else default_dest()
    entries = read_manifest(manifest)
    names = _check_names(only, manifest) if only else parts(entries)
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        wanted = [e for e in entries if e.part == name]
        todo = verify(dest, [name], manifest, optional=bool(mirror))
        if progress:
            state = "complete" if not todo else f"{len(todo)} of {len(wanted)} file(s) to fetch"
            print(f"{name}: {state}" + (f" from {mirror or 'its public source'}" if todo else ""), file=sys.stderr)
        if todo:
            if mirror:
                _fetch_from_mirror(mirror, todo, dest, progress, retries)
            else:
                _fetch_from_sources(name, todo, dest, progress, retries, keep_archives)
        _write_sums(dest, wanted)
    return dest


def _write_sums(dest: Path, entries: list[Entry]) -> None:
    """Writes SHA256SUMS in the part's folder (of the files present), so `sha256sum -c` works there."""
    root = entries[0].path.split("/")[0]
    base = f"{root}/{entries[0].part}" if root == "datasets" else root
    lines = [f"{file_digest(dest / e.path)}  {e.path[len(base) + 1 :]}\n" for e in entries if (dest / e.path).is_file()]
    if lines:
        (dest / base / "SHA256SUMS").write_text("".join(lines))


def ensure(candidates: Iterable[str | os.PathLike] = (), manifest=None, download: bool = True) -> Path:
    """The folder to run with: `$TLKIT_ASSETS` (never downloads), else the first complete candidate
    or cache, else a fresh fetch into the cache (`download=True`).

    Args:
        candidates: folders to try after `$TLKIT_ASSETS`, before the cache.
        manifest: another manifest file (the tests use a tiny one); default tlkit's.
        download: fetch into the cache when no folder is complete.

    Returns:
        A complete pack folder (absolute).

    Raises:
        AssetsError: one paragraph: `$TLKIT_ASSETS` is not a folder or is incomplete, or no
            folder is complete and fetching is not allowed or fails.
    """
    if os.environ.get(ASSETS_ENV):
        folder = locate()  # raises AssetsError if $TLKIT_ASSETS is not a folder
        absent = missing(folder, manifest=manifest)
        if absent:
            raise AssetsError(
                f"${ASSETS_ENV} points to {folder}, which lacks {len(absent)} of the pack's files (e.g. "
                f"{absent[0].path}); tlkit does not download into a folder named by ${ASSETS_ENV} unasked. Complete "
                f"it with `{FETCH_COMMAND} --dest {folder}` on a machine with internet, or point ${ASSETS_ENV} at a "
                "complete copy, or unset it to use the cache."
            )
        return folder
    for candidate in [*candidates, cache_dir()]:
        folder = Path(candidate).expanduser()
        if folder.is_dir() and not missing(folder, manifest=manifest):
            return folder.resolve()
    if not download:
        raise AssetsError(no_assets_message())
    mirror = os.environ.get(MIRROR_ENV)
    probe = mirror or SOURCES["weights"][0].url
    looked = "".join(f" There is no copy in {Path(c)} either." for c in candidates)
    if not network_available(url=probe):
        host = urllib.parse.urlsplit(probe).netloc
        why = f"${NO_NETWORK_ENV} is set" if refused() else "no network?"
        reason = f"{looked} Fetching them failed: {host} cannot be reached ({why})"
        raise AssetsError(no_assets_message(reason=reason))
    size = f"from the mirror {mirror}" if mirror else "about 1.1 GB to download"
    print(f"Fetching the assets into {cache_dir()} (once; {size}) ...", file=sys.stderr)
    try:
        return fetch(cache_dir(), mirror=mirror, manifest=manifest).resolve()
    except AssetsError as error:
        raise AssetsError(no_assets_message(reason=f"{looked} Fetching them failed: {error}")) from None


# ---------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tlkit.assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("fetch", help="fetch the pack (or the parts named by --only), checking every file")
    get.add_argument("--dest", help=f"pack folder (default: ${ASSETS_ENV}, else {cache_dir()})")
    get.add_argument("--only", nargs="+", metavar="NAME", help="parts: " + ", ".join(SOURCES))
    get.add_argument("--mirror", help=f"URL prefix serving the pack (default: ${MIRROR_ENV})")
    get.add_argument("--keep-archives", action="store_true", help="keep the downloaded archives in DEST/.downloads")
    check = commands.add_parser("verify", help="hash every file of a pack against the manifest")
    check.add_argument("--dest", help="pack folder (default: as for fetch)")
    commands.add_parser("locate", help="print the folder the lessons read ($TLKIT_ASSETS, else the cache)")
    ready = commands.add_parser("ensure", help="print a complete pack folder, fetching into the cache if none")
    ready.add_argument("candidates", nargs="*", help="folders to try after $TLKIT_ASSETS, before the cache")
    ready.add_argument("--no-download", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            folder = fetch(args.dest, args.only, args.mirror, keep_archives=args.keep_archives)
            print(f"Assets ready in {folder}. Use them with: export {ASSETS_ENV}={folder}", file=sys.stderr)
        elif args.command == "verify":
            folder = Path(args.dest).expanduser() if args.dest else default_dest()
            bad = verify(folder)
            for entry in bad[:20]:
                print(f"{entry.path}: missing or wrong hash", file=sys.stderr)
            print(f"{folder}: {len(read_manifest()) - len(bad)} file(s) match, {len(bad)} do not", file=sys.stderr)
            return 1 if bad else 0
        elif args.command == "locate":
            print(locate())
        else:
            print(ensure(args.candidates, download=not args.no_download))
    except AssetsError as error:
        hint = ""
        if args.command == "fetch" and str(error).startswith("Cannot reach"):
            hint = (
                f" Fetch on a machine with internet and copy the folder here, or fetch from a copy served "
                f"elsewhere: {MIRROR_ENV}=http://host:8000/ (see data/README.md)."
            )
        print(f"\n{error}{hint}\n", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
