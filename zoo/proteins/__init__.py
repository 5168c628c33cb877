"""Protein subcellular localization, shared by every classification entry: labelled images,
resizing to a network's input and back, folds and explanation overlays (``images``), readers
for class folders and image lists (``folders``) and the cell-pattern simulator (``simulate``)."""
