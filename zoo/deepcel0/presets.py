"""DeepCEL0 weights trained by the loczoo project (see README.md for the figures)."""

from loczoo.presets import Preset, WeightsFile

CITATION = ("Cascarano P., Comes M. C., Sebastiani A., Mencattini A., Loli Piccolomini E., "
            "Martinelli E. DeepCEL0 for 2D single-molecule localization in fluorescence "
            "microscopy. Bioinformatics 38(5):1411-1419 (2022), doi:10.1093/bioinformatics/btab808")

# (text, DOI or URL) of the papers, for model cards and bioimage.io packages.
CITATIONS = (
    (CITATION, "doi:10.1093/bioinformatics/btab808"),
)

PRESETS: dict[str, Preset] = {
    "sim-dense-100nm": Preset(
        name="sim-dense-100nm",
        entry="deepcel0",
        description=("4x upsampling, ReLU output, L2 + CEL0 loss; trained on loczoo's "
                     "simulator: 100 nm pixels, PSF sigma 90-135 nm, 0.5-10 emitters/um^2, "
                     "800-6000 photons"),
        weights=WeightsFile("model.weights.h5",
                            "9b267773fe7af49f59c9d389a1f5ccf1e5f41e33ed378e82520b5eaad6c07a05",
                            2817536),  # float16
        overrides=("norm_mean=0.16133", "norm_std=0.16309"),
        postprocess={"threshold": 0.22},
        license="MIT",
        citation=CITATION,
        training=("loczoo train deepcel0 --out runs/deepcel0_sim100_up4 --steps-per-epoch 200 "
                  "--epochs 15 --validation-steps 20 --seed 1 (15 epochs x 200 steps of batch "
                  "16, 30 min on 2 CPU cores); then "
                  "loczoo calibrate runs/deepcel0_sim100_up4 --frames 64"),
    ),
}
DEFAULT_PRESET = "sim-dense-100nm"
