"""Browser test of three explorers: real JupyterLab, real Chromium, real key presses.

Run with ``make test-browser`` or::

    .venv/bin/python tests/browser/run_browser_test.py [--notebook PATH]
        [--encoding-notebook PATH] [--detection-notebook PATH] [--out DIR]

What it does:

1. Starts ``jupyter lab`` from this venv on 127.0.0.1 (free port, fixed token), with every Jupyter
   config, data, runtime, settings, workspace and checkpoint directory under ``OUT/jupyter``, so
   no Jupyter file in ~ or next to the notebook is read or written. User settings turn off the
   news pop-up, autosave and notebook windowing.
2. Opens the notebook in Debian's headless Chromium (driven by Playwright), waits for the kernel,
   runs all cells and waits until the run has finished.
3. Finds the output of ``matching_explorer()`` (a "centre x" slider next to a label starting with
   "positives:"), screenshots that cell to ``OUT/before.png``, presses ArrowRight (or ArrowLeft)
   15 times on the "centre x" slider handle, waits for the readout label and the picture to be
   redrawn, screenshots ``OUT/after.png`` and asserts that centre x moved by 0.15 and that the
   label, the picture's src and its PNG bytes all changed.
4. In the same JupyterLab, opens lesson 03 (``--encoding-notebook``), runs all its cells, and does
   the same with ``encoding_explorer()``: a "t_x" slider next to a label starting with "target
   (t_x", pressed 10 times (+0.10). Screenshots ``OUT/encoding-*.png``.
5. In the same JupyterLab, opens lesson 07 (``--detection-notebook``), runs all its cells (it may
   train its model for a minute), and does the same with ``detection_explorer(...)``: a "score
   threshold" slider next to a label starting with "kept:", pressed 15 times (-0.15 from the
   default 0.5, so more boxes pass; +0.15 from a threshold below 0.25), again if the number of
   kept boxes has not changed. Screenshots ``OUT/detection-*.png``.

Each notebook must be inside the repository (the server's root) and have a code cell that calls
its explorer; the test says so at once otherwise. A missing or unsuitable *default* notebook
(e.g. lesson 07 before it is written) fails the test (exit status 1); a bad notebook given on
the command line is bad usage (2).

The browser session runs in a child process that is killed if it exceeds a hard time limit (runs
on these machines have hung where Playwright has no timeout); the whole session is retried once.
The server, the kernels and the browser are always stopped, also on Ctrl-C, and the notebook
files must be byte-for-byte unchanged afterwards. Exit status: 0 pass, 1 fail, 2 bad usage,
130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_NOTEBOOK = "notebooks/02_matching.ipynb"
ENCODING_NOTEBOOK = "notebooks/03_encoding.ipynb"
DETECTION_NOTEBOOK = "notebooks/07_inference.ipynb"
DEFAULT_OUT = "build/browser"
TOKEN = "ssd-lesson-browser-test"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 1100}
WINDOW_CHROME = 250  # px of menus, tabs and status bar around the notebook, with some room
MAX_HEIGHT = 4000

# Seconds. Generous: the machine has 2 cores and may be busy with other jobs.
SERVER_START_TIMEOUT = 90
SERVER_STOP_TIMEOUT = 20
LAUNCH_TIMEOUT = 60
PAGE_LOAD_TIMEOUT = 90
KERNEL_IDLE_TIMEOUT = 120
# Per notebook. Lesson 07 trains its model for ~45 s when no checkpoint is cached: several
# times that on a busy machine.
DEFAULT_RUN_ALL_TIMEOUT = 480
EXPLORER_TIMEOUT = 60
REDRAW_TIMEOUT = 60
SETTLE_SECONDS = 1.5  # the explorer counts as redrawn once nothing changed for this long
ACTION_TIMEOUT = 30  # default for every Playwright call (screenshots, key presses, ...)

MAX_BATCHES = 3  # press again (at most twice) if the readout happens not to change

# Hard limit on one browser session: Chromium's launch, then per notebook its run-all time plus
# the sum of the other step timeouts.
NOTEBOOK_MARGIN = KERNEL_IDLE_TIMEOUT + EXPLORER_TIMEOUT + REDRAW_TIMEOUT * MAX_BATCHES
NOTEBOOK_MARGIN += 4 * ACTION_TIMEOUT

# User settings for the throwaway JupyterLab (see /work/shared/NOTEBOOK_TESTING.md).
LAB_SETTINGS = {
    # Otherwise a news / update pop-up covers the notebook.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # The notebook is dirty after "run all": never write it back to disk.
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # Keep every cell in the DOM, so the explorer's output can be found wherever it is.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

PNG_SIGNATURE = b"\x89PNG"


def readout_shape(text: str) -> str:
    """A readout with every number replaced by "#": what stays as the controls move."""
    return re.sub(r"[+-]?\d+(?:\.\d+)?", "#", text.strip())


@functools.cache
def sample_readouts(name: str) -> tuple[str, ...]:
    """What the explorer's ``describe_*`` function writes for a few views: every form its readout
    takes (singular and plural, optional parts). Views built here, without the notebook."""
    import torch

    from ssd_lesson import widgets

    if name == "matching explorer":
        return tuple(
            widgets.describe_matching_view(widgets.matching_view(cx, 0.5, w, 0.4, threshold))
            for cx, w, threshold in ((0.45, 0.3, 0.5), (0.2, 0.05, 0.05), (0.5, 1.0, 1.0))
        )
    if name == "encoding explorer":
        readouts = []
        for i, _ in enumerate(widgets.encoding_pairs()):
            view = widgets.encoding_view(i, 0.0, 0.0, 0.0, 0.0)
            target = [round(v, 2) for v in view.target_offsets.tolist()]
            readouts += [
                widgets.describe_encoding_view(v) for v in (view, widgets.encoding_view(i, *target))
            ]
        return tuple(readouts)
    # One box per object; then every count a readout words differently: 1 or more boxes and
    # objects, boxes beyond the top k or none.
    boxes = torch.tensor([[0.0, 0.0, 0.4, 0.4], [0.6, 0.6, 1.0, 1.0]])
    logits = torch.tensor([[0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    view = widgets.detection_view(
        torch.zeros(3, 8, 8), logits, torch.zeros(2, 4), boxes, boxes, torch.tensor([1, 2])
    )
    return tuple(
        widgets.describe_detection_view(
            view._replace(num_kept=kept, num_beyond_top_k=beyond, gt_labels=torch.ones(objects))
        )
        for kept in (1, 2)
        for beyond in (0, 3)
        for objects in (1, 2)
    )


@dataclass(frozen=True)
class ExplorerCheck:
    """One explorer to test: how to find it, which slider to press; its readouts are what its
    ``describe_*`` function writes (see ``sample_readouts``)."""

    name: str  # for messages: "matching explorer"
    call: str  # a code cell of the notebook must contain this
    option: str  # the command-line option naming the notebook: "--notebook"
    default_notebook: str  # relative to the repository
    slider: str  # the slider's description
    key_presses: int
    middle: float  # ArrowRight from below this value, ArrowLeft from above
    prefix: str  # of the screenshots: OUT/{prefix}before.png, OUT/{prefix}after.png
    # The part of the readout the key presses must change (its groups); None: any part.
    changing: re.Pattern | None = None

    @property
    def label(self) -> re.Pattern:
        """The readout label's start: the words before the first number of every sample."""
        start = os.path.commonprefix([readout_shape(s) for s in sample_readouts(self.name)])
        return re.compile(r"^\s*" + re.escape(start.split("#")[0].strip()))

    def readout_ok(self, text: str) -> bool:
        """Is ``text`` a readout of this explorer: one of the samples' forms, other numbers?"""
        return readout_shape(text) in {readout_shape(s) for s in sample_readouts(self.name)}

    def changed(self, before: str, after: str) -> bool:
        """Did the key presses change the readout (the ``changing`` part of it)?"""
        if self.changing is None:
            return after != before
        parts = [self.changing.search(text) for text in (before, after)]
        return None not in parts and parts[0].groups() != parts[1].groups()

    @property
    def dest(self) -> str:
        """The option's attribute in the parsed arguments: "encoding_notebook"."""
        return self.option.lstrip("-").replace("-", "_")

    @property
    def slider_re(self) -> re.Pattern:
        return re.compile(rf"^\s*{re.escape(self.slider)}\s*$")


