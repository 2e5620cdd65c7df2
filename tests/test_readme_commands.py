"""The README's Quick start and the commands it prints, run as a new user would, on a fresh
copy of the repository (issue 13 item 7, "First run").

What the main test does, in a temporary folder:

- copies the working tree (`git ls-files -co --exclude-standard`: the committed files and
  the uncommitted ones, never `.venv` or `data/`) into `clone/`, and the Superstore file
  (or, without ../shared/data, a small file of its columns) into `shared/data/` beside it,
  where the README's import command looks for it;
- runs `./dev up` there in the background: a new `.venv` from requirements-dev.txt (pip's
  usual cache is used when it has one; measured on this 2-core machine: 77-83 s, whether the
  cache is cold or warm, since the package index answers here are not cached), index setup,
  the sample data and the API; waits until `/health` answers and the API answers with
  `dev-read-key`; then a second `./dev up`, which must say where the first runs and exit 0;
- runs every command of the README's bash blocks in the order printed, from the clone's
  root, with the variables the blocks set (`KEY`, `R`, `K`): each `curl` must get a 2xx
  (streams, `curl -N`, for 5 s) and every field of the `# -> {...}` answer printed under it;
  `<id>` is the report the block generated (waited for until completed); each `./dev run`
  must exit 0;
- for the "Commands" block (a synopsis) and the `./dev run X` spans of the prose: runs each
  synopsis line that has no placeholder as printed, and `./dev run X --help` for the others,
  so every command named exists and starts; a prose span that runs a script with its
  arguments (`./dev run scripts/report_sample.py --url ... --key dev-read-key`) runs as printed.

Skipped, each with its reason in SKIPS (printed at the end): `./dev test` and its variants
(the suite itself: `.ci/run` runs it), `./dev lint` (`.ci/run` runs it first), Docker
Compose (no Docker engine here), Kibana (cannot run here), the million-order seed (minutes;
the same generator as `./dev run seed`), `scripts/vendor_assets.py` (fetches from npm),
`./dev shell` (interactive) and `es stop` (the node is shared with the other tests).

What is not the new user's: the clone's Elasticsearch is the node the tests already run
(`ES_LOCAL_DIR` points at its data dir, so `./dev up` finds it running and starts none; the
fetch of the distribution is not exercised here), the API listens on a free port instead of
8000 (the commands' `http://127.0.0.1:8000` is replaced by it), the indices have their own
`INDEX_PREFIX` (removed afterwards), `/tmp/sample` is a temporary folder, and
`NOTIFICATIONS_IN_PROCESS=false` keeps the API from evaluating the README's example alert
and sending its webhook to hooks.example.com (creating the rules, schedules and listing
incidents and deliveries is exercised). A command added to the README that none of this
covers fails the test until it runs here or gets a reason in SKIPS.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from analytics_service.config import Settings
from analytics_service.devtools import local_es as local
from analytics_service.devtools.local_servers import free_port
from tests.conftest import SUPERSTORE

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# (pattern of a command as printed, why it is not run here)
SKIPS = [
    (r"^\./dev test\b", "the test suite itself (.ci/run runs it; about 40 minutes)"),
    (r"^\./dev lint\b", ".ci/run runs it before the tests"),
    (r"^TEST_\w+=.*\./dev test\b", "the test suite itself, on other nodes (.ci/run runs the 3-node one)"),
    (
        r"^cp \.env\.example \.env\b",
        "Docker Compose: no Docker engine here (and a .env would change the clone's settings)",
    ),
    (r"^docker compose\b", "Docker Compose: no Docker engine here"),
    (r"\bkibana (import|export)\b", "Kibana cannot run here (the client is tested with respx)"),
    (r"\bseed --orders 1000000\b", "a million orders take minutes; the same generator runs in ./dev run seed"),
    (r"scripts/vendor_assets\.py", "fetches the front-end packages from npm"),
    (r"\bes stop\b", "would stop the Elasticsearch node the other tests share"),
    (r"^\./dev shell\b", "an interactive shell"),
]
# Synopsis lines run with --help rather than as printed, though they have no placeholder.
HELP_ONLY = {"worker": "needs REDIS_URL (no Redis here)"}
PLACEHOLDER = re.compile(r"[|\[]|\b(X|FILE|DIR|N|S|D|URL|SPACE|ARGS|NAME)\b|\.\.\.")
HTTP_MARK = "__HTTP__"


@dataclass
class Command:
    text: str  # as printed, continuation lines included
    section: str
    line: int
    expected: str | None = None  # the `# -> ...` answer printed under it


def readme_blocks(text: str) -> list[tuple[str, str, int, list[str]]]:
    """Every fenced block: (language, section, line number of its first line, lines)."""
    blocks, section, lines, language, start = [], "", [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        if language is None:
            if line.startswith("#") and not line.startswith("#!"):
                section = line.lstrip("#").strip()
            fence = re.match(r"^```(\w*)\s*$", line)
            if fence:
                language, lines, start = fence.group(1), [], number + 1
        elif line.startswith("```"):
            blocks.append((language, section, start, lines))
            language = None
        else:
            lines.append(line)
    return blocks


def _complete(text: str) -> bool:
    """True when `text` is a whole shell command: no continuation, every quote closed."""
    if text.endswith("\\"):
        return False
    quote = None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#":
            break
    return quote is None


def bash_commands(text: str) -> list[Command]:
    """The commands of the README's bash blocks, in order, each with the answer printed under it."""
    commands: list[Command] = []
    for language, section, start, lines in readme_blocks(text):
        if language != "bash":
            continue
        pending: list[str] = []
        for offset, line in enumerate(lines):
            if not pending:
                stripped = line.strip()
                if stripped.startswith("# ->") and commands:
                    commands[-1].expected = stripped.removeprefix("# ->").strip()
                if not stripped or stripped.startswith("#"):
                    continue
                first = start + offset
            pending.append(line)
            joined = "\n".join(pending)
            if _complete(joined):
                commands.append(Command(joined, section, first))
                pending = []
        assert not pending, f"README line {start}: an unfinished command in a bash block"
    return commands


