"""DSIR: convolutional auto-encoder for super-resolution image reconstruction (Duarte, 2018)."""

from loczoo.dsir.config import DSIRConfig
from loczoo.dsir.loss import make_loss
from loczoo.dsir.model import build_model
from loczoo.dsir.pipeline import make_dataset, make_optimizer, postprocess, tensor_layout
from loczoo.dsir.presets import CITATIONS, DEFAULT_PRESET, PRESETS
from loczoo.registry import ZooEntry, register
from loczoo.smlm.pipeline import no_data_constants, raw_frames_input, simulated_frames

ENTRY = register(ZooEntry(
    name="dsir",
    task="localization",
    description=("DSIR: convolutional auto-encoder on 8x bilinearly resized frames, "
                 "Gaussian-blurred MSE loss"),
    config_cls=DSIRConfig,
    build_model=build_model,
    make_loss=make_loss,
    make_dataset=make_dataset,
    prepare_config=no_data_constants,
    preprocess=raw_frames_input,
    postprocess=postprocess,
    presets=PRESETS,
    default_preset=DEFAULT_PRESET,
    tensor_layout=tensor_layout,
    simulate_raw=simulated_frames,
    citations=CITATIONS,
    make_optimizer=make_optimizer,
))
