"""Logging for every process: our lines on stderr, TensorFlow's quiet unless ``-v``."""

import importlib.abc
import os
import re
import sys
import tempfile
from contextlib import contextmanager

# TensorFlow/Keras loggers and warnings that drown the pipeline's own lines unless -v.
_NOISY_LOGGERS = ("tensorflow", "absl", "keras", "h5py")
# What TensorFlow's C++ libraries print while they load, before TF_CPP_MIN_LOG_LEVEL is read
# (two of each per process): absl's pre-initialisation warning, and its INFO/WARNING lines
# ("I0000 00:00:... port.cc:153] oneDNN custom operations are on ..."). Errors pass through.
_IMPORT_NOISE = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
)


@contextmanager
def _drop_noise_on_fd2():
    """Run the block with file descriptor 2 (C++ writes there too) captured; then write back
    every captured line but the :data:`_IMPORT_NOISE` ones, in order."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line for line in captured.read().splitlines(keepends=True) if not _IMPORT_NOISE.match(line)
            ]
            os.write(2, b"".join(kept))


class _QuietLoader(importlib.abc.Loader):
    """The real loader of ``tensorflow``, executing the module with :func:`_drop_noise_on_fd2`."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: the real loader's
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with _drop_noise_on_fd2():
            self._loader.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports ``tensorflow`` (wherever first imported: keras, our code) with its load-time
    lines dropped. Setting TF_ENABLE_ONEDNN_OPTS=0 would silence oneDNN too, but changes
    the numbers."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        for finder in sys.meta_path:  # the finders after this one locate it
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def _quiet_tensorflow_import(quiet: bool) -> None:
    hooks = [hook for hook in sys.meta_path if isinstance(hook, _QuietTensorFlowImport)]
    for hook in hooks:
        sys.meta_path.remove(hook)
    if quiet and "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def configure_logging(verbose: bool = False, prefix: str = "") -> None:
    """Our log lines on stderr (``prefix`` after the level); with ``verbose`` also debug lines
    and TensorFlow's C++ and Python logs, which are otherwise off. Every process calls it
    (the CLI, each worker) before anything imports TensorFlow."""
    import logging
    import warnings

    _quiet_tensorflow_import(not verbose)
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
