"""DECODE weights trained by the loczoo project."""

from loczoo.presets import Preset, WeightsFile

CITATION = ("Speiser A., Mueller L.-R., Hoess P., Matti U., Obara C. J., Legant W. R., Kreshuk "
            "A., Macke J. H., Ries J., Turaga S. C. Deep learning enables fast and dense "
            "single-molecule localization with high accuracy. Nat Methods 18, 1082-1090 (2021)")

# (text, DOI or URL) of the papers, for model cards and bioimage.io packages.
CITATIONS = (
    (CITATION, "doi:10.1038/s41592-021-01236-x"),
)

# The 3D presets' architecture and data constants (sim-3d-astig-broad was trained from
# sim-3d-smlm2016, so it keeps them).
NETWORK_3D = ("features=32", "inter_features=32", "batch_size=32", "input_offset=110.0",
              "input_scale=140.0", "photon_max=31000.0", "z_max=900.0", "background_max=240.0")

PRESETS: dict[str, Preset] = {
    "sim-dense-100nm": Preset(
        name="sim-dense-100nm",
        entry="decode",
        description=("2D (z off), features 32 (the reference: 48); trained on loczoo's "
                     "simulator: 100 nm pixels, PSF sigma 90-135 nm, 0.5-10 emitters/um^2, "
                     "800-6000 photons, background 5-120 photons, blinking (mean on-time 1 "
                     "frame)"),
        weights=WeightsFile("model.weights.h5",
                            "97da13d02410c7f94ec549f40f05b93e666ed8b9b286cafe9fb60dcca5063b63",
                            2108720),  # float16
        overrides=("features=32", "inter_features=32", "batch_size=32", "input_offset=62.5",
                   "input_scale=68.0", "photon_max=15408.885599144216", "background_max=187.2"),
        postprocess={"threshold": 0.29},
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
        weights=WeightsFile("model.weights.h5",
                            "a92ba1dfe8b07f748bb705c17e54a1a898abbf93320ddc205680a151e85ec5d1",
                            2108720),  # float16
        config="3d",
        overrides=NETWORK_3D,
        postprocess={"threshold": 0.24},
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
    "sim-3d-astig-broad": Preset(
        name="sim-3d-astig-broad",
        entry="decode",
        description=("3D astigmatic over a family of PSFs, the starting point to fine-tune for "
                     "your microscope (loczoo finetune --psf psf.json): z -750..750 nm, foci "
                     "+/-175..325 nm and depth 196..364 nm (DECODE's +/-250 / 280 nm times "
                     "1 +/- 0.3, per frame), in-focus sigma 90-150 nm, 100 nm pixels, sCMOS, "
                     "0.2-3 emitters/um^2, 1000-15000 photons, background 5-200, blinking; "
                     "stage 1 (3,200 steps from sim-3d-smlm2016), training continues"),
        weights=WeightsFile("model.weights.h5",
                            "0caa2589366367e9eacda7b2090c099afad6c1c78c24e300b3f0f5b1efc88ffd",
                            2108720),  # float16
        config="3d",
        overrides=(*NETWORK_3D, "imaging.density_per_um2=[0.2, 3.0]",
                   'imaging.photon_distribution="uniform"', "imaging.photon_params=[1000, 15000]",
                   "imaging.psf_sigma_nm=[90, 150]", "imaging.background_photons=[5, 200]",
                   "imaging.astigmatism_spread=0.3", "imaging.camera.em_gain=null",
                   "imaging.camera.read_noise_e=1.5", "imaging.camera.e_per_adu=1.0",
                   "imaging.camera.spurious_charge_e=0.0"),
        postprocess={"threshold": 0.26,
                     "sigma_scale": (1.7660378579160745, 1.574733648522398, 1.1539639079517465)},
        license="MIT",
        citation=CITATION,
        training=("loczoo train decode --init decode/sim-3d-smlm2016 --out runs/decode_3d_broad "
                  "--camera scmos --set imaging.astigmatism_spread=0.3 --set "
                  "'imaging.psf_sigma_nm=[90,150]' --set "
                  "'imaging.photon_distribution=\"uniform\"' --set "
                  "'imaging.photon_params=[1000,15000]' --set "
                  "'imaging.background_photons=[5,200]' --set "
                  "'imaging.density_per_um2=[0.2,3.0]' --steps-per-epoch 100 --epochs 300 "
                  "--validation-steps 10 --seed 3 --precision bfloat16 (stage 1: stopped by "
                  "SIGTERM after 32 epochs, 64 min on 2 CPU cores, most of it shared with the "
                  "test suite; best weights kept); then loczoo calibrate runs/decode_3d_broad "
                  "--frames 64 (threshold 0.26: Jaccard 0.402, RMSE 51.2 nm on 64 simulated "
                  "frames of the family; sigma scale 1.77 / 1.57 / 1.15)"),
    ),
}
DEFAULT_PRESET = "sim-dense-100nm"
