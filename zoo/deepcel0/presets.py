"""DeepCEL0 weights trained by the loczoo project (see README.md for the figures)."""

from loczoo.presets import Preset

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
        files={
            "config.json": "3c8cf5926b258b5f2185ee4abb48a898a0545d7282f57fc791ee0a47923dc17d",
            "model.weights.h5": "2d2b600956c34dc03a566e01f6122597ed8ad8618351a94305b3e46f3a2f477c",
            "metadata.json": "2fbb8a38af2f76e417e3a70b7999d5fdc0d35f6a1f7da523d26773ed819a8184",
        },
        license="MIT",
        citation=CITATION,
        training=("loczoo train deepcel0 --out runs/deepcel0_sim100_up4 --steps-per-epoch 200 "
                  "--epochs 15 --validation-steps 20 --seed 1 (15 epochs x 200 steps of batch "
                  "16, 30 min on 2 CPU cores); then "
                  "loczoo calibrate runs/deepcel0_sim100_up4 --frames 64"),
    ),
}
DEFAULT_PRESET = "sim-dense-100nm"
