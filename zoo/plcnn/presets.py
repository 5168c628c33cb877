"""PLCNN weights trained by the loczoo project."""

from loczoo.presets import Preset

CITATION = ("Tahir M., Anwar S., Mian A. Deep localization of protein structures in fluorescence "
            "microscopy images. Neural Computing and Applications (2021), "
            "doi:10.1007/s00521-021-06715-y")

# (text, DOI or URL) of the papers, for model cards and bioimage.io packages.
CITATIONS = (
    (CITATION, "doi:10.1007/s00521-021-06715-y"),
)

PRESETS: dict[str, Preset] = {
    "sim-cells-8": Preset(
        name="sim-cells-8",
        entry="plcnn",
        description=("synthetic cells only (loczoo.proteins.simulate: nucleus, nucleoli, er, "
                     "golgi, vesicles, mitochondria, actin, microtubules; 128 x 128, one "
                     "channel): the demo and a starting point for fine-tuning, not a model of "
                     "real cells"),
        files={
            "config.json": "b496c2008ad4fa6c7a6dca073c170cd3e2a85e60378ab78e17998ecd515a0986",
            "model.weights.h5": "27589ee57f23229ddb45dd86409e08c75650e123a990d4d647dcb40f0e22f17a",
            "metadata.json": "860fac1f110efb71b69fdc734b23fda0f33ebfc05f159a6a0eb4ee2e47b312e7",
        },
        license="MIT",
        citation=CITATION,
        training=("loczoo train plcnn --out runs/plcnn_sim --steps-per-epoch 50 --epochs 40 "
                  "--validation-steps 8 --seed 1 (4 epochs with batch-norm momentum 0.99, "
                  "stopped by SIGTERM); then loczoo train plcnn --init runs/plcnn_sim --out "
                  "runs/plcnn_sim_b --steps-per-epoch 50 --epochs 40 --validation-steps 8 "
                  "--seed 2 (momentum 0.9; stopped after 15 epochs, 17 min on 2 CPU cores; "
                  "best validation loss 0.0069, accuracy 1.000 on 128 simulated cells)"),
    ),
}
DEFAULT_PRESET = "sim-cells-8"
