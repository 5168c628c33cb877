"""Deep-STORM weights trained by the loczoo project (see README.md for the figures)."""

from loczoo.presets import Preset, WeightsFile

CITATION = ("Nehme E., Weiss L. E., Michaeli T., Shechtman Y. Deep-STORM: super-resolution "
            "single-molecule microscopy by deep learning. Optica 5(4):458-464 (2018), "
            "doi:10.1364/OPTICA.5.000458")

# (text, DOI or URL) of the papers, for model cards and bioimage.io packages.
CITATIONS = (
    (CITATION, "doi:10.1364/OPTICA.5.000458"),
)

PRESETS: dict[str, Preset] = {
    "sim-dense-100nm": Preset(
        name="sim-dense-100nm",
        entry="deep_storm",
        description=("4x upsampling; trained on loczoo's simulator: 100 nm pixels, PSF sigma "
                     "90-135 nm, 0.5-10 emitters/um^2, 800-6000 photons, sCMOS-like camera"),
        weights=WeightsFile("model.weights.h5",
                            "90dacb6d5ae32b0131aee7914bc9b512a4f990b47e4a782153cf24bad1e9e2b8",
                            2817536),  # float16
        overrides=("upsampling=4", "norm_mean=0.16133", "norm_std=0.16309"),
        postprocess={"threshold": 0.05},
        license="MIT",
        citation=CITATION,
        training=("loczoo train deep_storm --out runs/deep_storm_sim100_up4 --set upsampling=4 "
                  "--steps-per-epoch 200 --epochs 40 --validation-steps 20 --seed 1 "
                  "(40 epochs x 200 steps of batch 16, 95 min on 2 CPU cores); then "
                  "loczoo calibrate runs/deep_storm_sim100_up4 --frames 64"),
    ),
}
DEFAULT_PRESET = "sim-dense-100nm"
