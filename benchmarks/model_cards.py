"""Write the model card (MODEL_CARD.md) of every shipped preset: what it is, its weights and
configuration, how it was trained, and its figures measured here on the real data sets of
../shared/data (Deep-STORM demo 1, NAIRR-SMLM 2D Gaussian LD/MD/HD), with the command.

    python benchmarks/model_cards.py [--presets deep_storm/sim-dense-100nm ...] [--frames 300]

Cards go into the package folder of each preset (loczoo/<entry>/weights/<preset>/), so they
ship with the weights; exports copy them. Classification presets have no real data here: their
card gives the held-out synthetic accuracy of benchmarks/plcnn.py and says so.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from realdata import BATCH, add_data_arguments, evaluate_set  # noqa: E402

CELLS = 400  # held-out synthetic cells for classification presets


def all_presets() -> list:
    from loczoo.registry import list_entries

    return [p for entry in list_entries() for p in entry.presets.values()]


def figures_table(bundle, args) -> list[str]:
    lines = ["| data | frames | Jaccard @250 nm (chance) | Jaccard @100 nm (chance) | "
             "RMSE nm @250 | efficiency @250 | ms/frame |", "|---|---|---|---|---|---|---|"]
    notes = []
    for name in args.sets:
        row = evaluate_set(bundle, name, args.data, args.frames)
        a, b = row[250.0], row[100.0]
        lines.append(f"| {name} | {row['frames']} | {a['jaccard']:.3f} ({row['chance250']:.3f}) "
                     f"| {b['jaccard']:.3f} ({row['chance100']:.3f}) | {a['rmse_lateral']:.1f} | "
                     f"{a['efficiency_lateral']:.1f} | {row['ms']:.1f} |")
        notes += [f"- {name}: {note}" for note in row["notes"]]
        print(lines[-1], flush=True)
    return lines + ([""] + notes if notes else [])


def card(preset, bundle, figures: list[str], command: str) -> str:
    from loczoo.registry import get_entry

    entry = get_entry(preset.entry)
    meta = preset.metadata()
    storage = meta.get("weights_storage", {})
    calibration = meta.get("calibration", {})
    settings = [f"--config {preset.config}", *preset.overrides]
    lines = [f"# Model card: {preset.id}", "",
             f"{entry.description}.", "", preset.description + ".", "",
             "## Weights", "",
             f"- `{preset.weights.name}`, {preset.weights.size:,} bytes, sha256 "
             f"`{preset.weights.sha256}`",
             f"- {bundle.model.count_params():,} parameters, stored as "
             f"{storage.get('dtype', 'float32')}"]
    if storage:
        lines.append(f"- float16 storage changes the network outputs by at most "
                     f"{storage['max_abs_output_change']:.3g} "
                     f"({100 * storage['relative_change']:.2f} % of the largest output) on a "
                     f"simulated validation batch (`loczoo make-preset`)")
    post = ", ".join(f"{k} = {v}" for k, v in preset.postprocess.items()) or "none (classifier)"
    lines += ["", "## Configuration", "", f"- `{' '.join(settings)}`", f"- post-processing: {post}"]
    if calibration:
        lines.append(f"- threshold chosen by `{calibration.get('command', 'loczoo calibrate')}`"
                     f" on {calibration['frames']} simulated frames: Jaccard "
                     f"{calibration['jaccard']:.3f}, RMSE {calibration['rmse_lateral']:.1f} nm")
    history = meta.get("history", [])
    lines += ["", "## Training", "",
              f"- command: `{preset.training}`",
              f"- data: {meta.get('data', 'loczoo simulator')}",
              f"- {meta.get('epochs_done', len(history))} epochs of "
              f"{meta.get('steps_per_epoch', '?')} steps; best validation loss "
              f"{meta.get('best_val_loss', float('nan')):.4g}",
              f"- versions: {meta.get('versions', {})}", ""]
    lines += figures
    lines += ["", "## Limitations", "",
              "- Trained only on loczoo's simulator"
              + ("; the real-data figures above are on simulations by other groups. Check the "
                 "domain notes `loczoo localize` prints, and fine-tune (`loczoo finetune`) for "
                 "other cameras, PSFs or densities." if entry.task == "localization" else
                 ": synthetic cells, not real ones."),
              f"- Known issues of this entry: `loczoo/{preset.entry}/README.md`.", "",
              "## License and citation", "",
              f"- weights: {preset.license} (loczoo project)",
              *(f"- cite: {text}" for text, _ in entry.citations), "",
              f"Written by `{command}`.", ""]
    return "\n".join(lines)


def classifier_figures(bundle) -> list[str]:
    from plcnn import held_out_predictions

    labels, predicted, ms = held_out_predictions(bundle, CELLS)
    accuracy = 100 * float((labels == predicted).mean())
    print(f"accuracy {accuracy:.1f} % on {CELLS} held-out synthetic cells", flush=True)
    return ["## Measured figures", "",
            "No real protein-localization data were available to the project, so there are no "
            f"real-data figures. On {CELLS} held-out synthetic cells (seeds no training stream "
            f"uses; `python benchmarks/plcnn.py --images {CELLS}` gives the confusion matrix) "
            f"the preset classified {accuracy:.1f} % correctly, {ms:.1f} ms per image. "
            "`loczoo simulate-cells` draws such cells. Fine-tune on real, labelled cells before "
            "use."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", metavar="ENTRY/PRESET")
    add_data_arguments(parser)
    parser.set_defaults(frames=300)
    args = parser.parse_args()
    command = shlex.join(["python", "benchmarks/model_cards.py", *sys.argv[1:]])

    import tensorflow as tf

    from loczoo.bundle import load_bundle
    from loczoo.outputs import atomic_path
    from loczoo.runfolder import model_card_path

    chosen = [p for p in all_presets() if not args.presets or p.id in args.presets]
    for preset in chosen:
        print(f"{preset.id}:", flush=True)
        bundle = load_bundle(preset.id)
        if bundle.entry.task == "localization":
            figures = [f"## Measured on ../shared/data (first {args.frames} frames of each set; "
                       f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, batch {BATCH})",
                       "", "Chance: Jaccard of random positions at the same count. Each set is "
                       "read with its own camera (data README).", "",
                       *figures_table(bundle, args)]
        else:
            figures = classifier_figures(bundle)
        path = model_card_path(preset.package_folder)
        with atomic_path(path) as tmp:
            tmp.write_text(card(preset, bundle, figures, command))
        print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
