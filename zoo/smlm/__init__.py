"""Shared SMLM stages: simulation, targets, post-processing, localization tables, I/O, metrics.

Submodules are imported explicitly (``from loczoo.smlm import metrics``) so that modules which
need no TensorFlow (io, metrics, localizations) stay fast to import.
"""
