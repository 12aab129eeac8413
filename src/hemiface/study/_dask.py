"""`study run --scheduler`: the analyses of a study run on a Dask distributed cluster.

Design: the workers compute, the coordinator records
----------------------------------------------------
Each job is the same call as in a local run (``_run._execute``), sent to a
worker: the worker hashes its input files, runs the analysis, stages its output
files in ``results/.staging-*`` of the study folder and renames the staging
folder into place, then returns the numbers and provenance. Only the
coordinating process (the one that runs ``hemiface study run``) writes to the
study database, one row per finished job, as in a local run. So:

* results on a cluster are the bytes a local run writes (the same function, the
  same atomic rename); a worker never needs the database or its password;
* large result files (depth maps, meshes, overlays) go from the worker to the
  shared folder, never through the scheduler or the coordinator;
* killing a worker or the coordinator loses at most the jobs in flight: a result
  counts once its row is committed, and a folder renamed into ``results/`` without
  a row is replaced by the next run's.

What the workers need
---------------------
* The study folder and its media on storage shared with the coordinator (NFS, a
  cluster file system), mounted at the same path: the jobs carry absolute paths.
  Before submitting anything, every worker must read a check file that the
  coordinator has just written into ``results/`` and must be able to create a
  folder there, or the run is refused with the worker's address.
* The same hemiface: the same version and the same code (a SHA-256 of its Python
  sources, so that two development checkouts of one version are told apart).
  Checked on every worker before the run and again in each job (for workers that
  join later); a mismatch is refused, naming the worker and both versions.

A worker that dies is Dask's business first: the scheduler gives its jobs to
another worker, up to ``distributed.scheduler.allowed-failures`` times (3 by
default); a job that outlives that many workers is recorded as failed with that
reason (retried with ``--retry-failed``). A worker that cannot run hemiface at all,
or a scheduler that goes away, stops the run (nothing of the job is recorded) like
a full disk does.

``local:N`` starts a ``LocalCluster`` of N single-threaded worker processes bound
to 127.0.0.1, for a machine without a cluster and for tests.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import logging
import os
import re
import secrets
import signal
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import __version__, logger
from ._errors import StudyError
from ._staging import make_staging

LOCAL_PREFIX = "local:"
#: How long to wait for the first worker of a cluster that has none yet.
WORKER_WAIT_S = 60.0
_CHECK_PREFIX = ".worker-check-"


class WorkerMismatchError(StudyError, RuntimeError):
    """A Dask worker runs another hemiface than the coordinator."""


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 over the relative path and bytes of every Python source of the installed hemiface."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _mismatch(worker: str, theirs: tuple[str, str], ours: tuple[str, str]) -> str | None:
    """Why a worker's hemiface ``(version, code fingerprint)`` cannot run this run's jobs, or None."""
    if theirs[0] != ours[0]:
        return (f"Dask worker {worker} runs hemiface {theirs[0]}, this run hemiface {ours[0]}: "
                f"install hemiface {ours[0]} on every worker (one study's results come from one version)")
    if theirs[1] != ours[1]:
        return (f"Dask worker {worker} runs hemiface {theirs[0]} with other code than this run (another checkout "
                "or local edits): install the same hemiface on every worker")
    return None


#: How long the probe of a tcp:// or tls:// scheduler address waits for the TCP connection (s).
PROBE_TIMEOUT_S = 5.0


def _probe(address: str) -> None:
    """Open and close one TCP connection to a tcp:// or tls:// scheduler address (other schemes: nothing).

    Dask's client retries a refused connection until its connect timeout (30 s by
    default); a closed port or a wrong host answers this probe at once.
    """
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, location = parse_address(address)
    if scheme not in ("tcp", "tls"):
        return
    host, port = parse_host_port(location)
    with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
        pass


def _first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (Dask's messages run over several lines)."""
    lines = str(exc).splitlines()
    return f"{exc.__class__.__name__}: {lines[0]}" if lines else exc.__class__.__name__


