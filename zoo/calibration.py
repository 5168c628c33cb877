"""Choose a localization model's detection threshold on simulated frames.

The threshold is picked on frames from the model's own imaging configuration (never on the
data it will be evaluated on), maximising the SMLM-challenge lateral efficiency, which weighs
detection (Jaccard) against localization error (RMSE)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from loczoo.smlm.localizations import Localizations
from loczoo.smlm.metrics import evaluate
from loczoo.smlm.simulate import simulate_stack

# In units of one emitter's peak in the target (thresholds are scaled by each entry): fine steps
# where heatmap entries work best, coarser ones up to the peak for peak-like maps.
DEFAULT_THRESHOLDS = tuple(np.round(np.r_[np.arange(0.01, 0.41, 0.01),
                                          np.arange(0.45, 0.96, 0.05)], 2))


def sweep_thresholds(bundle, frames: np.ndarray, truth: Localizations, pixel_size_nm: float,
                     thresholds=DEFAULT_THRESHOLDS, tolerance_nm: float = 250.0,
                     batch_size: int = 8) -> list[dict]:
    """Metrics at every threshold; the network runs once per frame, post-processing per
    threshold."""
    _, height, width = frames.shape
    outputs = list(bundle.predict_batches(frames, batch_size))
    rows = []
    for threshold in thresholds:
        config = replace(bundle.config, threshold=float(threshold))
        tables = []
        for start, out in outputs:
            locs = bundle.entry.postprocess(out, config, pixel_size_nm=pixel_size_nm,
                                            height=height, width=width)
            locs.frame += start
            tables.append(locs)
        metrics = evaluate(truth, Localizations.concatenate(tables), tolerance_nm=tolerance_nm)
        rows.append({"threshold": float(threshold), **metrics})
    return rows


def best_threshold(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: np.nan_to_num(r["efficiency_lateral"], nan=-np.inf))


def isolated_emitter_errors(bundle, frames: int, photons: float, background: float,
                            seed: int = 0):
    """Metrics of ``bundle`` on 64 x 64 frames with sparse emitters (0.3 per um^2) of fixed
    brightness, PSF sigma 110 nm, at the model's own pixel size and camera."""
    imaging = replace(bundle.config.imaging, density_per_um2=(0.3, 0.3),
                      photon_distribution="uniform", photon_params=(photons, photons),
                      psf_sigma_nm=(110.0, 110.0), background_photons=(background, background),
                      background_field_fraction=0.0)
    stack, truth = simulate_stack(imaging, frames, 64, 64, seed=seed)
    locs = bundle.localize(stack, pixel_size_nm=imaging.pixel_size_nm, batch_size=8)
    return evaluate(truth, locs, tolerance_nm=250.0), imaging


def calibrate_run_folder(folder, *, frames: int = 64, size: int = 64, seed: int = 12345,
                         tolerance_nm: float = 250.0, command: str = "", store: bool = True,
                         data=None) -> tuple[dict, list[dict]]:
    """Choose the detection threshold of a localization run folder and (if ``store``) write it
    into its config.json, with the calibration recorded in metadata.json. The frames are
    ``data`` (a ``TrainingData``: real frames with ground truth, e.g. a validation split) or
    else ``frames`` frames of ``size`` px simulated with the run's own imaging configuration.
    Returns (best row, rows)."""
    import json

    from loczoo import runfolder
    from loczoo.bundle import load_bundle
    from loczoo.config import save_json
    from loczoo.errors import LoczooError
    from loczoo.outputs import atomic_path

    if not runfolder.is_run_folder(folder):
        raise LoczooError(f"{folder} is not a run folder (presets are calibrated when built)")
    bundle = load_bundle(str(folder))
    if data is None:
        imaging = bundle.config.imaging
        stack, truth = simulate_stack(imaging, frames, size, size, seed=seed)
        pixel_size_nm, source = imaging.pixel_size_nm, {"frames": frames, "size": size,
                                                        "seed": seed}
    else:
        stack, truth, pixel_size_nm = data.frames, data.truth, data.pixel_size_nm
        source = {"frames": int(stack.shape[0]), "data": "real frames with ground truth"}
    rows = sweep_thresholds(bundle, stack, truth, pixel_size_nm, tolerance_nm=tolerance_nm)
    best = best_threshold(rows)
    if store:
        with atomic_path(f"{folder}/{runfolder.CONFIG}") as tmp:
            save_json(replace(bundle.config, threshold=best["threshold"]), tmp)
        meta = dict(bundle.metadata)
        meta["calibration"] = {"command": command, **source, "tolerance_nm": tolerance_nm,
                               "threshold": best["threshold"], "jaccard": best["jaccard"],
                               "rmse_lateral": best["rmse_lateral"],
                               "efficiency_lateral": best["efficiency_lateral"]}
        with atomic_path(f"{folder}/{runfolder.METADATA}") as tmp:
            tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return best, rows