def synopsis(text: str) -> list[Command]:
    """The lines of the "Commands" block (a synopsis, not bash)."""
    for language, section, start, lines in readme_blocks(text):
        if section == "Commands" and language == "":
            return [Command(line, section, start + i) for i, line in enumerate(lines) if line.strip()]
    raise AssertionError('README has no "Commands" block')


def inline_dev_runs(text: str) -> tuple[set[str], list[str]]:
    """The `./dev run X ...` spans of the README's prose: the commands (or scripts) they name,
    and the whole spans that run a script with arguments and no placeholder (run as printed)."""
    prose = re.sub(r"(?ms)^```.*?^```", "", text)
    names, runnable = set(), []
    for span in re.findall(r"`(\./dev run [^`]+)`", prose):
        name = span.split()[2]
        if PLACEHOLDER.fullmatch(name) or "NAME" in name:
            continue
        names.add(name)
        with_arguments = name.startswith("scripts/") and len(span.split()) > 3 and "--help" not in span
        if with_arguments and not PLACEHOLDER.search(span) and not skip_reason(span):
            runnable.append(span)
    return names, runnable


def skip_reason(text: str) -> str | None:
    return next((why for pattern, why in SKIPS if re.search(pattern, text.strip())), None)


def test_the_quick_start_is_two_commands_and_no_command_needs_the_venv_activated():
    text = README.read_text()
    quick = [c for c in bash_commands(text) if c.section == "Quick start"]
    assert [c.text.split("#")[0].strip() for c in quick] == ["./dev up", "./dev test"]
    # `python ...` works only inside the venv: every printed command goes through ./dev.
    printed = [c.text for c in bash_commands(text)] + [c.text for c in synopsis(text)]
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for _, _, _, lines in readme_blocks(doc.read_text()):
            if not any(line.startswith("./dev shell") for line in lines):  # else they run in the venv
                printed.extend(lines)
    bare = [t for t in printed if re.match(r"^\s*(\$ )?python3? ", t) or ".venv/bin/" in t]
    assert not bare, bare


