"""The CPU a benchmark ran on, named for its reports: outcomes depend on it beyond ATEN_CPU_CAPABILITY, since the
BLAS that PyTorch calls for matrix products (MKL on x86) picks its kernels by CPU vendor and model."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """'<model name> (<vendor>)' of the first processor in cpuinfo, else what the platform module knows."""
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model, vendor = fields.get("model name"), fields.get("vendor_id")
    if model:
        return f"{model} ({vendor})" if vendor else model
    return platform.processor() or platform.machine()
