"""PLCNN: protein subcellular localization classification with a two-stream CNN (Tahir, Anwar,
Mian, Neural Comput Appl 2021).

Only ``ENTRY`` is for use outside this folder: tools reach PLCNN through the registry and
``loczoo.bundle``, and the pieces every classifier shares live in ``loczoo.proteins.images``
and ``loczoo.crossval``."""

import keras

from loczoo.plcnn.config import PLCNNConfig
from loczoo.plcnn.gradcam import explain
from loczoo.plcnn.loss import make_loss
from loczoo.plcnn.model import build_model
from loczoo.plcnn.pipeline import make_dataset, prepare_config, preprocess, tensor_layout
from loczoo.plcnn.presets import CITATIONS, DEFAULT_PRESET, PRESETS
from loczoo.proteins.images import simulated_cells
from loczoo.registry import ZooEntry, register

ENTRY = register(ZooEntry(
    name="plcnn",
    task="classification",
    description=("PLCNN: residual and plain streams with three cross-stream concatenations, "
                 "protein subcellular localization classes"),
    config_cls=PLCNNConfig,
    build_model=build_model,
    make_loss=make_loss,
    make_dataset=make_dataset,
    prepare_config=prepare_config,
    preprocess=preprocess,
    postprocess=None,
    presets=PRESETS,
    default_preset=DEFAULT_PRESET,
    tensor_layout=tensor_layout,
    simulate_raw=simulated_cells,
    citations=CITATIONS,
    explain=explain,
    make_metrics=lambda config: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
))
