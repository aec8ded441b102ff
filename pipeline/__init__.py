"""Reproducible pipeline for Kaggle text-classification competitions.

Stages (each a ``python -m pipeline <stage>`` subcommand called from ``dvc.yaml``):
fingerprint → fetch → prepare → tokenize → embed → encode → tune → train → ensemble →
report → summary → submissions; ``submit`` sends a file to Kaggle by hand.
"""

__version__ = "0.1.0"

# TensorFlow/Keras loggers and warnings that drown the pipeline's own lines unless -v.
_NOISY_LOGGERS = ("tensorflow", "absl", "keras", "h5py")


def configure_logging(verbose: bool = False, prefix: str = "") -> None:
    """Our log lines on stderr (``prefix`` after the level); with ``verbose`` also debug lines
    and TensorFlow's C++ and Python logs, which are otherwise off."""
    import logging
    import os
    import sys
    import warnings

    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read when TensorFlow is imported
        for name in _NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        for module in ("tensorflow", "keras", "absl"):
            warnings.filterwarnings("ignore", module=rf"{module}(\.|$)")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        datefmt="%H:%M:%S",
        format=f"%(asctime)s %(levelname)s {prefix}%(message)s",
        stream=sys.stderr,
    )
