"""PLCNN: protein subcellular localization classification."""
