"""Sub-pixel distance-transform CNN weights trained by the loczoo project."""

from loczoo.presets import Preset, WeightsFile

CITATION = ("Yee K., Hagen G., Ventura M. Localizing fluorescent proteins using super-resolution "
            "neural networks (2013 Bundled Tubes and 2016 SMLM challenge entries)")

# (text, DOI or URL) of the papers, for model cards and bioimage.io packages.
CITATIONS = (
    # The method has no public paper link; it is assessed in the SMLM challenge paper.
    (CITATION + "; assessed in Sage D. et al. Super-resolution fight club: assessment of 2D and "
     "3D single-molecule localization microscopy software. Nat Methods 16:387-395 (2019)",
     "doi:10.1038/s41592-019-0364-4"),
    ("Shi W. et al. Real-time single image and video super-resolution using an efficient "
     "sub-pixel convolutional neural network. CVPR 2016", "doi:10.1109/CVPR.2016.207"),
)

PRESETS: dict[str, Preset] = {
    "sim-dense-100nm": Preset(
        name="sim-dense-100nm",
        entry="subpixel_dt",
        description=("2013 configuration (9 convolutions, r = 7, d_max 35); trained on "
                     "loczoo's simulator: 100 nm pixels, PSF sigma 90-135 nm, 0.5-10 "
                     "emitters/um^2, 800-6000 photons"),
        weights=WeightsFile("model.weights.h5",
                            "bcd505111b7adc4738b5af9eb7d672fed5830529bbc8b58440e4e1d365850c8a",
                            1100880),  # float16
        postprocess={"threshold": 0.6},
        license="MIT",
        citation=CITATION,
        training=("loczoo train subpixel_dt --out runs/subpixel_dt_sim100 --steps-per-epoch 200 "
                  "--epochs 20 --validation-steps 10 --seed 1 (20 epochs x 200 steps of batch "
                  "16, 50 min on 2 CPU cores shared with another run); then "
                  "loczoo calibrate runs/subpixel_dt_sim100 --frames 64"),
    ),
}
DEFAULT_PRESET = "sim-dense-100nm"
