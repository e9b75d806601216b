"""What a benchmark ran on. The development machines are lent VMs whose CPU changes from one
session to the next (Intel with AMX, AMD EPYC with AVX-512 BF16 only), and embedding speed
depends on it, so every benchmark result names its CPU."""

import os
from pathlib import Path

# the instruction sets the embedding runtimes choose between (bf16 matrix units, bf16 dot
# products, int8 dot products)
FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")


def _cpuinfo(cpuinfo: Path) -> tuple[str, set[str]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; ("", set()) where unreadable."""
    model, flags = "", set()
    try:
        text = cpuinfo.read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """Every instruction-set flag the CPU reports."""
    return _cpuinfo(cpuinfo)[1]


def describe(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """{"cpu": model name, "cores": usable cores, "flags": those of FLAGS the CPU has}."""
    model, flags = _cpuinfo(cpuinfo)
    return {
        "cpu": model or "unknown",
        "cores": len(os.sched_getaffinity(0)),
        "flags": [flag for flag in FLAGS if flag in flags],
    }
