"""Choose a localization model's detection threshold on simulated frames (and, for models
that predict uncertainties, the scale that calibrates them).

The threshold is picked on frames from the model's own imaging configuration (never on the
data it will be evaluated on), maximising the SMLM-challenge lateral efficiency, which weighs
detection (Jaccard) against localization error (RMSE)."""

from __future__ import annotations

from dataclasses import replace
from numbers import Integral

import numpy as np

from loczoo.errors import LoczooError
from loczoo.smlm.localizations import Localizations
from loczoo.smlm.metrics import evaluate
from loczoo.smlm.simulate import simulate_stack

# In units of one emitter's peak in the target (thresholds are scaled by each entry): fine steps
# where heatmap entries work best, coarser ones up to the peak for peak-like maps.
DEFAULT_THRESHOLDS = tuple(np.round(np.r_[np.arange(0.01, 0.41, 0.01),
                                          np.arange(0.45, 0.96, 0.05)], 2))
MIN_FRAME_SIZE = 16  # px: smaller simulated frames hold too few emitters to choose a threshold


def sweep_thresholds(bundle, frames: np.ndarray, truth: Localizations, pixel_size_nm: float,
                     thresholds=DEFAULT_THRESHOLDS, tolerance_nm: float = 250.0,
                     batch_size: int = 8) -> list[dict]:
    """Metrics at every threshold; the network runs once per frame (``network_outputs``),
    the bundle's post-processing once per threshold (``postprocess_outputs``)."""
    return _sweep(bundle, bundle.network_outputs(frames, batch_size), frames.shape, truth,
                  pixel_size_nm, thresholds, tolerance_nm)


def _sweep(bundle, outputs, shape, truth, pixel_size_nm, thresholds, tolerance_nm):
    _, height, width = shape
    rows = []
    for threshold in thresholds:
        locs = bundle.postprocess_outputs(outputs, pixel_size_nm=pixel_size_nm, height=height,
                                          width=width, threshold=float(threshold))
        metrics = evaluate(truth, locs, tolerance_nm=tolerance_nm)
        rows.append({"threshold": float(threshold), **metrics})
    return rows


class NothingDetectedError(LoczooError):
    """No threshold detects any emitter of the calibration frames (Jaccard 0 everywhere), so
    there is no threshold to choose: the run folder keeps its threshold and nothing is
    written. ``rows`` holds the metrics per threshold. ``loczoo finetune`` reports it as a
    warning; ``loczoo calibrate`` as an error."""

    def __init__(self, message: str, rows: list[dict]):
        super().__init__(message)
        self.rows = rows


def best_threshold(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: np.nan_to_num(r["efficiency_lateral"], nan=-np.inf))


MIN_SIGMA_PAIRS = 50   # matched emitters needed to measure the spread of error / sigma


