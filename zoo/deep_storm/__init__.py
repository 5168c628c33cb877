"""Deep-STORM (Nehme, Weiss, Michaeli, Shechtman; Optica 5(4):458, 2018)."""

from loczoo.deep_storm.config import DeepSTORMConfig
from loczoo.deep_storm.loss import make_loss
from loczoo.deep_storm.model import build_model
from loczoo.deep_storm.presets import CITATIONS, DEFAULT_PRESET, PRESETS
from loczoo.registry import ZooEntry, register
from loczoo.smlm.heatmaps import (
    make_dataset,
    postprocess,
    prepare_config,
    preprocess,
    tensor_layout,
)
from loczoo.smlm.pipeline import simulated_frames

ENTRY = register(ZooEntry(
    name="deep_storm",
    task="localization",
    description="Deep-STORM: encoder-decoder CNN on nearest-upsampled frames, blurred-MSE + L1",
    config_cls=DeepSTORMConfig,
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
))
