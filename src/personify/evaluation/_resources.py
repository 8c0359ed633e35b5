"""Process resource probes for per-model fit measurements (Linux ``/proc``; NaN elsewhere)."""

from __future__ import annotations


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB since start or the last ``reset_peak``."""
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark so each fit is measured on its own."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as fh:
            fh.write("5")
    except OSError:
        pass