def sigma_scales(truth: Localizations, locs: Localizations, tolerance_nm: float = 250.0):
    """Per axis (x, y, z), the spread of (prediction - truth) / predicted sigma over the
    matched emitters: the factor that makes the predicted uncertainties calibrated. The
    spread is the standard deviation after leaving out ratios beyond 5 robust standard
    deviations (mismatched pairs). None for an axis without sigmas or with fewer than
    ``MIN_SIGMA_PAIRS`` pairs."""
    from loczoo.smlm.metrics import match

    m = match(truth, locs, tolerance_nm=tolerance_nm)
    scales = []
    for axis, err in (("x", m.dx), ("y", m.dy), ("z", m.dz)):
        column = f"sigma_{axis}"
        if not locs.has(column):
            scales.append(None)
            continue
        sigma = np.asarray(getattr(locs, column), np.float64)[m.pred_index]
        ratio = np.asarray(err, np.float64) / sigma
        ratio = ratio[np.isfinite(ratio)]
        if ratio.size < MIN_SIGMA_PAIRS:
            scales.append(None)
            continue
        centre = np.median(ratio)
        robust = 1.4826 * np.median(np.abs(ratio - centre))
        kept = ratio[np.abs(ratio - centre) <= 5.0 * robust] if robust > 0 else ratio
        scales.append(float(np.std(kept)))
    return tuple(scales)


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
    into its config, with the calibration recorded in its metadata (``loczoo.runfolder``
    writes both). The frames are
    ``data`` (a ``TrainingData``: real frames with ground truth, e.g. a validation split) or
    else ``frames`` frames of ``size`` px simulated with the run's own imaging configuration.
    Returns (best row, rows).

    Raises ``NothingDetectedError`` (a LoczooError), writing nothing, when no threshold detects
    any emitter; LoczooError for too few or too small frames or a run that is not a
    localization model."""
    from loczoo import runfolder
    from loczoo.bundle import load_bundle

    if not runfolder.is_run_folder(folder):
        raise LoczooError(f"{folder} is not a run folder (presets are calibrated when built)")
    if data is None and not (isinstance(frames, Integral) and frames >= 1):
        raise LoczooError(f"calibrating {folder} needs at least 1 simulated frame, got {frames}")
    bundle = load_bundle(str(folder))
    if bundle.entry.task != "localization" or bundle.entry.postprocess is None:
        raise LoczooError(f"{folder} is a {bundle.entry.name} run ({bundle.entry.task}); only "
                          f"localization models have a detection threshold")
    if data is None:
        smallest = _smallest_frame(bundle)
        if not (isinstance(size, Integral) and size >= smallest):
            raise LoczooError(f"calibration frames of {size} px are too small for {folder}: "
                              f"{bundle.entry.name} needs at least {smallest} px")
        imaging = bundle.config.imaging
        stack, truth = simulate_stack(imaging, frames, size, size, seed=seed)
        pixel_size_nm, source = imaging.pixel_size_nm, {"frames": frames, "size": size,
                                                        "seed": seed}
    else:
        stack, truth, pixel_size_nm = data.frames, data.truth, data.pixel_size_nm
        source = {"frames": int(stack.shape[0]), "data": "real frames with ground truth"}
    described = (f"the {source['frames']} simulated frames" if data is None else
                 f"the {source['frames']} frames with ground truth")
    if len(truth) == 0:
        raise LoczooError(f"{described} hold no emitters to calibrate {folder} on; use more "
                          f"or larger frames")
    outputs = bundle.network_outputs(stack, 8)
    rows = _sweep(bundle, outputs, stack.shape, truth, pixel_size_nm, DEFAULT_THRESHOLDS,
                  tolerance_nm)
    if not any(np.nan_to_num(r["jaccard"]) > 0 for r in rows):
        raise NothingDetectedError(
            f"no threshold detects any emitter on {described} (Jaccard 0 for every threshold "
            f"{rows[0]['threshold']:g}-{rows[-1]['threshold']:g}); the threshold of {folder} "
            f"stays {bundle.config.threshold:g}; the model may be untrained or the conditions "
            f"wrong", rows)
    best = best_threshold(rows)
    config = replace(bundle.config, threshold=best["threshold"])
    if hasattr(config, "sigma_scale"):
        # The uncertainties at the chosen threshold, rescaled so that error / sigma has unit
        # spread on these frames (axes without enough pairs keep their scale).
        locs = bundle.postprocess_outputs(outputs, pixel_size_nm=pixel_size_nm,
                                          height=stack.shape[1], width=stack.shape[2],
                                          threshold=best["threshold"])
        measured = sigma_scales(truth, locs, tolerance_nm)
        scale = tuple(old * new if new else old
                      for old, new in zip(config.sigma_scale, measured))
        config = replace(config, sigma_scale=scale)
        best = {**best, "sigma_scale": list(scale),
                "sigma_spread_before": [None if v is None else round(v, 4) for v in measured]}
    if store:
        runfolder.write_config(folder, config)
        calibration = {"command": command, **source, "tolerance_nm": tolerance_nm,
                       "threshold": best["threshold"], "jaccard": best["jaccard"],
                       "rmse_lateral": best["rmse_lateral"],
                       "efficiency_lateral": best["efficiency_lateral"]}
        if "sigma_scale" in best:
            calibration.update(sigma_scale=best["sigma_scale"],
                               sigma_spread_before=best["sigma_spread_before"])
        runfolder.update_metadata(folder, calibration=calibration)
    return best, rows


def describe_sigma_scale(best: dict) -> str:
    """One line on the uncertainty calibration of ``calibrate_run_folder``'s best row, or ''
    for a model without predicted uncertainties."""
    if "sigma_scale" not in best:
        return ""
    spread = ", ".join("n/a" if v is None else f"{v:.2f}" for v in best["sigma_spread_before"])
    scale = ", ".join(f"{v:.3g}" for v in best["sigma_scale"])
    return (f"uncertainties: error / sigma spread (x, y, z) {spread} at this threshold; "
            f"sigma scale now {scale}")


def _smallest_frame(bundle) -> int:
    """The smallest simulated frame side worth calibrating on: room for a few emitters away
    from the border, and at least the network's input multiple (frames are padded to it)."""
    return max(MIN_FRAME_SIZE, int(getattr(bundle.config, "input_multiple", 1)))
