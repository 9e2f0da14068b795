"""Helpers shared by the benchmark scripts' report writers (imported via PYTHONPATH=benches)."""
import platform
import subprocess


def cpu_model():
    """The CPU's model name, for the report header."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git(*args):
    """Output of a git command, or "" when git is unavailable."""
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""
