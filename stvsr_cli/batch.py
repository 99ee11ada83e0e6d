"""A folder at once: ``stvsr upscale IN_DIR OUT_DIR`` upscales every video in ``IN_DIR`` (not
its subfolders) into ``OUT_DIR`` under the same file name, one after the other.

Each file is an ordinary ``upscale_video`` run with the same options. Files that are not
videos are skipped with a note; a file whose output already exists is skipped too (unless
``--overwrite``), so that a batch run again after an interruption goes on where it stopped
(with ``--resume``, inside the file it stopped in as well). One file's failure does not stop
the others; an interruption (Ctrl-C, SIGTERM) stops the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .distributed import Ranks, gather, process_group
from .errors import InputError, Interrupted, OutputError, StvsrError, Terminated
from .files import natural_key

# files with these extensions are meant to be videos: one FFmpeg cannot open is a failure
VIDEO_SUFFIXES = {
    ".mp4",
    ".m4v",
    ".mkv",
    ".mov",
    ".avi",
    ".webm",
    ".mpg",
    ".mpeg",
    ".ts",
    ".m2ts",
    ".mts",
    ".wmv",
    ".flv",
    ".nut",
    ".y4m",
    ".3gp",
    ".ogv",
    ".vob",
    ".mxf",
    ".dv",
}


def is_folder_job(src: Path, dst: Path) -> bool:
    """A folder of videos into a folder: the input is a folder and the output names one (an
    existing folder, or a name without an extension that is not a picture pattern)."""
    return src.is_dir() and (dst.is_dir() or (not dst.suffix and "%" not in dst.name))


@dataclass
class FileResult:
    input: Path
    output: Path
    status: str  # "done", "failed", "skipped"
    note: str = ""
    summary: Any = None  # the run's Summary when done
    exit_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        if self.summary is not None:
            return self.summary.to_dict()
        out = {"ok": self.status != "failed", "status": self.status, "input": str(self.input)}
        out.update(output=str(self.output), note=self.note)
        return out | ({"error": self.note, "exit_code": self.exit_code} if self.status == "failed" else {})


@dataclass
class FolderResult:
    files: list[FileResult] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        counts = {s: sum(f.status == s for f in self.files) for s in ("done", "failed", "skipped")}
        return {"ok": not self.failed, **counts, "files": [f.to_dict() for f in self.files]}


def upscale_folder(
    src: Path,
    dst: Path,
    options,
    progress: Callable[[], Any] | None = None,
    announce=lambda text: None,
    ranks: Ranks | None = None,
) -> FolderResult:
    """Upscale every video in ``src`` into ``dst`` (created if missing). ``progress()`` makes a
    progress reporter for each file (closed after it); ``announce(text)`` tells what starts.

    Under ``torchrun`` (``ranks``) every process calls this alike: process ``r`` upscales the
    videos ``i`` with ``i % world == r``, each whole on its own device, and every process gets
    the whole folder's result (rank 0 reports it)."""
    if ranks is None:
        return _upscale_files(src, dst, options, progress, announce, lambda i: True)
    from dataclasses import replace

    device = ranks.device(options.device)
    with process_group(device):
        mine = _upscale_files(
            src, dst, replace(options, device=str(device)), progress, announce, lambda i: i % ranks.world == ranks.rank
        )
        shares = gather(mine)
    merged = FolderResult()
    for share in zip(*(s.files for s in shares), strict=True):  # each entry: a file as every process saw it
        made = [f for f in share if f.status != "skipped" or f.note != _OTHERS]
        merged.files.append(made[0] if made else share[0])
    return merged


_OTHERS = "another process's"


def _upscale_files(src: Path, dst: Path, options, progress, announce, is_mine) -> FolderResult:
    from dataclasses import replace

    from .pipeline import upscale_video
    from .video import probe

    if not src.is_dir():
        raise InputError(f"input folder not found: {src}")
    if dst.exists() and not dst.is_dir():
        raise OutputError(f"output is a file, not a folder: {dst}")
    if dst.resolve() == src.resolve():
        raise OutputError(f"output folder is the input folder: {dst} (the outputs would replace the inputs)")
    files = sorted(
        (p for p in src.iterdir() if p.is_file() and not p.name.startswith(".")), key=lambda p: natural_key(p.name)
    )
    dst.mkdir(parents=True, exist_ok=True)
    result = FolderResult()
    # which files are videos: those FFmpeg opens as one; a damaged file with a video's extension
    # is a failure, anything else it cannot open is skipped
    kinds: dict[Path, tuple[str, str]] = {}
    for path in files:
        try:
            probe(path)
            kinds[path] = ("video", "")
        except InputError as e:
            damaged = path.suffix.lower() in VIDEO_SUFFIXES
            kinds[path] = ("failed", str(e)) if damaged else ("skipped", "not a video")
    total = sum(kind == "video" for kind, _ in kinds.values())
    done = 0
    for path in files:
        out = dst / path.name
        kind, note = kinds[path]
        if kind != "video":
            result.files.append(FileResult(path, out, kind, note, exit_code=1 if kind == "failed" else 0))
            continue
        done += 1
        if not is_mine(done - 1):
            result.files.append(FileResult(path, out, "skipped", _OTHERS))
            continue
        if out.exists() and not options.overwrite:
            result.files.append(FileResult(path, out, "skipped", "output exists (--overwrite redoes it)"))
            continue
        announce(f"[{done}/{total}] {path.name}")
        reporter = progress() if progress is not None else None
        try:
            summary = upscale_video(path, out, replace(options), progress=reporter)
            result.files.append(FileResult(path, out, "done", summary=summary))
        except (Interrupted, Terminated) as e:
            result.files.append(FileResult(path, out, "failed", str(e), exit_code=e.exit_code))
            raise BatchStopped(result, e) from None
        except StvsrError as e:
            result.files.append(FileResult(path, out, "failed", str(e), exit_code=e.exit_code))
        finally:
            if reporter is not None:
                reporter.close()
    return result


class BatchStopped(Exception):
    """The batch was interrupted: what it did so far, and the interruption (its exit code)."""

    def __init__(self, result: FolderResult, cause: StvsrError):
        super().__init__(str(cause))
        self.result = result
        self.cause = cause
