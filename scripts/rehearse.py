"""Runs lessons and assignment solutions in the `full` profile on this machine, every download stood in for.

    python scripts/rehearse.py                      # every lesson and every assignment's solution (make rehearse)
    python scripts/rehearse.py notebooks/06_beyond_classification_detection.ipynb assignments/02_small_different.ipynb
    python scripts/rehearse.py --list               # what would run, with each notebook's overrides
    python scripts/rehearse.py notebooks --set SEED=1   # every lesson with one more override (repeatable)

The full profile is what Colab runs: a GPU, mixed precision, ImageNet weights and data downloaded. Here it
runs on the CPU with no internet, each download answered locally in the form its real source delivers it:

- the asset pack (Caltech-101, Fashion-MNIST, EuroSAT, GloVe, sentences) through `TLKIT_ASSETS_MIRROR`, from an
  HTTP server on 127.0.0.1 that this script starts and stops (`TLKIT_ASSETS` unset). Lesson 00, where a new
  user starts, runs in an empty cache of its own and fetches and hash-checks what it uses; every other
  notebook reads one cache that this script fills from the mirror first (hash-checked too), as a user's
  second lesson does. Every part's on-demand fetch is tested on its own (tests/test_assets.py);
  `--fresh-caches` gives every notebook an empty cache of its own instead (slower: each fetches again);
- Keras application weights (MobileNetV2's, and the classifiers with their top that lesson 00 asks for
  guesses) as files named as `keras.utils.get_file` caches them, in `$KERAS_HOME/models`: stand-ins with
  random weights, beside the real ImageNet class index, so a claim that needs ImageNet features is judged with
  `BACKBONE="mobilenet_0.25"` (see the overrides), whose real ImageNet file is in the pack (from the mirror);
- KerasHub presets as local folders written by `save_to_preset` (scripts/rehearsal_presets.py);
- mixed precision switched on as `tlkit.setup` does on a GPU (`TLKIT_GPU_SETTINGS=1`).

Sizes and epochs come down only through each notebook's parameters cell (papermill injects the overrides of
scripts/rehearsal_parameters.py after it), so every full-profile branch executes. Each notebook runs in its
own kernel with a fresh cache; any failing cell fails the run. It prints, per notebook, the cells run and
the seconds they took; the executed notebooks are written to `--out`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from rehearsal_parameters import PARAMETERS  # noqa: E402

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (REPO / "assignments").glob("[0-9][0-9]_*.ipynb")
)
# Backbones the full profile can download, written as random-weight stand-ins under Keras's cache names.
STAND_IN_SIZES = {"mobilenet_v2": (96, 128, 160, 192, 224)}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the signature http.server defines)
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serves `folder` on 127.0.0.1 (a free port) for as long as the block runs; yields its URL."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="asset-mirror", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def write_weight_stand_ins(models: Path, pack: Path) -> list[str]:
    """Fills `models` (a `$KERAS_HOME/models`) as Keras's downloads would; returns the file names.

    MobileNetV2's are random, saved in the legacy HDF5 layout Keras's own files use, so they load through
    the same code as a download. MobileNet alpha=0.25 is not written: its real ImageNet file comes from the
    pack, through the mirror, as a classroom's does.
    """
    import logging

    import keras

    logging.getLogger("absl").setLevel(logging.ERROR)  # Keras's note that .h5 is a legacy format: it is, on purpose
    models.mkdir(parents=True, exist_ok=True)
    written = []
    for size in STAND_IN_SIZES["mobilenet_v2"]:
        name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
        base = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=None)
        base.save(models / name)  # the legacy .h5 layout: what load_weights reads from Keras's own files
        written.append(name)
    # Lesson 00 asks a whole ImageNet classifier (its top included) for its guesses, and decodes them with
    # ImageNet's class index: the pack holds the real index; the classifiers are random stand-ins.
    with_top = {
        "mobilenet_2_5_224_tf.h5": lambda: keras.applications.MobileNet(alpha=0.25, weights=None),
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5": lambda: keras.applications.MobileNetV2(
            weights=None
        ),
    }
    for name, build in with_top.items():
        build().save(models / name)
        written.append(name)
    shutil.copyfile(pack / "weights" / "imagenet_class_index.json", models / "imagenet_class_index.json")
    return [*written, "imagenet_class_index.json"]


def pack_folder() -> Path:
    """The asset pack the mirror serves: `$TLKIT_ASSETS`, else ../shared/data, else the cache (complete)."""
    import tlkit.assets as assets

    return assets.ensure([REPO.parent / "shared" / "data"], download=False)


def overrides(notebook: Path, presets: Path, extra: dict | None = None) -> dict:
    """The notebook's overrides from scripts/rehearsal_parameters.py, then `extra` (`--set`) on top."""
    values = {**PARAMETERS.get(notebook.stem, {}), **(extra or {})}
    return {k: v.format(presets=presets) if isinstance(v, str) else v for k, v in values.items()}


