"""loczoo mirror FOLDER: copy the verified weights of every preset (or of the presets named)
into the layout a download mirror serves, ``FOLDER/<entry>/<preset>/<file>``. Serve FOLDER
over HTTPS (or put it on a shared disk) and point ``LOCZOO_MIRRORS`` at it, e.g. for cluster
nodes or installations without the shipped weights."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from loczoo.tools.common import import_tensorflow_quietly, standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="mirror folder to write")
    parser.add_argument("--presets", nargs="+", metavar="ENTRY/PRESET",
                        help="only these presets (default: all)")
    parser.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from loczoo.errors import LoczooError
    from loczoo.outputs import atomic_folder, prepare_folder_output
    from loczoo.presets import download_progress
    from loczoo.registry import list_entries

    prepare_folder_output(args.folder, args.overwrite)
    presets = {p.id: p for entry in list_entries() for p in entry.presets.values()}
    unknown = sorted(set(args.presets or ()) - set(presets))
    if unknown:
        raise LoczooError(f"unknown preset(s) {', '.join(unknown)}; known: "
                          f"{', '.join(presets)}")
    chosen = [presets[name] for name in args.presets] if args.presets else presets.values()
    with atomic_folder(args.folder, kind="download mirror") as tmp:
        for preset in chosen:
            source = preset.weights_path(download_progress(f"downloading {preset.id}"))
            target = Path(tmp) / preset.entry / preset.name / preset.weights.name
            target.parent.mkdir(parents=True)
            shutil.copyfile(source, target)
            print(f"{preset.id}: {preset.weights.size / 1e6:.1f} MB")
    print(f"mirror written to {args.folder}; use it with LOCZOO_MIRRORS="
          f"{Path(args.folder).resolve().as_uri()} or serve it over HTTPS")
    return 0


def main(argv=None) -> int:
    return standalone("mirror", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
