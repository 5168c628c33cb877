"""DECODE: 3-frame context, Gaussian-mixture loss, 3D and per-localization uncertainties."""

from loczoo.decode.config import DECODEConfig
from loczoo.decode.loss import make_loss
from loczoo.decode.model import build_model, consecutive_windows_forward
from loczoo.decode.pipeline import (
                                    FRAME_CONTEXT,
                                    describe_targets,
                                    make_dataset,
                                    make_optimizer,
                                    postprocess,
                                    prepare_config,
                                    preprocess,
    tensor_layout,
)
from loczoo.decode.presets import CITATIONS, DEFAULT_PRESET, PRESETS
from loczoo.registry import ZooEntry, register
from loczoo.smlm.pipeline import simulated_frames

ENTRY = register(ZooEntry(
    name="decode",
    task="localization",
    description=("DECODE (Speiser, Mueller et al. 2021): 3-frame context, Gaussian-mixture "
                 "loss, x, y, z, photons and their uncertainties"),
    config_cls=DECODEConfig,
    build_model=build_model,
    make_loss=make_loss,
    make_dataset=make_dataset,
    prepare_config=prepare_config,
    preprocess=preprocess,
    postprocess=postprocess,
    presets=PRESETS,
    default_preset=DEFAULT_PRESET,
    tensor_layout=tensor_layout,
    simulate_raw=simulated_frames,
    citations=CITATIONS,
    make_optimizer=make_optimizer,
    frame_context=FRAME_CONTEXT,
    make_forward=consecutive_windows_forward,
    describe_targets=describe_targets,
    reads_camera=True,
))
