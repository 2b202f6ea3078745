"""Shared test settings: CPU, deterministic, no progress bars."""

import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("GAN_LAB_PROGRESS", "0")
