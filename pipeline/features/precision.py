"""The transformer's numeric precision: ``transformer.precision`` → a Keras dtype policy.

``bfloat16`` runs the encoder's matrix products in bfloat16 (Keras ``mixed_bfloat16``:
weights and optimizer state stay float32, layer outputs are bfloat16); ``float32`` runs all
in float32; ``auto`` picks bfloat16 where the hardware has bfloat16 matrix units (a CPU with
``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``, which TensorFlow's oneDNN kernels use;
a GPU of compute capability 8.0 or newer) and float32 elsewhere. The callers keep the
numerically delicate parts in float32 (pooling sums, the head's logits, the loss).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # bfloat16 matrix / dot-product units oneDNN uses
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


@dataclass(frozen=True)
class Precision:
    """The precision chosen (``float32`` / ``bfloat16``) and why."""

    name: str
    reason: str

    @property
    def policy(self) -> str:
        """The Keras dtype policy of the encoder's layers."""
        return POLICIES[self.name]

    def describe(self) -> dict:
        return {"precision": self.name, "precision_reason": self.reason}


def cpu_bf16_flags(cpuinfo: str) -> list[str]:
    """The bfloat16 flags (:data:`CPU_FLAGS`) on the first ``flags`` line of a ``/proc/cpuinfo`` text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags = set(value.split())
            return [f for f in CPU_FLAGS if f in flags]
    return []


def _read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux
        return ""


def _bf16_gpus() -> list[str]:
    """Names of visible GPUs of compute capability >= 8.0 (bfloat16 tensor cores)."""
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        if tuple(details.get("compute_capability", (0, 0))) >= (8, 0):
            found.append(details.get("device_name", gpu.name))
    return found


def choose_precision(setting: str, cpuinfo: str | None = None, gpus: list[str] | None = None) -> Precision:
    """``transformer.precision`` resolved on this machine (or on the ``cpuinfo`` text and
    ``gpus`` given); logs the choice and its reason."""
    if setting in POLICIES:
        chosen = Precision(setting, "set by transformer.precision")
    elif setting == "auto":
        gpus = _bf16_gpus() if gpus is None else gpus
        flags = cpu_bf16_flags(_read_cpuinfo() if cpuinfo is None else cpuinfo)
        if gpus:
            chosen = Precision("bfloat16", f"auto: GPU with bfloat16 units ({', '.join(gpus)})")
        elif flags:
            chosen = Precision("bfloat16", f"auto: CPU has bfloat16 units ({', '.join(flags)})")
        else:
            chosen = Precision(
                "float32", f"auto: no bfloat16 matrix units (no GPU >= 8.0, no {' / '.join(CPU_FLAGS)})"
            )
    else:
        raise ValueError(f"transformer.precision must be auto, float32 or bfloat16, got {setting!r}")
    log.info("transformer precision: %s (%s)", chosen.name, chosen.reason)
    return chosen
