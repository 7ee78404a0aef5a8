"""Launchers: where a run's stage trains. Plain Python, no Django (the worker calls `launch_stage`).

- `inprocess` (the default): the worker calls the stage's training function itself, one process.
- `accelerate:<config>`: the worker starts
  `accelerate launch --config_file <config> -m rlhf.training.<stage> --config <run dir>/launch_config.yaml`
  as a subprocess in its own process group (one or several training processes, DDP / DeepSpeed / FSDP as the
  accelerate config says), reads its progress lines back (`@rlhf-progress {...}`, the main process only, see
  progress.py) and its other output as log lines, stops the whole group when the run is cancelled or the worker is
  stopped, and fails the run with the output's last lines when it exits non-zero. `<config>` is the name of a file
  shipped in configs/accelerate/ (`cpu_2proc`, `gpu_ddp`, `deepspeed_zero2`, ...) or a path to one.
"""

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from rlhf.training.progress import ProgressCallback, event_from_line

INPROCESS = "inprocess"
ACCELERATE = "accelerate"
ROOT = Path(__file__).resolve().parents[2]
CONFIGS_DIR = ROOT / "configs" / "accelerate"
LAUNCHER_HELP = (
    "Where the run trains: 'inprocess' (default: in the worker's own process) or 'accelerate:<config>': "
    "`accelerate launch` with a config shipped in configs/accelerate/ (cpu_single, cpu_2proc, gpu_ddp, "
    "deepspeed_zero2, deepspeed_zero3, fsdp) or a path to an accelerate config file (docs/scale.md)."
)
STOP_GRACE_S = 10.0  # after SIGTERM, the process group gets this long before SIGKILL
ERROR_LINES = 30


class LaunchError(RuntimeError):
    """The launched stage exited with an error."""


def launcher_parse(value: str) -> tuple[str, str]:
    """('inprocess', '') or ('accelerate', '<config name or path>'); ValueError for anything else."""
    text = str(value or INPROCESS).strip()
    if text == INPROCESS:
        return INPROCESS, ""
    kind, _, spec = text.partition(":")
    if kind != ACCELERATE or not spec.strip():
        raise ValueError(f"launcher must be 'inprocess' or 'accelerate:<config file>', not {value!r}.")
    return ACCELERATE, spec.strip()


def shipped_configs() -> list[str]:
    """The names of the accelerate configs in configs/accelerate/."""
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))


def accelerate_config_path(spec: str) -> Path:
    """A shipped config's name (with or without .yaml), else the path given. FileNotFoundError when missing."""
    name = spec.removesuffix(".yaml")
    path = CONFIGS_DIR / f"{name}.yaml" if "/" not in spec and name in shipped_configs() else Path(spec).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"No accelerate config {spec!r}: use one of {', '.join(shipped_configs())} or a path to a file."
        )
    return path.resolve()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def single_machine(config: Path) -> bool:
    import yaml

    data = yaml.safe_load(config.read_text()) or {}
    return int(data.get("num_machines") or 1) == 1


def launch_command(module: str, accelerate_config: Path, config_file: Path, port: int | None = None) -> list[str]:
    """The `accelerate launch` command line of a stage (`python -m accelerate.commands.launch`: this interpreter)."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config)]
    if port is not None:
        command += ["--main_process_port", str(port)]
    return [*command, "-m", module, "--config", str(config_file)]


def launch_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The stage's environment: progress as JSON lines, unbuffered output, this checkout importable, one CPU thread
    per process unless set (several processes on one CPU must not each take every core)."""
    env = {**os.environ, **(extra or {})}
    env["RLHF_PROGRESS"] = "json"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def stop_group(process: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the process's whole group (accelerate and every training process), SIGKILL what is left after
    `grace_s`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):  # stragglers of the group, even when the leader has exited
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM when the worker dies, even by SIGKILL; accelerate then stops its
    ranks. Elsewhere a no-op (the worker's own exit paths still stop the group)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _reader(stream, lines: "queue.Queue[str | None]") -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def launch_stage(
    *,
    module: str,
    accelerate_config: Path,
    config_file: Path,
    output_dir: str | Path,
    progress: ProgressCallback | None,
    log: Callable[[str], None] = print,
    tick: Callable[[], None] | None = None,
    tick_s: float = 1.0,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> Path:
    """Run the stage under `accelerate launch` and wait for it; returns its output dir.

    Progress lines become `progress(event)` calls; other lines go to `log`; `tick()` is called at least every
    `tick_s` seconds (the worker checks for a cancel there). An exception from `progress` or `tick`
    (TrainingCancelled) or a stopped worker stops the whole process group and propagates; a non-zero exit raises
    LaunchError with the output's last lines."""
    port = free_port() if single_machine(accelerate_config) else None
    command = launch_command(module, accelerate_config, config_file, port)
    log("launch: " + " ".join(command[2:]))
    process = subprocess.Popen(
        command, cwd=cwd, env=launch_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        bufsize=1, start_new_session=True,  # its own process group: a cancel stops accelerate and every rank
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
    tail: deque[str] = deque(maxlen=ERROR_LINES)
    last_tick = time.monotonic()
    try:
        while True:
            try:
                line = lines.get(timeout=tick_s)
            except queue.Empty:
                line = ""
            if line is None:
                break
            event = event_from_line(line) if line else None
            if event is not None:
                if progress is not None:
                    progress(event)
            elif line:
                tail.append(line)
                log(line)
            if tick is not None and time.monotonic() - last_tick >= tick_s:
                last_tick = time.monotonic()
                tick()
        returncode = process.wait()
    except BaseException:
        stop_group(process)
        raise
    finally:
        if process.stdout is not None:
            process.stdout.close()
    if returncode != 0:
        raise LaunchError(f"accelerate launch exited with status {returncode}:\n" + "\n".join(tail))
    return Path(output_dir)
