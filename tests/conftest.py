"""Shared test setup: quick mode, quiet TensorFlow, a headless matplotlib."""

import os

os.environ.setdefault("DIDLEARN_QUICK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
