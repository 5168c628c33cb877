"""loczoo list: the zoo entries, their presets, weights sizes and where each preset's weights
are (the user cache, the package, or still to download)."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import import_tensorflow_quietly, standalone

WHERE = {"cached": "cached", "shipped": "shipped in the package",
         "download": "not present: downloads on first use"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="also show configuration overrides, post-processing, license, "
                             "citation and training command")


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from loczoo.presets import loczoo_home, mirrors
    from loczoo.registry import list_entries

    print(f"user cache: {loczoo_home()}; mirrors: {' '.join(mirrors()) or 'none set'}")
    for entry in list_entries():
        print(f"{entry.name}  [{entry.task}]  {entry.description}")
        if not entry.presets:
            print("    (no pretrained presets yet)")
        for name, preset in entry.presets.items():
            default = " (default)" if name == entry.default_preset else ""
            print(f"    {preset.id}{default}: {preset.weights.size / 1e6:.1f} MB, "
                  f"{WHERE[preset.availability()]}. {preset.description}")
            if args.verbose:
                settings = [f"--config {preset.config}", *preset.overrides,
                            *(f"{k}={v}" for k, v in preset.postprocess.items())]
                print(f"        configuration: {' '.join(settings)}")
                print(f"        weights: {preset.weights.name} sha256 {preset.weights.sha256}")
                print(f"        license: {preset.license}; cite: {preset.citation}")
                print(f"        trained with: {preset.training}")
    return 0


def main(argv=None) -> int:
    return standalone("list", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