def parse_scheduler(scheduler) -> tuple[str, object]:
    """``("local", n_workers)`` for ``local:N``, ``("address", address)`` for a scheduler address; else StudyError.

    An address with a user name or password is refused (Dask authenticates with TLS certificates,
    never in the address), and the message shows it with those masked.
    """
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise StudyError(f"scheduler must be a Dask scheduler address (tcp://HOST:PORT) or local:N; got {scheduler!r}")
    scheduler = scheduler.strip()
    shown = repr(re.sub(r"://[^/@]*@", "://***@", scheduler))
    if scheduler.startswith(LOCAL_PREFIX):
        n = scheduler[len(LOCAL_PREFIX):]
        if not n.isdigit() or int(n) < 1:
            raise StudyError(f"scheduler {shown}: local:N needs a whole number of workers >= 1, e.g. local:2")
        return "local", int(n)
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        protocol, location = parse_address(scheduler, strict=True)
        if protocol in ("tcp", "tls", "ws", "wss", "ucx"):
            parse_host_port(location)  # a host and a port
    except ValueError:
        protocol = None
    if protocol not in backends or "@" in scheduler:
        raise StudyError(f"scheduler {shown} is not a Dask scheduler address: give tcp://HOST:PORT "
                         "(or tls://HOST:PORT), or local:N for N workers on this machine")
    return "address", scheduler


def _worker_facts(results_dir: str, check_name: str, nonce: str) -> dict:
    """On a worker: its hemiface, and whether it sees (and can write into) the coordinator's results folder."""
    facts = {"version": __version__, "code": code_fingerprint(), "sees_study": False, "can_write": False}
    try:
        facts["sees_study"] = (Path(results_dir) / check_name).read_text() == nonce
    except OSError:
        pass
    try:
        make_staging(Path(results_dir), ".staging-check-").release()
        facts["can_write"] = True
    except OSError:
        pass
    return facts


#: glibc's malloc thresholds a Dask worker's job sets (bytes); see :func:`_undo_nanny_malloc_trim`.
WORKER_MMAP_THRESHOLD = 32 * 2**20
WORKER_TRIM_THRESHOLD = 64 * 2**20
_malloc_tuned = False


def _undo_nanny_malloc_trim() -> None:
    """On a worker started by a Dask nanny, once: give glibc's malloc back a large mmap and trim threshold.

    The nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (to hand freed memory back to the
    system), and setting any threshold turns off glibc's adaptive mmap threshold: every array above
    128 KiB is then a fresh mmap, faulted in page by page. A photo analysis took 0.80 s per photo on such
    a worker against 0.56-0.61 s in a plain process, and 0.56 s with these thresholds. A worker keeps at
    most about 64 MiB of freed memory this way. Nothing happens off glibc or without the nanny's setting.
    """
    global _malloc_tuned
    if _malloc_tuned or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    _malloc_tuned = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameters
        libc.mallopt(m_mmap_threshold, WORKER_MMAP_THRESHOLD)
        libc.mallopt(m_trim_threshold, WORKER_TRIM_THRESHOLD)
    except (OSError, AttributeError):  # not glibc
        pass


@dataclass(frozen=True)
class _Checked:
    """A job's function, refused on a worker whose hemiface is not the coordinator's (a worker that joined late)."""

    fn: object
    version: str
    code: str

    def __call__(self, *args):
        here = (__version__, code_fingerprint())
        if here != (self.version, self.code):
            from distributed import get_worker

            raise WorkerMismatchError(_mismatch(get_worker().address, here, (self.version, self.code)))
        _undo_nanny_malloc_trim()
        return self.fn(*args)