MATCHING = ExplorerCheck(
    name="matching explorer",
    call="matching_explorer(",
    option="--notebook",
    default_notebook=DEFAULT_NOTEBOOK,
    slider="centre x",
    # x 15 = +0.15 on the 0.01-step slider: the box moves ~40 px in the picture. (x 10 moves the
    # default box from 0.45 to 0.55, the mirror image on the anchor grid: same readout.)
    key_presses=15,
    middle=0.5,
    prefix="",
)
ENCODING = ExplorerCheck(
    name="encoding explorer",
    call="encoding_explorer(",
    option="--encoding-notebook",
    default_notebook=ENCODING_NOTEBOOK,
    slider="t_x",
    key_presses=10,  # +0.10 anchor widths: the box moves ~10 px, the IoU changes
    middle=0.0,
    prefix="encoding-",
)
DETECTION = ExplorerCheck(
    name="detection explorer",
    call="detection_explorer(",
    option="--detection-notebook",
    default_notebook=DETECTION_NOTEBOOK,
    slider="score threshold",
    # x 15 = -0.15 from the default 0.5: more boxes pass the threshold. Three batches at most
    # reach 0.05, still inside the slider's 0.01..0.99.
    key_presses=15,
    middle=0.25,
    prefix="detection-",
    changing=re.compile(r"^kept: (\d+)"),  # the number of kept boxes must change
)
CHECKS = (MATCHING, ENCODING, DETECTION)

