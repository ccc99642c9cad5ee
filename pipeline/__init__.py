"""Stage entry points and everything that is not a neural network.

Every module named after a DVC stage exposes a docstringed worker function that takes plain values and a
``main(argv)`` that parses the command line written in ``dvc.yaml``.
"""
import os

# The pipeline never talks to a model hub: every model is shipped in a PyPI package or is a local path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
