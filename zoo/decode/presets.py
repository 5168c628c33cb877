"""DECODE weights trained by the loczoo project."""

from loczoo.presets import Preset

CITATION = ("Speiser A., Mueller L.-R., Hoess P., Matti U., Obara C. J., Legant W. R., Kreshuk "
            "A., Macke J. H., Ries J., Turaga S. C. Deep learning enables fast and dense "
            "single-molecule localization with high accuracy. Nat Methods 18, 1082-1090 (2021)")

PRESETS: dict[str, Preset] = {
    "sim-dense-100nm": Preset(
        name="sim-dense-100nm",
        entry="decode",
        description=("2D (z off), features 32 (the reference: 48); trained on loczoo's "
                     "simulator: 100 nm pixels, PSF sigma 90-135 nm, 0.5-10 emitters/um^2, "
                     "800-6000 photons, blinking (mean on-time 1 frame)"),
        files={
            "config.json": "faa24afe65504ecde64c4440bca17d27c0bf30ec877d6b0c0984c619aad21c6f",
            "model.weights.h5": "03e1584e2dc17c5329742f13ea88acf58bf31c2580f1d479a6a0e818efb6bcf5",
            "metadata.json": "0d8f41b4c96379de5bcc97d6cc57819b4d680bbdcc1b3b5992229e7b95741b7e",
        },
        license="MIT",
        citation=CITATION,
        training=("loczoo train decode --out runs/decode_2d --set features=32 --set "
                  "inter_features=32 --set batch_size=32 --steps-per-epoch 100 --epochs 40 "
                  "--validation-steps 10 --seed 1 (24 epochs x 100 steps of batch 32 on 2 CPU "
                  "cores, shared with the other DECODE run; stopped by SIGTERM at the session's"
                  " budget, best weights kept); then loczoo calibrate runs/decode_2d --frames "
                  "64"),
    ),
    "sim-3d-smlm2016": Preset(
        name="sim-3d-smlm2016",
        entry="decode",
        description=("3D astigmatic (z -750..750 nm), features 32 (the reference: 48); trained "
                     "on loczoo's simulator with the SMLM 2016 challenge EMCCD: 100 nm pixels, "
                     "in-focus PSF sigma 95-110 nm, 0.5-3 emitters/um^2, photons 7000 +/- "
                     "3000, blinking"),
        files={
            "config.json": "8a441f4108b02968ca029f8e4616710624ff3d777db45dda41e5122929057699",
            "model.weights.h5": "e98d2b026b5af63f1622641950288c4318034bd3dd76a3804e0a37facb4d6616",
            "metadata.json": "9321dff24706ac3dd0db03926957f875f76490a00bbe99ae3bd4ecbf9f4d18b2",
        },
        license="MIT",
        citation=CITATION,
        training=("loczoo train decode --config 3d --out runs/decode_3d --set features=32 --set"
                  " inter_features=32 --set batch_size=32 --steps-per-epoch 100 --epochs 40 "
                  "--validation-steps 10 --seed 1 (21 epochs x 100 steps of batch 32 on 2 CPU "
                  "cores, shared with the other DECODE run; stopped by SIGTERM at the session's"
                  " budget, best weights kept); then loczoo calibrate runs/decode_3d --frames "
                  "64"),
    ),
}
DEFAULT_PRESET = "sim-dense-100nm"
