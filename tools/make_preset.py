"""loczoo make-preset RUN --name NAME --out FOLDER: turn a trained (and calibrated) run folder
into a preset for the registry. Writes the weights in float16 and the training record, measures
how much float16 storage changes the network's outputs, and prints the ``Preset(...)``
declaration (weights sha256 and size, config overrides, post-processing) for the entry's
presets.py."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import import_tensorflow_quietly, standalone

# Config fields that belong to post-processing rather than to the network.
POSTPROCESS_KEYS = ("threshold", "split_threshold", "sigma_scale")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder written by `loczoo train` (and calibrated)")
    parser.add_argument("--name", required=True, help="preset name, e.g. sim-dense-100nm")
    parser.add_argument("--out", required=True,
                        help="folder to write (e.g. zoo/ENTRY/weights/NAME in a checkout)")
    parser.add_argument("--config", default="default",
                        help="named base configuration the overrides are relative to")
    parser.add_argument("--overwrite", action="store_true")


def config_differences(base, config) -> tuple[list[str], dict]:
    """(overrides, post-processing parameters) that turn ``base`` into ``config``."""
    import json

    from loczoo.config import to_dict, with_overrides
    from loczoo.errors import LoczooError

    def flat(data: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in data.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[prefix + key] = value
        return out

    before, after = flat(to_dict(base)), flat(to_dict(config))
    changed = {k: v for k, v in after.items() if k not in before or before[k] != v}
    post = {k: changed.pop(k) for k in POSTPROCESS_KEYS if k in changed}
    overrides = [f"{k}={json.dumps(v)}" for k, v in changed.items()]
    post_items = [f"{k}={json.dumps(v)}" for k, v in post.items()]
    if with_overrides(base, overrides + post_items) != config:
        # e.g. a section that is None in the base: name a base configuration that has it
        raise LoczooError("the run's configuration cannot be written as overrides of the base "
                          "configuration; pick the base with --config")
    return overrides, post


def float16_change(entry, config, full, half) -> dict:
    """Largest change of the network outputs from float16 storage, on a validation batch from
    the entry's simulator, absolute and relative to the outputs' largest magnitude."""
    import numpy as np

    inputs, _ = next(iter(entry.make_dataset(config, "validation", seed=0).take(1)))
    y_full = np.asarray(full(inputs, training=False))
    y_half = np.asarray(half(inputs, training=False))
    largest = float(np.abs(y_full).max())
    change = float(np.abs(y_full - y_half).max())
    return {"max_abs_output_change": change, "max_abs_output": largest,
            "relative_change": change / largest if largest else 0.0}


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    import shutil

    from loczoo import runfolder
    from loczoo.bundle import load_bundle
    from loczoo.config import named_config
    from loczoo.outputs import atomic_folder, prepare_folder_output
    from loczoo.presets import sha256_of, write_float16_weights

    prepare_folder_output(args.out, args.overwrite, inputs=[args.run])
    bundle = load_bundle(args.run)
    entry = bundle.entry
    overrides, post = config_differences(named_config(entry.config_cls, args.config),
                                         bundle.config)
    with atomic_folder(args.out, kind="preset") as tmp:
        weights = runfolder.weights_path(tmp)
        write_float16_weights(bundle.weights_file, weights)
        half = entry.build_model(bundle.config)
        half.load_weights(weights)
        check = float16_change(entry, bundle.config, bundle.model, half)
        runfolder.write_metadata(tmp, {**bundle.metadata,
                                       "weights_storage": {"dtype": "float16", **check}})
        card = runfolder.model_card_path(args.run)
        if card.is_file():
            shutil.copy(card, runfolder.model_card_path(tmp))
        digest, size = sha256_of(weights), weights.stat().st_size
    print(f"float16 storage changes the outputs by at most {check['max_abs_output_change']:.3g} "
          f"({100 * check['relative_change']:.3f} % of the largest output)")
    print(f"wrote {args.out}; declaration for loczoo/{entry.name}/presets.py:\n")
    print(f'''    "{args.name}": Preset(
        name="{args.name}",
        entry="{entry.name}",
        description="...",
        weights=WeightsFile("{runfolder.WEIGHTS}", "{digest}", {size}),
        config="{args.config}",
        overrides={tuple(overrides)!r},
        postprocess={post!r},
        license="MIT",
        citation=CITATION,
        training={bundle.metadata.get("command", "")!r},
    ),''')
    return 0


def main(argv=None) -> int:
    return standalone("make-preset", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
