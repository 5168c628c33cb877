"""DSIR weights trained by the loczoo project."""

from loczoo.presets import Preset

CITATION = ("Duarte A. DSIR: Deep-Learning Super-Resolution Image Reconstruction, convolutional "
            "auto-encoder for SMLM (2018), "
            "github.com/leaxsd/Deep-Learning-Super-Resolution-Image-Reconstruction-DSIR")

# (text, DOI or URL) of the papers, for model cards and bioimage.io packages.
CITATIONS = (
    (CITATION, "https://github.com/leaxsd/Deep-Learning-Super-Resolution-Image-Reconstruction-DSIR"),
)

PRESETS: dict[str, Preset] = {
    "sim-dense-100nm": Preset(
        name="sim-dense-100nm",
        entry="dsir",
        description=("8x resizing, unshared batch norm, spikes x 100 (see README.md); trained "
                     "on loczoo's simulator: 100 nm pixels, PSF sigma 90-135 nm, 0.5-10 "
                     "emitters/um^2, 800-6000 photons"),
        files={
            "config.json": "0bea2b2026b1679fa2f8cde39ad973764c73e82c3d86d376f79a1ac9d5ac33fc",
            "model.weights.h5": "f23f0e03ae48ec95e3c9a2eb092325100b8020d8bcb4d852078c4de35397f65a",
            "metadata.json": "4851b58e300124d5aafb97715e1df707380d25f6de2b213e03fe5c4c1c48b8fe",
        },
        license="MIT",
        citation=CITATION,
        training=("loczoo train dsir --out runs/dsir_sim100_ts100 --set target_scale=100 "
                  "--set learning_rate=1e-3 --steps-per-epoch 200 --epochs 30 "
                  "--validation-steps 10 --seed 1 (30 epochs x 200 steps of batch 32, 45 min "
                  "on 2 CPU cores); then loczoo calibrate runs/dsir_sim100_ts100 --frames 64"),
    ),
}
DEFAULT_PRESET = "sim-dense-100nm"