def test_every_printed_command_is_run_or_skipped_with_a_reason():
    """The classification the main test applies, without running anything."""
    for command in bash_commands(README.read_text()):
        if skip_reason(command.text):
            continue
        first = command.text.split()[0]
        assert first in ("./dev", "curl") or re.match(r"^[A-Z]+=", first), (
            f"README line {command.line}: {command.text!r} is neither run by tests/test_readme_commands.py "
            "nor in its SKIPS: make it run here or give the reason it cannot"
        )


# --- the fresh copy ---------------------------------------------------------------------

SUPERSTORE_SAMPLE = "".join(
    f"{line}\n"
    for line in (
        "Row ID,Order ID,Order Date,Ship Date,Ship Mode,Customer ID,Customer Name,Segment,Country/Region,City,"
        "State/Province,Postal Code,Region,Product ID,Category,Sub-Category,Product Name,"
        "Sales,Quantity,Discount,Profit",
        "1,US-2019-103800,03/01/19,07/01/19,Standard Class,DP-13000,Darren Powers,Consumer,United States,Houston,"
        'Texas,77095,Central,OFF-PA-10000174,Office Supplies,Paper,"Message Book, Wirebound",16.448,2,0.2,5.5512',
        "2,US-2019-112326,04/01/19,08/01/19,Standard Class,PO-19195,Phillina Ober,Home Office,United States,Naperville,"
        "Illinois,60540,Central,OFF-BI-10004094,Office Supplies,Binders,GBC Binding Combs,3.54,2,0.8,-5.487",
        "3,US-2019-112326,04/01/19,08/01/19,Standard Class,PO-19195,Phillina Ober,Home Office,United States,Naperville,"
        "Illinois,60540,Central,OFF-LA-10003223,Office Supplies,Labels,Avery 508,11.784,3,0.2,4.2717",
    )
)