# Log times count from the parent's start; the browser child inherits it through the environment.
_T0 = float(os.environ.setdefault("SSD_BROWSER_TEST_T0", str(time.time())))


def log(message: str, prefix: str = "test") -> None:
    print(f"[{time.time() - _T0:6.1f}s] {prefix}: {message}", flush=True)


class CheckFailed(Exception):
    """The test ran and something was wrong (or took too long)."""

    retry = True  # worth another browser session: it may have been the machine, not the code


class NotebookFailed(CheckFailed):
    """A cell raised: running the notebook again would raise again."""

    retry = False


# ------------------------------------------------------------------------------ arguments


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for check in CHECKS:
        parser.add_argument(
            check.option,
            default=check.default_notebook,
            help=f"notebook that calls {check.call}...), inside the repository "
            f"(default: {check.default_notebook})",
        )
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"folder for screenshots, logs, a throwaway Jupyter config (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=DEFAULT_RUN_ALL_TIMEOUT,
        help=f"seconds allowed for running all cells (default: {DEFAULT_RUN_ALL_TIMEOUT})",
    )
    parser.add_argument("--attempts", type=int, default=2, help="browser sessions to try (2)")
    # Internal: the parent runs the browser session in a child process it can kill.
    parser.add_argument("--browser-session", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------ processes


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pids_mentioning(marker: str) -> list[int]:
    """Our processes whose command line contains ``marker`` (a path unique to this run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def kill_leftovers(marker: str, what: str) -> None:
    """Kill, by pid, processes left behind that mention a path created by this run."""
    for pid in pids_mentioning(marker):
        log(f"killing left-over {what} process {pid}")
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def kill_group(proc: subprocess.Popen, name: str) -> None:
    """SIGTERM then SIGKILL the process group led by ``proc`` (started with a new session)."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {proc.pid}) still running after {sig.name}")
    # The leader may be gone while others in its group live on: make sure of them too.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _die_with_parent() -> None:
    """In a child, before exec: get SIGTERM if this script dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def write_lab_config(jupyter_dir: Path) -> dict[str, str]:
    """A fresh Jupyter config tree; returns the environment variables that point at it."""
    shutil.rmtree(jupyter_dir, ignore_errors=True)
    dirs = {
        "JUPYTER_CONFIG_DIR": jupyter_dir / "config",
        "JUPYTER_DATA_DIR": jupyter_dir / "data",
        "JUPYTER_RUNTIME_DIR": jupyter_dir / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": jupyter_dir / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": jupyter_dir / "lab-workspaces",
        "IPYTHONDIR": jupyter_dir / "ipython",
    }
    for path in dirs.values():
        path.mkdir(parents=True)
    for name, values in LAB_SETTINGS.items():
        path = dirs["JUPYTERLAB_SETTINGS_DIR"] / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2) + "\n")
    return {key: str(path) for key, path in dirs.items()}


def start_server(port: int, jupyter_dir: Path, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, **write_lab_config(jupyter_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("JUPYTER_TOKEN", None)
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={REPO_ROOT}",
        # Lab makes a checkpoint of every file it opens: keep it out of the repository.
        f"--FileCheckpoints.checkpoint_dir={jupyter_dir / 'checkpoints'}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.expose_app_in_browser=True",
    ]
    log(f"starting JupyterLab on port {port}, log in {log_path}")
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole
            preexec_fn=_die_with_parent,
        )


def api(port: int, path: str, method: str = "GET", timeout: float = 5.0) -> bytes:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers={"Authorization": f"token {TOKEN}"},
        data=b"" if method == "POST" else None,
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def wait_for_server(server: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise CheckFailed(f"JupyterLab exited with code {server.returncode}:\n{tail}")
        try:
            api(port, "/api/status", timeout=3)
            # The Lab page itself (templates, settings) must answer too.
            api(port, f"/lab?token={TOKEN}", timeout=10)
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.5)
    raise CheckFailed(f"JupyterLab did not answer within {SERVER_START_TIMEOUT} s (see {log_path})")


def stop_server(server: subprocess.Popen, port: int) -> None:
    """Ask the server to shut down (it stops its kernels), then kill its process group."""
    if server.poll() is None:
        try:
            api(port, "/api/shutdown", method="POST", timeout=5)
        except (OSError, urllib.error.URLError) as exc:
            log(f"shutdown request failed ({exc}); killing the server")
        try:
            server.wait(timeout=SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"server still running {SERVER_STOP_TIMEOUT} s after the shutdown request")
    kill_group(server, "JupyterLab")


# ------------------------------------------------------------------------------ parent


def run_attempt(
    args: argparse.Namespace, notebooks: dict[str, str], out: Path, attempt: int
) -> dict:
    """One JupyterLab server and one browser session (in a child process). Returns its result."""
    tag = f"attempt {attempt}"
    jupyter_dir = out / "jupyter"
    profile = out / f"chromium-profile-{attempt}"
    shutil.rmtree(profile, ignore_errors=True)
    result_path = out / f"result-{attempt}.json"
    result_path.unlink(missing_ok=True)
    log_path = out / f"jupyterlab-{attempt}.log"
    port = free_port()
    server = start_server(port, jupyter_dir, log_path)
    child = None
    start = time.monotonic()
    try:
        wait_for_server(server, port, log_path)
        server_ready = round(time.monotonic() - start, 1)
        log(f"{tag}: JupyterLab answered after {server_ready:.1f} s")
        session_timeout = LAUNCH_TIMEOUT + len(notebooks) * (args.run_timeout + NOTEBOOK_MARGIN)
        child = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--browser-session",
                *(f"{check.option}={notebooks[check.name]}" for check in CHECKS),
                f"--out={out}",
                f"--port={port}",
                f"--profile={profile}",
                f"--result={result_path}",
                f"--run-timeout={args.run_timeout}",
                f"--tag={attempt}",
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            child.wait(timeout=session_timeout)
        except subprocess.TimeoutExpired as exc:
            raise CheckFailed(
                f"browser session hung: no result after {session_timeout:.0f} s"
            ) from exc
        result = json.loads(result_path.read_text()) if result_path.exists() else {}
        if child.returncode != 0 or not result.get("ok"):
            failure = CheckFailed(
                result.get("error") or f"browser session exited with code {child.returncode}"
            )
            failure.retry = result.get("retry", True)
            raise failure
        result["timings"] = {"start JupyterLab": server_ready, **result["timings"]}
        return result
    finally:
        # Cleaning up must not be cut short by a second Ctrl-C.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if child is not None and child.poll() is None:
                log(f"{tag}: stopping the browser session (pid {child.pid})")
                kill_group(child, "browser session")
            kill_leftovers(str(profile), "Chromium")
            stop_server(server, port)
            kill_leftovers(str(jupyter_dir / "runtime"), "kernel")
            log(f"{tag}: JupyterLab stopped (attempt took {time.monotonic() - start:.1f} s)")
        finally:
            signal.signal(signal.SIGINT, previous)


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def check_notebook(path: str, check: ExplorerCheck) -> tuple[Path, str]:
    """The notebook's absolute path and its path relative to the repository; UsageError if it is
    missing, outside the repository, or has no code cell that calls the explorer."""
    notebook = Path(path).resolve()
    if not notebook.is_file():
        raise UsageError(
            f"notebook {path} not found: the {check.name} is tested in it (pass "
            f"{check.option} PATH to test another notebook)"
        )
    try:
        relative = notebook.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        raise UsageError(f"{notebook} is not inside {REPO_ROOT}") from None
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (ValueError, KeyError) as exc:
        raise UsageError(f"{relative} is not a notebook: {exc}") from None
    if not any(
        cell.get("cell_type") == "code" and check.call in "".join(cell.get("source", []))
        for cell in cells
    ):
        raise UsageError(f"{relative} has no code cell that calls {check.call}) (yet?)")
    return notebook, relative


class UsageError(Exception):
    """Bad arguments or inputs: exit status 2."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.browser_session:
        return browser_session(args)

    out = Path(args.out).resolve()
    paths = {}
    for check in CHECKS:
        path = getattr(args, check.dest)
        try:
            paths[check.name] = check_notebook(path, check)
        except UsageError as exc:
            if path == check.default_notebook:  # the repository lacks what it should have
                print(f"\nBROWSER TEST FAILED\n- {exc}", flush=True)
                return 1
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 2
    notebooks = {name: relative for name, (_, relative) in paths.items()}
    if not Path(CHROMIUM).exists():
        print(
            f"error: {CHROMIUM} not found (apt-get install chromium)", file=sys.stderr, flush=True
        )
        return 2
    out.mkdir(parents=True, exist_ok=True)
    # Two runs sharing OUT would wipe each other's Jupyter config and kill each other's kernels.
    lock = open(out / ".lock", "w")  # held until the process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"error: another browser test is using {out}", file=sys.stderr, flush=True)
        return 2
    for check in CHECKS:
        for stale in ("before.png", "after.png", "before-image", "after-image"):
            for old in out.glob(f"{check.prefix}{stale}*"):
                old.unlink(missing_ok=True)

    before = {}  # notebook -> (sha256, checkpoint path, had a checkpoint)
    for notebook, relative in paths.values():
        checkpoint = notebook.parent / ".ipynb_checkpoints" / f"{notebook.stem}-checkpoint.ipynb"
        before[notebook] = (sha256(notebook), checkpoint, checkpoint.exists())
        log(f"notebook {relative} (sha256 {before[notebook][0][:12]})")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    log(f"output in {out}")

    started = time.monotonic()
    result, errors = None, []
    try:
        for attempt in range(1, args.attempts + 1):
            try:
                result = run_attempt(args, notebooks, out, attempt)
                break
            except CheckFailed as exc:
                errors.append(f"attempt {attempt}: {exc}")
                log(f"attempt {attempt} FAILED: {exc}")
                if not exc.retry:
                    log("not retrying: the notebook itself fails")
                    break
    except KeyboardInterrupt:
        log("interrupted; server and browser stopped")
        return 130

    problems = []
    for notebook, relative in paths.values():
        digest, checkpoint, had_checkpoint = before[notebook]
        if sha256(notebook) != digest:
            problems.append(f"the notebook {relative} was modified on disk by the test")
        if checkpoint.exists() and not had_checkpoint:
            problems.append(f"the test created a checkpoint {checkpoint}")
    if result is None:
        problems.append("no attempt passed:\n  " + "\n  ".join(errors))

    total = time.monotonic() - started
    if problems:
        print("\nBROWSER TEST FAILED", flush=True)
        for problem in problems:
            print(f"- {problem}", flush=True)
        print(f"(logs and screenshots in {out}; {total:.1f} s)", flush=True)
        return 1

    print("\nBROWSER TEST PASSED", flush=True)
    for check in CHECKS:
        checked = result["explorers"][check.name]
        print(f"  {check.name}:", flush=True)
        print(f"    notebook:        {checked['notebook']} (unchanged on disk)", flush=True)
        print(
            f"    {checked['slider']:<17}{checked['value_before']} -> {checked['value_after']}",
            flush=True,
        )
        print(f"    readout before:  {checked['label_before']}", flush=True)
        print(f"    readout after:   {checked['label_after']}", flush=True)
        print(
            f"    picture:         {checked['image_before']} -> {checked['image_after']}",
            flush=True,
        )
        print(f"    picture src:     {checked['src_before']} -> {checked['src_after']}", flush=True)
        screenshots = f"{out / (check.prefix + 'before.png')}, {out / (check.prefix + 'after.png')}"
        print(f"    screenshots:     {screenshots}", flush=True)
    timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result["timings"].items())
    print(f"  timings:           {timings}", flush=True)
    print(f"  attempts:          {len(errors) + 1}; total {total:.1f} s", flush=True)
    return 0


