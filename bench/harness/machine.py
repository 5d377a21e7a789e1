"""What the report says about the host: cores, memory, CPU, kernel, load."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def machine() -> dict[str, str]:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    memory = ""
    free = subprocess.run(["free", "-b"], capture_output=True, text=True, check=False).stdout
    for line in free.splitlines():
        if line.startswith("Mem:"):
            memory = f"{int(line.split()[1]) / 2**30:.1f} GiB"
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": cores or str(os.cpu_count()),
        "memory": memory,
        "cpu": model or platform.processor(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
