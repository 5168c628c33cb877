"""DECODE weights trained by the loczoo project."""

from loczoo.presets import Preset

CITATION = ("Speiser A., Mueller L.-R., Hoess P., Matti U., Obara C. J., Legant W. R., Kreshuk "
            "A., Macke J. H., Ries J., Turaga S. C. Deep learning enables fast and dense "
            "single-molecule localization with high accuracy. Nat Methods 18, 1082-1090 (2021)")

# (text, DOI or URL) of the papers, for model cards and bioimage.io packages.
CITATIONS = (
    (CITATION, "doi:10.1038/s41592-021-01236-x"),
)

PRESETS: dict[str, Preset] = {
    "sim-dense-100nm": Preset(
        name="sim-dense-100nm",
        entry="decode",
        description=("2D (z off), features 32 (the reference: 48); trained on loczoo's "
                     "simulator: 100 nm pixels, PSF sigma 90-135 nm, 0.5-10 emitters/um^2, "
                     "800-6000 photons, background 5-120 photons, blinking (mean on-time 1 "
                     "frame)"),
        files={
            "config.json": "f2e8f2783d4a4e1c9ef6ed4210d51ffe865fd71b715124f377a6b170803ad8ef",
            "model.weights.h5": "cd8017364ff7b37b4a7c59b1ed43a8dffac2cba2dcacc8a440583e97f0d79c7b",
            "metadata.json": "30bb9193bd9c6a459576f70ea67e738af67ccb497ded68d12e8dda017958f0fb",
        },
        license="MIT",
        citation=CITATION,
        training=("loczoo train decode --out runs/decode_2d --set features=32 --set "
                  "inter_features=32 --set batch_size=32 --steps-per-epoch 100 --epochs 40 "
                  "--validation-steps 10 --seed 1 (stopped by SIGTERM after 24 epochs, 80 min "
                  "on 2 CPU cores shared with the 3D run); then loczoo train decode --init "
                  "runs/decode_2d --out runs/decode_2d_b --steps-per-epoch 100 --epochs 60 "
                  "--validation-steps 10 --seed 2 (stopped after 25 epochs, 95 min, shared; "
                  "best weights kept); then loczoo calibrate runs/decode_2d_b --frames 64"),
    ),
    "sim-3d-smlm2016": Preset(
        name="sim-3d-smlm2016",
        entry="decode",
        description=("3D astigmatic (z -750..750 nm), features 32 (the reference: 48); trained "
                     "on loczoo's simulator with the SMLM 2016 challenge EMCCD: 100 nm pixels, "
                     "in-focus PSF sigma 95-110 nm, 0.5-3 emitters/um^2, photons 7000 +/- "
                     "3000, blinking"),
        files={
            "config.json": "d341548730ecd0b1cd8881707e040c8b95fbd2137564a75488b6234c97dbcc1e",
            "model.weights.h5": "3f5c169f12c8bf1f276786223350f8bcc181e1f8f841c2266307ff3c045b239d",
            "metadata.json": "1c65f25203102a0b6aa11d86ef5c65c1619f826e604d961b07485bd38c09e89e",
        },
        license="MIT",
        citation=CITATION,
        training=("loczoo train decode --config 3d --out runs/decode_3d --set features=32 "
                  "--set inter_features=32 --set batch_size=32 --steps-per-epoch 100 --epochs "
                  "40 --validation-steps 10 --seed 1 (stopped by SIGTERM after 21 epochs, 80 "
                  "min on 2 CPU cores shared with the 2D run); then loczoo train decode --init "
                  "runs/decode_3d --out runs/decode_3d_b --steps-per-epoch 100 --epochs 60 "
                  "--validation-steps 10 --seed 2 (stopped after 24 epochs, 95 min, shared; "
                  "best weights kept); then loczoo calibrate runs/decode_3d_b --frames 64"),
    ),
}
DEFAULT_PRESET = "sim-dense-100nm"
