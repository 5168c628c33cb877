"""loczoo list: the zoo entries, their presets, file sizes and whether the weights are present."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import import_tensorflow_quietly, standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="also show training commands")


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from loczoo.registry import list_entries

    for entry in list_entries():
        print(f"{entry.name}  [{entry.task}]  {entry.description}")
        if not entry.presets:
            print("    (no pretrained presets yet)")
        for name, preset in entry.presets.items():
            folder = preset.folder
            present = all((folder / f).is_file() for f in preset.files)
            size = sum((folder / f).stat().st_size for f in preset.files
                       if (folder / f).is_file())
            default = " (default)" if name == entry.default_preset else ""
            status = "shipped" if present else "missing"
            print(f"    {entry.name}/{name}{default}: {size / 1e6:.1f} MB, {status}. "
                  f"{preset.description}")
            if args.verbose:
                print(f"        trained with: {preset.training}")
    return 0


def main(argv=None) -> int:
    return standalone("list", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
