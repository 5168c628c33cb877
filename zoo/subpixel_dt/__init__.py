"""The sub-pixel distance-transform CNN of Yee, Hagen and Ventura."""

from loczoo.registry import ZooEntry, register
from loczoo.smlm.pipeline import no_data_constants, raw_frames_input, simulated_frames
from loczoo.subpixel_dt.config import SubpixelDTConfig
from loczoo.subpixel_dt.loss import make_loss
from loczoo.subpixel_dt.model import build_model
from loczoo.subpixel_dt.pipeline import make_dataset, postprocess, tensor_layout
from loczoo.subpixel_dt.presets import CITATIONS, DEFAULT_PRESET, PRESETS

ENTRY = register(ZooEntry(
    name="subpixel_dt",
    task="localization",
    description=("Yee, Hagen and Ventura: plain convolutions, a sub-pixel convolution (r = 7) "
                 "and a distance-transform map"),
    config_cls=SubpixelDTConfig,
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
))
