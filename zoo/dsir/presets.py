"""DSIR weights trained by the loczoo project."""

from loczoo.presets import Preset, WeightsFile

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
        weights=WeightsFile("model.weights.h5",
                            "0190368f0373ee4b34ac4735ea3c7d3d76fdb0dcde1dae734eda39fffaf06d0f",
                            83288),  # float16
        overrides=("learning_rate=0.001", "target_scale=100"),
        postprocess={"threshold": 0.17},
        license="MIT",
        citation=CITATION,
        training=("loczoo train dsir --out runs/dsir_sim100_ts100 --set target_scale=100 "
                  "--set learning_rate=1e-3 --steps-per-epoch 200 --epochs 30 "
                  "--validation-steps 10 --seed 1 (30 epochs x 200 steps of batch 32, 45 min "
                  "on 2 CPU cores); then loczoo calibrate runs/dsir_sim100_ts100 --frames 64"),
    ),
}
DEFAULT_PRESET = "sim-dense-100nm"
