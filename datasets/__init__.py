"""tensorflow-datasets builders of loczoo, one package per builder. Importing a package
registers its builder with tfds:

    import loczoo.datasets.protein_localization
    tfds.load("protein_localization/hela_2d", data_dir=..., download_and_prepare_kwargs=...)
"""
