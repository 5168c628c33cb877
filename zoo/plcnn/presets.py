"""PLCNN weights trained by the loczoo project."""

from loczoo.presets import Preset, WeightsFile

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
        weights=WeightsFile("model.weights.h5",
                            "3253775042da2f1a28aab54d998d472d52eb88f4f9c16815065eaf22660242c3",
                            3488616),  # float16
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