@contextmanager
def _interrupts_deferred():
    """In the main thread: Ctrl-C and SIGTERM during the block interrupt (KeyboardInterrupt) only after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt(f"signal {caught[0]}")


class DaskPool:
    """Jobs on a Dask cluster behind the interface of the local pool (``submit``, ``lost``, ``stop``, ``close``)."""

    def __init__(self, scheduler: str, results_dir: Path):
        import dask
        from distributed import Client

        kind, where = parse_scheduler(scheduler)
        self.cluster = None
        self.client = None
        try:
            if kind == "local":
                from distributed import LocalCluster

                with _interrupts_deferred():  # a cluster half started cannot be closed, so Ctrl-C waits for it
                    try:
                        # its own log (connections, workers closing slowly) is Dask's business, not the run's
                        self.cluster = LocalCluster(n_workers=where, threads_per_worker=1, processes=True,
                                                    host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                                    silence_logs=logging.ERROR)
                    except Exception as exc:  # noqa: BLE001 - no ports, no processes: one line
                        raise StudyError(f"cannot start a local Dask cluster of {where} workers "
                                         f"({_first_line(exc)})") from None
                    self.address = self.cluster.scheduler_address
                    self.client = Client(self.cluster, set_as_default=False)
            else:
                self.address = where
                timeout = dask.config.get("distributed.comm.timeouts.connect")
                try:
                    _probe(where)
                    self.client = Client(where, timeout=timeout, set_as_default=False)
                except Exception as exc:  # noqa: BLE001 - refused, timed out, TLS without its settings: one line
                    raise StudyError(f"cannot reach the Dask scheduler at {where} ({_first_line(exc)}): start it "
                                     "(`dask scheduler`) or correct the address") from None
            self._check_workers(Path(results_dir))
        except BaseException:
            self.stop()
            raise
        self.executor = self.client.get_executor(pure=False)

    def _check_workers(self, results_dir: Path) -> None:
        try:
            self.client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            raise StudyError(f"the Dask scheduler at {self.address} has no workers "
                             f"(none joined within {WORKER_WAIT_S:.0f} s): start `dask worker {self.address}`") from None
        nonce = secrets.token_hex(16)
        fd, check = tempfile.mkstemp(prefix=_CHECK_PREFIX, dir=results_dir)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(nonce)
            facts = self.client.run(_worker_facts, str(results_dir), Path(check).name, nonce, on_error="return")
        finally:
            os.unlink(check)
        study = results_dir.parent
        for worker, fact in sorted(facts.items()):
            if isinstance(fact, BaseException):
                raise StudyError(f"Dask worker {worker} cannot run hemiface's checks ({_first_line(fact)}): "
                                 f"install hemiface {__version__} on every worker")
            problem = _mismatch(worker, (fact["version"], fact["code"]), (__version__, code_fingerprint()))
            if problem is not None:
                raise WorkerMismatchError(problem)
            if not fact["sees_study"]:
                problem = (f"Dask worker {worker} does not see this study's folder {study}: the study folder and "
                           "its media must be on storage shared with every worker, mounted at the same path")
                raise StudyError(problem)
            if not fact["can_write"]:
                raise StudyError(f"Dask worker {worker} cannot write into {results_dir} (read-only or no permission)")
        logger.info("study run: %d Dask workers at %s, each with hemiface %s", len(facts), self.address, __version__)

    def submit(self, fn, *args):
        """Run ``fn(*args)`` on a worker; a concurrent.futures.Future."""
        return self.executor.submit(_Checked(fn, __version__, code_fingerprint()), *args)

    @staticmethod
    def lost(exc: BaseException) -> tuple[str, str]:
        """``(status, message)`` for a job whose future raised: ``failed`` (recorded) or ``environment`` (stop)."""
        from distributed.scheduler import KilledWorker

        if isinstance(exc, KilledWorker):
            return "failed", (f"the Dask workers running it died, {exc.allowed_failures + 1} workers in turn "
                              "(out of memory, or killed)")
        if isinstance(exc, WorkerMismatchError):
            return "environment", str(exc)
        if isinstance(exc, concurrent.futures.CancelledError):
            return "environment", "the Dask scheduler cancelled it (the scheduler restarted or was lost)"
        return "environment", f"a Dask worker could not run it ({_first_line(exc)})"

    def stop(self) -> None:
        """Cancel every job not finished and let go of the cluster (a ``local:N`` one ends)."""
        executor = getattr(self, "executor", None)
        if executor is not None:
            executor.shutdown(wait=False)
        self.close()

    def close(self) -> None:
        for part in (self.client, self.cluster):
            if part is not None:
                try:
                    part.close()
                except Exception as exc:  # noqa: BLE001 - already gone; nothing of the study depends on it
                    logger.debug("closing %s: %s", part.__class__.__name__, exc)
        self.client = self.cluster = None