def copy_working_tree(target: Path) -> None:
    """The files a clone of the working tree would have, uncommitted changes included."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file() or source.is_symlink():
            continue  # deleted in the working tree
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)


def clone_env(es_url: str, es_local_dir: Path, prefix: str) -> dict[str, str]:
    """The environment of a new user's shell: none of this session's settings or venv."""
    settings_names = {name.upper() for name in Settings.model_fields}
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in settings_names and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    venv_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(
        ELASTICSEARCH_URL=es_url,
        ES_LOCAL_DIR=str(es_local_dir),
        INDEX_PREFIX=prefix,
        NOTIFICATIONS_IN_PROCESS="false",
    )
    return env


def _get(url: str, key: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Clone:
    root: Path
    env: dict[str, str]
    api: str
    es_port: int
    log: Path
    variables: str = ""  # the assignments of the blocks run so far (KEY=..., R=...)

    def run(self, command: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", f"{self.variables}\n{command}"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _expected_pairs(expected: str) -> list[str]:
    """The scalar `"key":value` pairs of a printed answer, as compact JSON text."""
    pairs = re.findall(r'"(\w+)":\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)', expected)
    return [f'"{k}":{v}' for k, v in pairs if v != '"..."' and "<" not in v]


def check_curl(clone: Clone, command: Command, text: str) -> str:
    stream = re.search(r"\bcurl( -s)? -N\b", text) is not None
    extra = f"-w '\\n{HTTP_MARK}%{{http_code}}\\n'" + (" --max-time 5" if stream else "")
    result = clone.run(re.sub(r"^curl ", f"curl {extra} ", text), timeout=60)
    where = f"README line {command.line} ({command.section}): {command.text}"
    assert result.returncode in ((0, 28) if stream else (0,)), f"{where}\nexit {result.returncode}\n{result.stderr}"
    body, _, status = result.stdout.rpartition(HTTP_MARK)
    assert status.strip().startswith("2"), f"{where}\nHTTP {status.strip()}: {body[:2000]}"
    if command.expected:
        try:
            compact = json.dumps(json.loads(body), separators=(",", ":"))
        except ValueError:
            compact = body
        for pair in _expected_pairs(command.expected):
            assert pair in compact, f"{where}\nexpected {pair} (README: {command.expected}) in {body[:2000]}"
    output = re.search(r"(?:^|\s)-o (\S+)", text)
    if output:
        assert (clone.root / output.group(1)).stat().st_size > 0, where
    return body


def wait_for_report(clone: Clone, report_id: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        status, body = _get(f"{clone.api}/api/v1/reports/{report_id}", "dev-read-key")
        state = json.loads(body).get("status") if status == 200 else None
        if state == "completed":
            return
        assert state not in ("failed", "expired", None) and time.monotonic() < deadline, body
        time.sleep(0.5)


def start_quick_start(clone: Clone, up_args: str) -> subprocess.Popen:
    with open(clone.log, "w") as log:
        up = subprocess.Popen(
            ["bash", "-c", f"./dev up {up_args}"],
            cwd=clone.root,
            env=clone.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 360
    while _get(f"{clone.api}/health")[0] != 200:
        assert up.poll() is None, f"./dev up exited with {up.returncode}:\n{_tail(clone.log)}"
        assert time.monotonic() < deadline, f"./dev up: no /health in time:\n{_tail(clone.log)}"
        time.sleep(1)
    status, body = _get(f"{clone.api}/api/v1/analytics/dashboard", "dev-read-key")
    assert status == 200, f"the API with dev-read-key: HTTP {status} {body[:500]}"
    return up


def stop_quick_start(up: subprocess.Popen) -> None:
    """Ctrl-C, as the README says; only the process this test started (its own session)."""
    if up.poll() is None:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


def test_the_readme_runs_as_printed_on_a_fresh_clone(es_connection, prefix, tmp_path_factory):
    es_url = es_connection["url"]
    es_port = int(es_url.rsplit(":", 1)[1])
    es_local_dir = Path(es_connection["es_local_dir"]).resolve()
    if not es_url.startswith("http://127.0.0.1:") or not local.status(es_port, es_local_dir).running:
        pytest.skip("the Quick start needs the local node of ES_LOCAL_DIR (not an ELASTICSEARCH_URL cluster)")
    started = time.monotonic()
    work = tmp_path_factory.mktemp("readme")
    root = work / "clone"
    copy_working_tree(root)
    (work / "shared" / "data").mkdir(parents=True)
    superstore = work / "shared" / "data" / "superstore_2019_2022.csv"
    if SUPERSTORE.is_file():
        shutil.copy(SUPERSTORE, superstore)
    else:
        superstore.write_text(SUPERSTORE_SAMPLE, encoding="utf-8")
    sample_out = work / "sample"
    api_port = free_port()
    clone = Clone(
        root, clone_env(es_url, es_local_dir, prefix), f"http://127.0.0.1:{api_port}", es_port, work / "up.log"
    )
    es_flag = f" --es-port {es_port}" if es_port != 9200 else ""
    text = README.read_text()
    ran: list[str] = []
    skipped: list[str] = []
    timings: dict[str, float] = {}

    def substitute(command: str) -> str:
        return (
            command.replace("http://127.0.0.1:8000", clone.api)
            .replace("/tmp/sample", str(sample_out))
            .replace("./dev run es status", f"./dev run es status --port {es_port}")
        )

    up = start_quick_start(clone, f"--port {api_port}{es_flag}")
    timings["./dev up (new .venv, setup, sample data, API answering)"] = time.monotonic() - started
    try:
        # A second ./dev up while the first runs: says where, changes nothing, exits 0.
        second = clone.run(f"./dev up --port {api_port}{es_flag}", timeout=120)
        assert second.returncode == 0, second.stdout + second.stderr
        assert f"the service is already running at {clone.api} (pid {up.pid})" in second.stdout, second.stdout
        assert "nothing was changed" in second.stdout and "API keys" not in second.stdout
        assert up.poll() is None and _get(f"{clone.api}/health")[0] == 200
        ran.append("./dev up (a second time: 'already running')")

        report_id = None
        for command in bash_commands(text):
            reason = skip_reason(command.text)
            if command.text.strip().startswith("./dev up"):
                ran.append(f"{command.text.strip()}  (above, in the background)")
                continue
            if reason:
                skipped.append(f"{command.text.splitlines()[0].strip()}  -- {reason}")
                continue
            runnable = substitute(command.text)
            if re.match(r"^[A-Z]+=('[^']*'|\"[^\"]*\"|\S+)(\s+#.*)?$", runnable.strip()):  # KEY=..., R='...'
                clone.variables += runnable.split("#")[0].strip() + "\n"
                continue
            if "<id>" in runnable:
                assert report_id, f"README line {command.line}: <id> before any report was generated"
                wait_for_report(clone, report_id)
                runnable = runnable.replace("<id>", report_id)
            began = time.monotonic()
            if runnable.startswith("curl "):
                body = check_curl(clone, command, runnable)
                if "/reports/generate" in runnable:
                    report_id = json.loads(body)["report_id"]
            else:
                result = clone.run(runnable)
                assert result.returncode == 0, (
                    f"README line {command.line} ({command.section}): {command.text}\n"
                    f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
                )
                if "import-csv" in runnable:
                    assert "orders into store 'default' (index prefix " + prefix in result.stdout, result.stdout
                    assert "no --store-id given" in result.stdout
                if "--out " in runnable:
                    assert any(sample_out.iterdir()), f"{runnable}: wrote nothing"
            timings[command.text.splitlines()[0][:70]] = time.monotonic() - began
            ran.append(command.text.splitlines()[0].strip())

        # The synopsis of "Commands", and the commands the prose names.
        helped = set()
        for line in synopsis(text):
            name = line.text.split()[2]
            reason = skip_reason(line.text)
            if PLACEHOLDER.search(line.text.split("#")[0]) or name in HELP_ONLY or reason:
                helped.add(name)
                continue
            result = clone.run(substitute(line.text), timeout=180)
            assert result.returncode == 0, f"README line {line.line}: {line.text}\n{result.stdout}\n{result.stderr}"
            if name == "dev":
                assert "the service is already running at" in result.stdout, result.stdout
            ran.append(line.text.split("#")[0].strip())
        result = clone.run(f"./dev run es status --port {es_port}")
        assert result.returncode == 0 and result.stdout.startswith("running"), result.stdout + result.stderr
        ran.append("./dev run es status")
        named, inline = inline_dev_runs(text)
        for span in inline:  # e.g. scripts/report_sample.py against the running API
            began = time.monotonic()
            result = clone.run(substitute(span), timeout=180)
            assert result.returncode == 0, f"{span}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            timings[span[:70]] = time.monotonic() - began
            ran.append(span)
        for name in sorted(helped | named):
            result = clone.run(f"./dev run {name} --help", timeout=60)
            assert result.returncode == 0 and "usage" in result.stdout.lower(), (
                f"./dev run {name} --help\n{result.stdout}\n{result.stderr}"
            )
            ran.append(f"./dev run {name} --help")
    finally:
        stop_quick_start(up)
        shutil.rmtree(root / ".venv", ignore_errors=True)  # 0.9 GB; pytest keeps its last temp dirs
    assert up.returncode is not None
    total = time.monotonic() - started
    print(f"\nREADME commands on a fresh copy: {len(ran)} run, {len(skipped)} skipped, {total:.0f} s")
    for name, seconds in sorted(timings.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {seconds:6.1f} s  {name}")
    print("skipped:\n  " + "\n  ".join(skipped))
