"""Writes tlkit/assets.tsv.gz, tlkit's manifest of the asset pack, from a verified copy's SHA256SUMS files.

    python scripts/make_manifest.py ../shared/data            # rewrites tlkit/assets.tsv.gz
    python scripts/make_manifest.py ../shared/data --check    # exits 1 if tlkit/assets.tsv.gz differs

Each folder of the copy holding a SHA256SUMS file is one part of the pack. Every line of those
files becomes a manifest line `sha256<TAB>size<TAB>path<TAB>check`, after checking that the
file is there with that hash. `check` says what the hash covers:
- `sha256`: the file itself;
- `gunzip`: the decompressed content of a `.gz` file (the same data compressed by another
  publisher or zlib version has other bytes: Fashion-MNIST's upstream files and the Debian
  package's, or the derived GloVe file made on another machine);
- `optional`: notes kept beside the verified copy that no public source publishes
  (`OPTIONAL` below): a mirror of the pack serves them, the lessons do not need them.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OPTIONAL = {"embeddings/LICENSE-GloVe-PDDL-1.0.txt", "embeddings/make_glove_subset.py"}
HEADER = """\
# tlkit asset manifest, written by scripts/make_manifest.py from a verified copy's SHA256SUMS files.
# sha256<TAB>bytes<TAB>pack-relative path<TAB>check (sha256: of the file; gunzip: of its
# decompressed content; optional: of a file no public source publishes, not required).
"""


def digest(path: Path, unzip: bool = False) -> str:
    sha = hashlib.sha256()
    with (gzip.open if unzip else open)(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def manifest_lines(root: Path) -> list[str]:
    lines = []
    for sums in sorted(root.rglob("SHA256SUMS")):
        folder = sums.parent
        for line in sums.read_text().splitlines():
            sha256, name = line.split(maxsplit=1)
            name = name.lstrip("*").removeprefix("./")
            path = folder / name
            rel = path.relative_to(root).as_posix()
            if digest(path) != sha256:
                sys.exit(f"{path}: its sha256 differs from {sums}; fix the copy first.")
            check = "optional" if rel in OPTIONAL else "gunzip" if name.endswith(".gz") else "sha256"
            value = digest(path, unzip=True) if check == "gunzip" else sha256
            lines.append(f"{value}\t{path.stat().st_size}\t{rel}\t{check}\n")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("copy", type=Path, help="a verified copy of the pack (e.g. ../shared/data)")
    parser.add_argument("--out", type=Path, default=REPO / "tlkit" / "assets.tsv.gz")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = parser.parse_args()
    text = HEADER + "".join(manifest_lines(args.copy.resolve()))
    if args.check:
        same = args.out.is_file() and gzip.decompress(args.out.read_bytes()).decode("utf-8") == text
        print(f"{args.out}: {'up to date' if same else 'differs from ' + str(args.copy)}")
        return 0 if same else 1
    args.out.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))  # the same text, the same bytes
    print(f"wrote {args.out}: {text.count(chr(10)) - HEADER.count(chr(10))} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