# ------------------------------------------------------------------------------ browser session

# State of the notebook panel, read through the JupyterLab app object (expose_app_in_browser).
NOTEBOOK_STATE_JS = """
(path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return { phase: 'loading' };
  const dialogs = Array.from(document.querySelectorAll('.jp-Dialog'))
    .map(d => d.innerText.replace(/\\s+/g, ' ').slice(0, 300));
  const panel = Array.from(app.shell.widgets('main')).find(
    w => w.context && w.context.path === path && w.content && w.content.widgets);
  if (!panel) return { phase: 'opening', dialogs };
  const session = panel.sessionContext;
  const kernel = session.session ? session.session.kernel : null;
  const cells = [];
  panel.content.widgets.forEach((cell, index) => {
    const model = cell.model;
    if (model.type !== 'code') return;
    const errors = [];
    for (let i = 0; i < model.outputs.length; i++) {
      const output = model.outputs.get(i).toJSON();
      if (output.output_type === 'error') errors.push(`${output.ename}: ${output.evalue}`);
    }
    const tags = (model.getMetadata ? model.getMetadata('tags') : null) || [];
    cells.push({
      index,
      blank: !model.sharedModel.getSource().trim(),
      count: model.executionCount,
      running: model.executionState === 'running',
      errors,
      raises: tags.includes('raises-exception'),
    });
  });
  return {
    phase: 'open',
    id: panel.id,
    ready: session.isReady,
    kernel: kernel ? kernel.status : null,
    cells,
    dialogs,
    runAll: window.__ssdRunAll || null,
  };
}
"""