def parse_setting(text: str) -> tuple[str, object]:
    """`NAME=VALUE` from the command line; VALUE is read as JSON (`3`, `[5, 20]`, `"x"`), else kept as text."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(
            f"Invalid value for --set. Received: {text!r}. Expected NAME=VALUE, e.g. SEED=1."
        )
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


FIRST_RUN = "00_why_transfer_works"  # where a new user starts: always an empty cache of its own


def fill_shared_cache(work: Path, mirror: str) -> Path:
    """Fetches the whole pack from `mirror` into the cache the notebooks share; returns its XDG_CACHE_HOME."""
    import tlkit.assets as assets

    shared = work / "cache" / "shared"
    assets.fetch(dest=shared / "tlkit" / "assets", mirror=mirror, progress=False)
    return shared


def rehearse_one(
    notebook: Path, work: Path, env: dict, presets: Path, out: Path, timeout: int, extra: dict, shared=None
) -> dict:
    """Executes `notebook` with papermill in a kernel of its own.

    Its asset cache is a fresh, empty one when `shared` is None or the notebook is lesson 00; otherwise
    the shared cache that `shared` (a future) fills, once it is full.
    """
    if shared is None or notebook.stem == FIRST_RUN:
        cache = work / "cache" / notebook.stem
        cache.mkdir(parents=True)
    else:
        cache = shared.result()  # raises here if the fetch failed
    env = {**env, "XDG_CACHE_HOME": str(cache)}
    executed = out / notebook.parent.name / notebook.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "papermill", str(notebook), str(executed),
        "--cwd", str(notebook.parent), "--kernel", "python3", "--no-progress-bar",
        "--execution-timeout", str(timeout),
        "--parameters_yaml", json.dumps(overrides(notebook, presets, extra)),
    ]  # fmt: skip
    start = time.perf_counter()
    for _ in range(2):  # a kernel that dies before its first cell (start-up, on a busy machine) gets one retry
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode == 0 or "before replying to kernel_info" not in done.stderr:
            break
    seconds = time.perf_counter() - start
    cells, failed = 0, None
    if executed.is_file():
        for cell in json.loads(executed.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            meta = cell.get("metadata", {}).get("papermill", {})
            if meta.get("status") in ("completed", "failed"):
                cells += 1
            if meta.get("status") == "failed":
                errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                failed = f"{errors[0]['ename']}: {errors[0]['evalue']}"[:400] if errors else "failed"
    if done.returncode != 0 and failed is None:
        failed = (done.stderr.strip().splitlines() or ["papermill failed"])[-1][:400]
    return {"notebook": notebook, "cells": cells, "seconds": seconds, "failed": failed, "executed": executed}


def select(names: list[str]) -> list[Path]:
    if not names:
        return NOTEBOOKS
    chosen = []
    for name in names:
        path = (REPO / name).resolve() if not Path(name).is_absolute() else Path(name)
        if path.is_dir():  # notebooks/ or assignments/: all of them
            chosen.extend(p for p in NOTEBOOKS if p.parent == path)
            continue
        found = [path] if path.is_file() else [p for p in NOTEBOOKS if p.name.startswith(Path(name).name)]
        if len(found) != 1:
            sys.exit(f"No single notebook matches {name!r}. Notebooks: {', '.join(p.name for p in NOTEBOOKS)}.")
        chosen.append(found[0])
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks (or name prefixes); default: all")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "rehearsal", help="executed notebooks")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run at once")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell")
    parser.add_argument("--set", type=parse_setting, action="append", default=[], metavar="NAME=VALUE",
                        help="one more override for every notebook run, e.g. --set SEED=1 (repeatable)")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="print what would run, and the overrides")
    parser.add_argument("--fresh-caches", action="store_true",
                        help="an empty asset cache per notebook, not one shared (each fetches again)")  # fmt: skip
    args = parser.parse_args(argv)
    chosen = select(args.notebooks)
    extra = dict(args.set)
    unknown = sorted(set(PARAMETERS) - {p.stem for p in NOTEBOOKS})
    if unknown:
        sys.exit(f"scripts/rehearsal_parameters.py names notebooks that do not exist: {', '.join(unknown)}.")
    if args.list:
        for notebook in chosen:
            print(f"{notebook.relative_to(REPO)}: {overrides(notebook, Path('<presets>'), extra)}")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    pack = pack_folder()
    with (
        tempfile.TemporaryDirectory(prefix="tlkit-rehearsal-") as tmp,
        serve(pack) as mirror,
        ThreadPoolExecutor(1) as fetcher,
    ):
        work = Path(tmp)
        start = time.perf_counter()
        shared = None if args.fresh_caches else fetcher.submit(fill_shared_cache, work, mirror)
        weights = write_weight_stand_ins(work / "keras" / "models", pack)
        from rehearsal_presets import write_presets

        presets = work / "presets"
        written = write_presets(presets)
        ready = f"Stand-ins ready in {time.perf_counter() - start:.0f} s: mirror {mirror} serving {pack}; "
        print(f"{ready}{len(weights)} weight files in $KERAS_HOME/models; presets: {', '.join(written)}.", flush=True)
        env = {k: v for k, v in os.environ.items() if k not in ("TLKIT_ASSETS", "TLKIT_NO_NETWORK")}
        env.update(
            TLKIT_PROFILE="full",
            TLKIT_ASSETS_MIRROR=mirror,
            TLKIT_GPU_SETTINGS="1",
            KERAS_HOME=str(work / "keras"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        )
        args.out.mkdir(parents=True, exist_ok=True)
        run = functools.partial(
            rehearse_one, work=work, env=env, presets=presets, out=args.out, timeout=args.timeout, extra=extra,
            shared=shared,
        )  # fmt: skip
        results = []
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            for result in pool.map(run, chosen):
                state = "ok" if result["failed"] is None else f"FAILED: {result['failed']}"
                print(f"{result['notebook'].relative_to(REPO)}: {result['cells']} cells in "
                      f"{result['seconds']:.0f} s, {state}", flush=True)  # fmt: skip
                results.append(result)
    failed = [r for r in results if r["failed"] is not None]
    total = sum(r["seconds"] for r in results)
    print(f"\nRehearsed {len(results)} notebook(s) in the full profile ({total:.0f} s of notebook time): "
          f"{len(results) - len(failed)} passed, {len(failed)} failed.")  # fmt: skip
    for r in failed:
        print(f"  {r['notebook'].relative_to(REPO)}: see {r['executed']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
