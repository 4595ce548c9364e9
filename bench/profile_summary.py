"""Summarise a py-spy ``--format raw`` profile (collapsed stacks: ``f1;f2;...;fn COUNT``).

    python -m bench.profile_summary bench/results/profile-pull.txt [--top 25]

Prints where the samples are: by leaf function (self time), and inclusive time of the project's
own functions (``integration_service/``, ``workers/``) and of a few libraries, so a reader can see
which call of the service the time goes to.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")
PROJECT_PREFIXES = ("integration_service/", "workers/", "bench/")


def _short(frame: str) -> tuple[str, str]:
    """(function and file without line, file path)."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    path = m["file"]
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m['func']} ({path})", path


_WAIT_LEAVES = ("select", "poll", "wait", "recv", "readinto", "read (", "_recv", "accept", "sleep", "acquire")
JOB_MARKERS = ("sync/runner.py", "_page_or_error")


def summarise(path: Path, top: int = 25, job_only: bool = False, cpu_only: bool = False) -> dict[str, Any]:
    """``job_only``: only stacks of a sync job (its thread and its page-fetching threads);
    ``cpu_only``: leave out samples whose leaf frame is a wait (socket read, poll, lock)."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    library: Counter[str] = Counter()
    total = 0
    idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        if job_only and not any(m in stack for m in JOB_MARKERS):
            continue
        leaf_raw = stack.rsplit(";", 1)[-1]
        if cpu_only and any(k in leaf_raw.split(" (", 1)[0].lower() for k in _WAIT_LEAVES):
            continue
        total += count
        frames = [_short(f) for f in stack.split(";") if f.strip()]
        # py-spy puts "process NNN:..." and "thread (...)" pseudo-frames first
        frames = [f for f in frames if not f[0].startswith(("process ", "thread "))]
        if not frames:
            continue
        leaf = frames[-1][0]
        self_time[leaf] += count
        if any(k in leaf.split(" (", 1)[0].lower() for k in _WAIT_LEAVES):
            idle += count
        seen: set[str] = set()
        seen_lib: set[str] = set()
        for name, file in frames:
            if file.startswith(PROJECT_PREFIXES) and name not in seen:
                inclusive[name] += count
                seen.add(name)
            lib = file.split("/", 1)[0] if "/" in file else file
            if lib and lib not in seen_lib:
                library[lib] += count
                seen_lib.add(lib)

    def pct(n: int) -> float:
        return round(100.0 * n / total, 1) if total else 0.0

    return {
        "samples": total,
        "job_only": job_only,
        "cpu_only": cpu_only,
        "waiting_samples_pct": pct(idle),
        "top_self": [{"frame": k, "pct": pct(v)} for k, v in self_time.most_common(top)],
        "top_project_inclusive": [{"frame": k, "pct": pct(v)} for k, v in inclusive.most_common(top)],
        "top_packages_inclusive": [{"package": k, "pct": pct(v)} for k, v in library.most_common(top)],
    }


# (label, markers): the first label whose marker is in a stack of the job's own thread names
# what that thread was doing; order matters (storing a page includes its commit).
SYNC_THREAD_PHASES = (
    ("storing a page: flush + COMMIT (the INSERTs/UPDATEs, PostgreSQL)", ("_store_page", "Session.commit")),
    ("storing a page: upsert (SELECT existing + ORM objects)", ("_store_page",)),
    ("heartbeat / progress (UPDATE + COMMIT)", ("Progress.report",)),
    ("heartbeat / progress (UPDATE + COMMIT)", ("heartbeat (",)),
    ("marking missing posts (UPDATE)", ("_mark_missing",)),
    ("fetching page 1 / waiting for the next page from WordPress", ("pages (",)),
    ("client setup, discovery (/wp-json/, types, taxonomies)", ("client_for", "discover (", "_load_types")),
    ("claiming / finishing the job", ("claim (", "finish (", "_record_outcome")),
)


def sync_thread_breakdown(path: Path) -> dict[str, Any]:
    """Wall-clock split of the job's own thread (needs a profile recorded with ``--idle``):
    stacks through ``sync/runner.py`` that are not in a page-fetching pool thread."""
    phases: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not count_s.isdigit() or "sync/runner.py" not in stack or "concurrent/futures/thread.py" in stack:
            continue
        count = int(count_s)
        total += count
        label = "other"
        for name, markers in SYNC_THREAD_PHASES:
            if (
                all(m in stack for m in markers)
                if name.startswith("storing a page: flush")
                else any(m in stack for m in markers)
            ):
                label = name
                break
        phases[label] += count
    return {
        "samples": total,
        "phases": [{"phase": k, "pct": round(100.0 * v / total, 1)} for k, v in phases.most_common()] if total else [],
    }


def render_breakdown(breakdown: dict[str, Any]) -> str:
    out = [f"the sync job's own thread, wall clock ({breakdown['samples']} samples):"]
    out += [f"  {row['pct']:5.1f}%  {row['phase']}" for row in breakdown["phases"]]
    return "\n".join(out)


def render(summary: dict[str, Any]) -> str:
    out = [
        f"samples: {summary['samples']}  (in waits/reads/polls: {summary['waiting_samples_pct']}%)",
        "",
        "self time (leaf frames):",
    ]
    out += [f"  {row['pct']:5.1f}%  {row['frame']}" for row in summary["top_self"]]
    out += ["", "inclusive time, project functions:"]
    out += [f"  {row['pct']:5.1f}%  {row['frame']}" for row in summary["top_project_inclusive"]]
    out += ["", "inclusive time, by package/module:"]
    out += [f"  {row['pct']:5.1f}%  {row['package']}" for row in summary["top_packages_inclusive"]]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(render_breakdown(sync_thread_breakdown(args.profile)))
    print()
    print(render(summarise(args.profile, args.top, job_only=True, cpu_only=True)))


if __name__ == "__main__":
    main()