OPEN_JS = """
(path) => { window.jupyterapp.commands.execute('docmanager:open', { path }); return true; }
"""

RUN_ALL_JS = """
(id) => {
  const app = window.jupyterapp;
  app.shell.activateById(id);
  window.__ssdRunAll = { done: false };
  app.commands.execute('notebook:run-all-cells').then(
    ok => { window.__ssdRunAll = { done: true, ok: ok !== false }; },
    err => { window.__ssdRunAll = { done: true, ok: false, error: String(err) }; });
  return true;
}
"""

# The PNG shown by an <img> (a blob: URL that ipywidgets revokes on the next redraw, so it is
# read at once), as base64.
IMAGE_BYTES_JS = """
async (img) => {
  const src = img.src;
  const blob = await (await fetch(src)).blob();
  const data = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
  return { src, base64: data.slice(data.indexOf(',') + 1) };
}
"""


def poll(check, timeout: float, what: str, interval: float = 0.25):
    """Call ``check()`` until it returns something truthy; CheckFailed after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def browser_session(args: argparse.Namespace) -> int:
    """Child process: drive Chromium through the test; write a JSON result; exit 0 on success."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    session = BrowserSession(args)
    result: dict = {"ok": False, "timings": session.timings}
    try:
        with sync_playwright() as playwright:
            started = time.monotonic()
            context = playwright.chromium.launch_persistent_context(
                args.profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=VIEWPORT,
                timeout=LAUNCH_TIMEOUT * 1000,
            )
            session.step("launch Chromium", started)
            try:
                page = context.pages[0] if context.pages else context.new_page()
                result.update(session.run(page))
                result["ok"] = True
            finally:
                try:
                    context.close()
                except PlaywrightError as exc:
                    session.say(f"closing the browser failed: {exc}")
    except Exception as exc:  # every failure, whatever its kind, is reported to the parent
        message = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
        result["ok"], result["error"] = False, message.strip()
        result["retry"] = getattr(exc, "retry", True)
        session.say(f"FAILED: {result['error']}")
    Path(args.result).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0 if result["ok"] else 1


