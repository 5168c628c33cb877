"""DeepCEL0 (Cascarano, Comes, Sebastiani, Mencattini, Loli Piccolomini, Martinelli;
Bioinformatics 38(5):1411, 2022)."""

from loczoo.deepcel0.config import DeepCEL0Config
from loczoo.deepcel0.loss import make_loss
from loczoo.deepcel0.model import build_model
from loczoo.deepcel0.presets import CITATIONS, DEFAULT_PRESET, PRESETS
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
    name="deepcel0",
    task="localization",
    description="DeepCEL0: the Deep-STORM network with a ReLU output and the L2 + CEL0 loss",
    config_cls=DeepCEL0Config,
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
