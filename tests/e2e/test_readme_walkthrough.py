"""README.md's walkthrough, run as a new user runs it: the commands of "First run walkthrough",
"Connect a local WordPress" and "Sync", taken from the README itself, against ``scripts/dev.sh``
on the embedded default (its own instance directory, free port) and the README's own WordPress
site; every output the README shows must be what they printed.

A shown output is a ``# {...}`` comment under a command (an optional ``201 Created:``-style
prefix, continuation lines ``#  ...``) or a ``json`` block; a string ``"..."`` (or one ending in
``...``) stands for a value that differs per run (a prefix before the dots must match), a bare
``...`` among an object's keys for keys not shown, ``[...]`` for any list. The
outputs must appear in the README's order. Isolation: ``WALKTHROUGH_WP_NAME`` (default
``walkthrough`` plus ``E2E_WP_NAME``'s suffix) and a free port for WordPress and for the service.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.service_server import free_port
from tests.support import wordpress
from tests.support.dev_script import REPO_ROOT, start_dev_sh, stop_dev_sh, user_env, wait_for_url

pytestmark = pytest.mark.e2e

README = REPO_ROOT / "README.md"
SECTIONS = ("## First run walkthrough", "## Connect a local WordPress", "## Sync")
README_PORT, README_WP_NAME, README_WP_PORT = "5000", "walkthrough", "8882"
RUN_TIMEOUT = 900  # a first WordPress start installs Debian packages


def _section(text: str, title: str) -> str:
    start = text.index(title + "\n")
    following = text.find("\n## ", start + len(title))
    return text[start : following if following != -1 else len(text)]


def walkthrough_blocks() -> list[tuple[str, str]]:
    """(language, body) of every fenced block of the walkthrough sections, in order."""
    text = README.read_text()
    blocks = []
    for title in SECTIONS:
        blocks += re.findall(r"^```(\w+)\n(.*?)^```", _section(text, title), flags=re.M | re.S)
    return blocks


def shown_outputs(blocks: list[tuple[str, str]], substitute) -> list[Any]:
    """The outputs the README shows, parsed, in order."""
    shown: list[Any] = []
    for language, body in blocks:
        if language == "json":
            shown.append(json.loads(_with_wildcards(substitute(body))))
            continue
        lines = body.splitlines()
        for index, line in enumerate(lines):
            match = re.match(r"^# (?:[^{\[\"]*?)([{\[].*)$", line)
            if not match or line.startswith("#  "):  # continuation lines are read below
                continue
            text = match.group(1)
            for following in lines[index + 1 :]:
                if not following.startswith("#  "):
                    break
                text += " " + following[1:].strip()
            with contextlib.suppress(json.JSONDecodeError):  # a comment that shows no output
                shown.append(json.JSONDecoder().raw_decode(_with_wildcards(substitute(text)))[0])
    return shown


def _with_wildcards(text: str) -> str:
    """The README's elisions as JSON: ``{...,"id":1,...}`` (more keys) and ``[...]`` (any list)."""
    text = re.sub(r"(?<=[{,])\.\.\.(?=[,}])", '"...":"..."', text)
    return text.replace("[...]", '["..."]')


def printed_outputs(stdout: str) -> list[Any]:
    """Every JSON value the commands printed, in order."""
    decoder = json.JSONDecoder()
    values, position = [], 0
    while position < len(stdout):
        if stdout[position] in "{[":
            try:
                value, end = decoder.raw_decode(stdout, position)
            except json.JSONDecodeError:
                position += 1
                continue
            values.append(value)
            position = end
        else:
            position += 1
    return values


