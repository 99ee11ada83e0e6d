"""The allocator settings: a process that frees and re-allocates the same large tensors every
frame must reuse its memory instead of faulting it in from the kernel again."""

import importlib
import subprocess
import sys

import pytest

# a "frame": tensors of 4..28 MiB (under the 32 MiB mmap threshold), allocated, used, freed;
# prints the minor page faults of 10 frames after a first one
FRAMES = """
import resource, sys, torch
from stvsr_cli.allocator import keep_freed_memory
tuned = keep_freed_memory() if sys.argv[1] == "tuned" else None
def frame():
    xs = [torch.ones(m * 2**18) for m in (4, 12, 20, 8, 28, 16)]
    return float(sum(x.sum() for x in xs))
frame()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    frame()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", FRAMES, mode], capture_output=True, text=True, check=True)
    took, count = out.stdout.split()
    return took, int(count)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_reused_across_frames():
    _, plain = faults("plain")
    took, tuned = faults("tuned")
    assert took == "True"
    pages = 10 * 88 * 2**20 // 4096  # every frame's memory faulted in again
    assert plain > pages // 2  # glibc's defaults (the case the settings are for)
    assert tuned < pages // 10


def test_cli_entry_point_applies_the_settings(monkeypatch):
    app_module = importlib.import_module("stvsr_cli.cli.app")  # the module (the package exports the app)

    calls = []
    monkeypatch.setattr("stvsr_cli.allocator.keep_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(app_module, "app", lambda: None)
    app_module.main()
    assert calls == [1]
