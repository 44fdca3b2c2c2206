"""Executes one lesson notebook end to end and saves the executed copy and its figures.

    python scripts/run_lesson.py notebooks/00_why_transfer_works.ipynb --out outputs
    python scripts/run_lesson.py notebooks/00_why_transfer_works.ipynb --check   # only the checks below

The profile comes from TLKIT_PROFILE. When that is unset: `offline` if TLKIT_ASSETS is set;
otherwise `full` (GPU, downloads) if the internet can be reached (with TLKIT_ASSETS_MIRROR set,
the asset pack's parts come from that mirror), else `offline` with the asset cache
(`python -m tlkit.assets locate`): completed from the mirror first when TLKIT_ASSETS_MIRROR is
set, which one line says. Before anything is installed or run, `--check` says in one paragraph
what is missing when neither the assets nor the internet (nor a mirror) are there; it uses the
standard library only (`make lesson` runs it first, so it is also where a mirror's pack is fetched).
TLKIT_NO_NETWORK=1 refuses every download, a mirror's included.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOWNLOAD_URL = "https://storage.googleapis.com/"  # where the full profile's ImageNet weights come from
sys.path.insert(0, str(REPO))  # this checkout's tlkit: `import tlkit` and these two need the standard library only

from tlkit import assets, network  # noqa: E402


def choose_profile(notebook: Path) -> tuple[str, Path | None]:
    """The profile and assets folder to run `notebook` with; exits with one paragraph if there are none."""
    lesson = notebook.stem
    try:
        folder = assets.locate(required=False)
    except assets.AssetsError as error:
        sys.exit(f"\nCannot run {lesson}: {error}\n")
    mirror = os.environ.get(assets.MIRROR_ENV)
    own = bool(os.environ.get(assets.ASSETS_ENV))  # a folder named by TLKIT_ASSETS is never downloaded into
    incomplete = folder is None or bool(assets.missing(folder))
    profile = os.environ.get("TLKIT_PROFILE")
    if not profile:
        if own:
            profile = "offline"
        elif network.network_available(url=DOWNLOAD_URL):
            profile = "full"
            if mirror:
                print(f"Running {lesson} with the full profile; the asset pack's parts come from the mirror {mirror}.")
        elif mirror and incomplete:
            profile, folder = "offline", _fetch_from_mirror(lesson, mirror, "No internet")
        elif folder is not None:
            print(f"No internet: running {lesson} with the offline profile and the assets in {folder}.")
            profile = "offline"
        else:
            sys.exit(
                f"\nCannot run {lesson}: it needs the internet (the full profile downloads ImageNet weights and "
                f"data) or the offline assets, and has neither: storage.googleapis.com cannot be reached, "
                f"${assets.ASSETS_ENV} is not set and the cache {assets.cache_dir()} is empty. Two ways on: fetch "
                f"the assets once on a machine with internet (`make assets`, about 1.1 GB to download, 260 MB "
                f"kept) and copy {assets.cache_dir()} here, or point {assets.ASSETS_ENV} at a copy "
                f"(`{assets.ASSETS_ENV}=/path/to/assets make lesson`). A classroom mirror works too: "
                f"`{assets.MIRROR_ENV}=http://host:8000/ make lesson`.\n"
            )
    elif profile == "offline" and mirror and incomplete and not own:
        folder = _fetch_from_mirror(lesson, mirror, "The offline profile")
    if profile == "offline":
        if folder is None:
            sys.exit(f"\nCannot run {lesson} offline: {assets.no_assets_message()}\n")
        absent = assets.missing(folder)
        if absent:
            sys.exit(
                f"\nCannot run {lesson} offline: {folder} lacks {len(absent)} of the asset files (e.g. "
                f"{absent[0].path}). Complete it with `make assets DEST={folder}` on a machine with internet, "
                f"or point {assets.ASSETS_ENV} at a complete copy.\n"
            )
    return profile, folder


def _fetch_from_mirror(lesson: str, mirror: str, why: str) -> Path:
    """Completes the asset cache from `mirror` (`tlkit.assets.ensure`); one line says so. Exits if it cannot."""
    print(f"{why}: fetching the asset pack from the mirror {mirror} into {assets.cache_dir()}, then running "
          f"{lesson} with the offline profile.", flush=True)  # fmt: skip
    try:
        return assets.ensure()
    except assets.AssetsError as error:
        sys.exit(f"\nCannot run {lesson}: {error}\n")


def run(notebook_path: Path, out: Path, timeout: int) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    print(f"Running {notebook_path} with the {os.environ['TLKIT_PROFILE']} profile ...", flush=True)
    notebook = nbformat.read(notebook_path, as_version=4)
    start = time.perf_counter()
    resources = {"metadata": {"path": str(notebook_path.parent)}}
    failure = None
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources=resources).execute()
    except CellExecutionError as error:
        failure = error
    elapsed = time.perf_counter() - start

    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    executed = out / notebook_path.name
    nbformat.write(notebook, executed)
    if failure is not None:
        last = f"{failure.ename}: {failure.evalue}".strip()
        print(f"\n{notebook_path.name} stopped after {elapsed:.0f} s with {last}\nThe executed notebook, with the full "
              f"traceback, is {executed}.\n", file=sys.stderr)  # fmt: skip
        return 1
    saved = 0
    for number, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                saved += 1
                name = f"{notebook_path.stem}_cell{number:02d}_{saved:02d}.png"
                (figures / name).write_bytes(base64.b64decode(png))
    print(f"Done in {elapsed:.0f} s: executed notebook {executed}, {saved} figure(s) in {figures}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument(
        "--out", type=Path, default=Path("outputs"), help="folder for the executed notebook and figures"
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("--check", action="store_true", help="only check that the lesson can run (no install needed)")
    args = parser.parse_args(argv)
    if not args.notebook.is_file():  # "03" or "03_large_similar_fine_tune_top" name a lesson too
        lessons = sorted((REPO / "notebooks").glob("*.ipynb"))
        found = [p for p in lessons if p.name.startswith(args.notebook.name)]
        if len(found) != 1:
            names = ", ".join(p.name for p in lessons)
            sys.exit(
                f"No lesson {str(args.notebook)!r}. Pass a notebook, e.g. LESSON=notebooks/{lessons[0].name}; "
                f"the lessons: {names}."
            )
        args.notebook = found[0]
    profile, folder = choose_profile(args.notebook)
    if args.check:
        return 0
    os.environ["TLKIT_PROFILE"] = profile
    if profile == "offline" and folder is not None:  # the kernel runs in notebooks/: the path must be absolute
        os.environ["TLKIT_ASSETS"] = str(folder)  # (the full profile finds the cache itself, and completes it)
    return run(args.notebook, args.out, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