def matches(shown: Any, printed: Any) -> bool:
    if isinstance(shown, str) and shown.endswith("..."):
        return isinstance(printed, str) and printed.startswith(shown[:-3])
    if isinstance(shown, dict):
        keys = shown.keys() - {"..."}
        return (
            isinstance(printed, dict)
            and (keys <= printed.keys() if "..." in shown else keys == printed.keys())
            and all(matches(shown[key], printed[key]) for key in keys)
        )
    if shown == ["..."]:
        return isinstance(printed, list)
    if isinstance(shown, list):
        return (
            isinstance(printed, list)
            and len(shown) == len(printed)
            and all(matches(a, b) for a, b in zip(shown, printed, strict=True))
        )
    return shown == printed and type(shown) is type(printed)


def _wp_name() -> str:
    explicit = os.environ.get("WALKTHROUGH_WP_NAME")
    if explicit:
        return explicit
    tag = os.environ.get("E2E_WP_NAME", "e2e").removeprefix("e2e").lstrip("_-")
    return f"{README_WP_NAME}_{tag}" if tag else README_WP_NAME


@pytest.fixture
def dev_server(tmp_path: Path):
    """``scripts/dev.sh`` on the embedded default, in its own instance directory and port."""
    port = free_port()
    env = user_env(PORT=str(port), INSTANCE_PATH=str(tmp_path / "instance"), ENV_FILE=str(tmp_path / ".env"))
    log_path = tmp_path / "dev.log"
    process = start_dev_sh([], env, log_path)
    try:
        wait_for_url(f"http://127.0.0.1:{port}/healthz", process, log_path)
        yield port, env, log_path
    finally:
        stop_dev_sh(process)


def test_the_readme_walkthrough_prints_what_the_readme_shows(dev_server) -> None:
    reason = wordpress.wordpress_unavailable_reason() or (None if shutil.which("jq") else "jq is not installed")
    if reason:
        if os.environ.get("REQUIRE_E2E"):
            pytest.fail(f"the README walkthrough cannot run: {reason}")
        pytest.skip(f"README walkthrough skipped: {reason}")
    port, env, log_path = dev_server
    wp_name, wp_port = _wp_name(), str(free_port())

    def substitute(text: str) -> str:
        return (
            text.replace(f"127.0.0.1:{README_PORT}", f"127.0.0.1:{port}")
            .replace(f"127.0.0.1:{README_WP_PORT}", f"127.0.0.1:{wp_port}")
            .replace(f"--name {README_WP_NAME} ", f"--name {wp_name} ")
            .replace(f"--port {README_WP_PORT} ", f"--port {wp_port} ")
            .replace(f"IGNY8 E2E {README_WP_NAME}", f"IGNY8 E2E {wp_name}")
        )

    blocks = walkthrough_blocks()
    commands = [substitute(body) for language, body in blocks if language == "bash"]
    # The first block starts the service; the fixture runs it.
    assert commands[0].strip() == "scripts/dev.sh"
    script = "set -eo pipefail\n" + "\n".join(commands[1:])
    try:
        proc = subprocess.run(
            ["bash", "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
            timeout=RUN_TIMEOUT, check=False,
        )  # fmt: skip
    finally:
        wordpress.stop_site(wp_name)  # its port was free for this run only
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"

    if os.environ.get("WALKTHROUGH_OUTPUT"):  # a file to keep what the commands printed
        Path(os.environ["WALKTHROUGH_OUTPUT"]).write_text(proc.stdout)
    shown = shown_outputs(blocks, substitute)
    printed = printed_outputs(proc.stdout)
    assert len(shown) >= 10, shown  # the README's outputs were all found
    position = 0
    for expected in shown:
        found = next((i for i in range(position, len(printed)) if matches(expected, printed[i])), None)
        assert found is not None, (
            f"the README shows {json.dumps(expected)}, but the commands printed (from there on):\n"
            + "\n".join(json.dumps(value) for value in printed[position:])
        )
        position = found + 1
    timing = re.search(r"finished (\d+) ms after the POST", proc.stdout)
    assert timing, proc.stdout[-2000:]
    print(f"README walkthrough: sync finished {timing.group(1)} ms after the POST")  # shown with -s
    # The embedded default runs beat inside the worker (celery worker -B).
    assert "beat: Starting..." in log_path.read_text(errors="replace")
