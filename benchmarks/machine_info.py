"""What every benchmark records beside its figures: the machine (CPU model, cores, GPU)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name, with its family and model numbers: cloud VMs often report only
    "AMD EPYC", which covers generations of different speed (Zen 3 is family 25 model 1, Zen 4
    family 25 model 17)."""
    try:
        fields = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        if "model name" in fields:
            return f"{fields['model name']} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')})"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    """'<CPU model>, <n> cores (<m> usable)[, <GPU>]': one line naming the machine."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = f"{cpu_model()}, {os.cpu_count()} cores ({usable} usable)"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name()}"
    except ImportError:
        pass
    return text


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages as 'a/b/c' (recorded before and after a measurement)."""
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def write_measurements(path: Path, rows: list[dict], header_lines: list[str]) -> None:
    """A TSV of ``rows`` (same keys each) under '# '-prefixed header lines (machine, load, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        handle.writelines(f"# {line}\n" for line in header_lines)
        handle.write("\t".join(rows[0]) + "\n")
        for row in rows:
            handle.write("\t".join(str(value) for value in row.values()) + "\n")