class BrowserSession:
    """The steps of one browser session, on one Playwright page."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.path = getattr(args, CHECKS[0].dest)  # relative to the server's root, "/"-separated
        self.out = Path(args.out)
        self.timings: dict[str, float] = {}
        self.seen_dialogs: set[str] = set()

    def say(self, message: str) -> None:
        log(message, prefix=f"browser {self.args.tag}")

    def step(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)
        self.say(f"{name}: {self.timings[name]:.1f} s")

    def run(self, page) -> dict:
        self.page = page
        page.set_default_timeout(ACTION_TIMEOUT * 1000)
        page.set_default_navigation_timeout(PAGE_LOAD_TIMEOUT * 1000)
        page.on("pageerror", lambda exc: self.say(f"page error: {exc}"))
        explorers = {}
        for i, check in enumerate(CHECKS):
            self.path = getattr(self.args, check.dest)  # relative to the server's root
            explorers[check.name] = self.check_explorer(check, first=i == 0)
        return {"explorers": explorers, "dialogs": sorted(self.seen_dialogs)}

    def check_explorer(self, check: ExplorerCheck, first: bool) -> dict:
        """Open the notebook, run it, press the explorer's slider, check that it was redrawn."""
        what = check.name.split()[0]  # "matching", "encoding", ...: names the timings
        started = time.monotonic()
        panel = self.open_notebook(first)
        self.step(f"{what}: open notebook, kernel idle", started)

        started = time.monotonic()
        self.run_all_cells(panel["id"])
        self.step(f"{what}: run all cells", started)

        started = time.monotonic()
        self.find_explorer(check)
        self.step(f"{what}: find explorer", started)

        slider = check.slider
        before = self.snapshot()
        if not before["png"].startswith(PNG_SIGNATURE):
            raise CheckFailed(f"the {check.name}'s picture is not a PNG")
        self.cell.screenshot(
            path=str(self.out / f"{check.prefix}before.png"), animations="disabled"
        )
        (self.out / f"{check.prefix}before-image.png").write_bytes(before["png"])
        self.say(f"before: {slider} {before['value']}; {before['label']}; picture {before['sha']}")

        started = time.monotonic()
        expected = self.move_slider(check, slider, before)
        self.step(f"{what}: move slider, wait for redraw", started)

        after = self.snapshot()
        self.cell.screenshot(path=str(self.out / f"{check.prefix}after.png"), animations="disabled")
        (self.out / f"{check.prefix}after-image.png").write_bytes(after["png"])
        self.say(f"after:  {slider} {after['value']}; {after['label']}; picture {after['sha']}")

        for name, text in (("before", before["label"]), ("after", after["label"])):
            if not check.readout_ok(text):
                raise CheckFailed(f"unexpected readout {name} the key presses: {text!r}")
        if not check.changed(before["label"], after["label"]):
            what_changed = "readout" if check.changing is None else check.changing.pattern
            raise CheckFailed(
                f"the {what_changed!r} part of the readout did not change: "
                f"{before['label']!r} -> {after['label']!r}"
            )
        if after["src"] == before["src"]:
            raise CheckFailed(f"the picture's src did not change: {after['src']!r}")
        if after["sha"] == before["sha"]:
            raise CheckFailed("the picture's bytes did not change")
        if abs(slider_value(after["value"]) - expected) > 0.005:
            raise CheckFailed(f"{slider} is {after['value']}, expected {expected:.2f}")
        return {
            "notebook": self.path,
            "slider": slider,
            "value_before": before["value"],
            "value_after": after["value"],
            "label_before": before["label"],
            "label_after": after["label"],
            "src_before": before["src"],
            "src_after": after["src"],
            "image_before": f"{len(before['png'])} bytes, sha256 {before['sha']}",
            "image_after": f"{len(after['png'])} bytes, sha256 {after['sha']}",
        }

    # ---- the notebook, through the JupyterLab app object

    def state(self) -> dict:
        from playwright.sync_api import Error as PlaywrightError

        try:
            current = self.page.evaluate(NOTEBOOK_STATE_JS, self.path)
        except PlaywrightError as exc:  # e.g. "Execution context was destroyed" while loading
            if "context" not in str(exc):
                raise
            return {"phase": "loading"}
        for text in current.get("dialogs", []):
            if text not in self.seen_dialogs:
                self.seen_dialogs.add(text)
                self.say(f"dialog: {text}")
            if "Select Kernel" in text:  # a notebook without kernelspec metadata
                self.page.locator(".jp-Dialog .jp-mod-accept").first.click()
        return current

    def open_notebook(self, first: bool) -> dict:
        """Load Lab on the notebook (``first``) or open it in the Lab already loaded."""
        if first:
            quoted = urllib.parse.quote(self.path)
            self.page.goto(f"http://127.0.0.1:{self.args.port}/lab/tree/{quoted}?token={TOKEN}")
        else:  # no reload: a page with a dirty notebook would ask before leaving
            self.page.evaluate(OPEN_JS, self.path)

        def kernel_idle():
            current = self.state()
            if current.get("phase") != "open" or not current["ready"]:
                return None
            return current if current["kernel"] == "idle" else None

        panel = poll(kernel_idle, KERNEL_IDLE_TIMEOUT, f"{self.path} to open with an idle kernel")
        code_cells = sum(not cell["blank"] for cell in panel["cells"])
        self.say(f"notebook open, kernel idle, {code_cells} code cells")
        return panel

    def run_all_cells(self, panel_id: str) -> None:
        """Run all cells; wait until every non-empty code cell has run, or one has failed.

        Lab's run-all promise alone is not enough: it resolves (false) as soon as any cell
        raises, also a "raises-exception" cell, while the cells after it are still running.
        Lab clears the execution counts of the cells it queues, so "every cell has a count,
        the kernel is idle and the promise has resolved" means the run is over.
        """
        self.page.evaluate(RUN_ALL_JS, panel_id)
        seen = {"report": time.monotonic(), "state": {}}

        def failed_cells(current: dict) -> list[str]:
            return [
                f"cell {cell['index']}: {error}"
                for cell in current.get("cells", [])
                if not cell["raises"]
                for error in cell["errors"]
            ]

        def finished():
            current = seen["state"] = self.state()
            cells = [cell for cell in current.get("cells", []) if not cell["blank"]]
            run_all = current.get("runAll") or {}
            if time.monotonic() - seen["report"] > 15:
                seen["report"] = time.monotonic()
                executed = sum(cell["count"] is not None for cell in cells)
                self.say(f"running: kernel {current.get('kernel')}, {executed}/{len(cells)} cells")
            if not run_all.get("done"):
                return None
            if failed_cells(current) or "error" in run_all:
                return current  # the kernel skips the cells after a failing one
            if current.get("kernel") != "idle" or any(cell["running"] for cell in cells):
                return None
            return current if all(cell["count"] is not None for cell in cells) else None

        try:
            done = poll(finished, self.args.run_timeout, "all cells to run")
        except CheckFailed as exc:
            cells = [cell for cell in seen["state"].get("cells", []) if not cell["blank"]]
            unrun = [cell["index"] for cell in cells if cell["count"] is None]
            raise CheckFailed(f"{exc} (cells not run yet: {unrun})") from None
        errors = failed_cells(done)
        if errors:
            raise NotebookFailed(f"running all cells failed: {'; '.join(errors)}")
        if "error" in done["runAll"]:
            raise CheckFailed(f"the run-all command failed: {done['runAll']['error']}")

    # ---- the explorer

    def find_explorer(self, check: ExplorerCheck) -> None:
        """The output with the check's slider and readout label; its parts."""
        page = self.page
        slider = page.locator(".widget-slider").filter(
            has=page.locator(".widget-label", has_text=check.slider_re)
        )
        label = page.locator(".widget-label", has_text=check.label)
        outputs = page.locator(".jp-OutputArea-output").filter(has=slider).filter(has=label)
        try:
            poll(lambda: outputs.count() > 0, EXPLORER_TIMEOUT, f"the {check.name}")
        except CheckFailed:
            page.screenshot(path=str(self.out / f"failure-{self.args.tag}.png"))
            broken = page.locator(".jp-OutputArea-output", has_text="Error displaying widget")
            raise CheckFailed(
                f"no output with a '{check.slider}' slider and a label matching "
                f"{check.label.pattern!r} ({page.locator('.widget-slider').count()} sliders on "
                f"the page, {broken.count()} 'Error displaying widget' outputs); "
                f"screenshot in failure-{self.args.tag}.png"
            ) from None
        if outputs.count() > 1:
            self.say(f"{outputs.count()} {check.name}s found; testing the first")
        output = outputs.first
        self.cell = page.locator(".jp-CodeCell").filter(has=output).last
        slider = output.locator(".widget-slider").filter(
            has=page.locator(".widget-label", has_text=check.slider_re)
        )
        self.handle = slider.locator(".noUi-handle").first
        self.readout = slider.locator(".widget-readout").first
        self.label = output.locator(".widget-label", has_text=check.label).first
        self.image = output.locator("img").first
        self.image.wait_for(state="visible")
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=self.image.element_handle()
        )
        # Lab scrolls the notebook inside a fixed-height panel, so a cell taller than the
        # window would be cut off in a screenshot: make the window tall enough for it.
        height = self.cell.evaluate("el => el.getBoundingClientRect().height")
        if height + WINDOW_CHROME > page.viewport_size["height"]:
            size = {**VIEWPORT, "height": min(int(height) + WINDOW_CHROME, MAX_HEIGHT)}
            page.set_viewport_size(size)
            self.say(f"explorer cell is {height:.0f} px tall: window resized to {size}")
            time.sleep(0.5)  # let Lab lay itself out again
        self.cell.scroll_into_view_if_needed()

    def snapshot(self) -> dict:
        picture = self.image.evaluate(IMAGE_BYTES_JS)
        png = base64.b64decode(picture["base64"])  # the picture's bytes
        return {
            "label": self.label.inner_text().strip(),
            "value": self.readout.inner_text().strip(),
            "src": picture["src"],
            "png": png,
            "sha": hashlib.sha256(png).hexdigest()[:12],
        }

    def move_slider(self, check: ExplorerCheck, slider: str, before: dict) -> float:
        """Press arrow keys on the slider's handle until the readout changes; its new value."""
        value_before = slider_value(before["value"])
        key = "ArrowRight" if value_before <= check.middle else "ArrowLeft"
        step = 0.01 if key == "ArrowRight" else -0.01
        presses, previous_src = 0, before["src"]
        for batch in range(1, MAX_BATCHES + 1):
            self.handle.focus()
            for _ in range(check.key_presses):
                self.page.keyboard.press(key)
                time.sleep(0.05)
            presses += check.key_presses
            expected = value_before + step * presses
            self.say(f"pressed {key} x {presses} on the '{slider}' slider")
            label, src = self.wait_for_redraw(slider, before, previous_src, expected)
            if check.changed(before["label"], label):
                return expected
            # E.g. the box landed on the mirror image of its old place on the anchor grid, or
            # no box's score lies between the old and the new threshold.
            self.say(f"readout unchanged after batch {batch} ({label}); pressing again")
            previous_src = src
        return expected  # check_explorer() reports the unchanged readout

    def wait_for_redraw(self, slider: str, before: dict, previous_src: str, expected: float):
        """Wait until the slider shows ``expected`` and the last redraw is in; (label, src)."""
        history = {"value": None, "since": time.monotonic()}

        def redrawn():
            current = (
                self.label.inner_text().strip(),
                self.image.get_attribute("src"),
                self.readout.inner_text().strip(),
            )
            if current != history["value"]:
                history["value"], history["since"] = current, time.monotonic()
                return None
            try:
                at_target = abs(slider_value(current[2]) - expected) < 0.005
            except ValueError:
                at_target = False
            if current[1] == previous_src or not at_target:
                return None
            if self.state().get("kernel") != "idle":
                return None
            # Changed, the kernel is idle, and nothing has changed for a while.
            return time.monotonic() - history["since"] >= SETTLE_SECONDS

        try:
            poll(redrawn, REDRAW_TIMEOUT, "the explorer to be redrawn", interval=0.1)
        except CheckFailed as exc:
            label, src, value = history["value"] or ("?", "?", "?")
            raise CheckFailed(
                f"{exc}: {slider} {before['value']} -> {value} (expected {expected:.2f}), "
                f"readout changed: {label != before['label']}, "
                f"picture changed: {src != previous_src}"
            ) from None
        return history["value"][:2]


def slider_value(readout: str) -> float:
    """A slider's readout as a number; ipywidgets writes negatives with "−" (U+2212)."""
    return float(readout.replace("\u2212", "-"))


if __name__ == "__main__":
    sys.exit(main())
