"""Protein subcellular localization: the cell-pattern simulator."""
