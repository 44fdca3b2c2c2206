"""Writes the project's repository URL into the Colab badges and install cells.

The URL is defined once, as `Repository` under `[project.urls]` in pyproject.toml. The README's
"lives at <url>" and badges, each notebook's badge (`colab.research.google.com/github/<owner>/<name>/blob/<branch>/...`)
and each notebook's install cell (`TLKIT = "git+<repository>"`, then `pip install TLKIT`: the
URL on a line of its own keeps the cell within a notebook's 88 columns) are written from it.

    python scripts/set_repository.py                       # rewrite README.md and notebooks/*.ipynb
    python scripts/set_repository.py --check               # exit 1 if any of them disagrees
    python scripts/set_repository.py --url https://github.com/me/tlkit --branch main   # a fork

Only the badge and install lines change; the files are edited as text, so every other byte of
a notebook stays as it was.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BRANCH = "main"  # the branch the Colab badges open
URL_LINE = re.compile(r'^(Repository\s*=\s*")([^"]+)(")', re.MULTILINE)
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w./-]+?/notebooks/")
HOME = re.compile(r"(?<=lives at )https://github\.com/[\w.-]+/[\w.-]+?(?=[;,\s)]|\.(?:\s|$))")  # README
INSTALL = re.compile(r"git\+https://github\.com/[\w.-]+/[\w.-]+?(?=[\"'\\\s@#]|\.git)(\.git)?")


def repository(root: Path = REPO) -> str:
    """The `Repository` URL of `[project.urls]` in pyproject.toml."""
    match = URL_LINE.search((root / "pyproject.toml").read_text())
    if not match:
        sys.exit('pyproject.toml has no `Repository = "..."` line under [project.urls].')
    return match.group(2).rstrip("/")


def files(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "notebooks").glob("*.ipynb"))]


def rewrite(text: str, url: str, branch: str = BRANCH) -> str:
    """`text` with every Colab badge and install URL pointing at `url` (a GitHub repository)."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(\.git)?", url)
    if not match:
        sys.exit(f"Invalid repository URL {url!r}. Expected https://github.com/<owner>/<name> (Colab opens GitHub).")
    owner, name = match.group(1), match.group(2)
    text = BADGE.sub(f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/notebooks/", text)
    text = HOME.sub(f"https://github.com/{owner}/{name}", text)
    return INSTALL.sub(f"git+https://github.com/{owner}/{name}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a new repository URL: written into pyproject.toml first")
    parser.add_argument("--branch", default=BRANCH, help=f"the branch the badges open (default {BRANCH})")
    parser.add_argument("--check", action="store_true", help="report files that disagree, change nothing")
    parser.add_argument("--root", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.url:
        pyproject = args.root / "pyproject.toml"
        rewrite("", args.url)  # validates the URL
        pyproject.write_text(
            URL_LINE.sub(lambda m: m.group(1) + args.url.rstrip("/") + m.group(3), pyproject.read_text())
        )
    url = repository(args.root)
    stale = []
    for path in files(args.root):
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, url, args.branch)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    verb = "disagree with" if args.check else "rewritten for"
    print(f"{len(stale)} file(s) {verb} {url}" + "".join(f"\n  {p.relative_to(args.root)}" for p in stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
