"""Control the checkpoints of the --dmtcp Slurm job this program runs in.

A driver script inside a ``sbatch --dmtcp`` job asks its slurm-dmtcp agent for a checkpoint
at a safe point (between two programs, say), reads the job's status and its checkpoint
generations, and changes the periodic interval::

    import slurm_dmtcp

    for params in sweep:
        subprocess.run(["./simulate", *params], check=True)
        done.append(params)
        ckpt = slurm_dmtcp.checkpoint()        # returns once the checkpoint is committed
        if ckpt.restored:                      # ...or when the job restarts from it
            print("resumed from generation", ckpt.generation)

Standard library only (Python 3.9+). It speaks the agent's control protocol (version 1,
one JSON object per line over the Unix socket named by $SLURM_DMTCP_CONTROL_SOCKET; see
proto/control/PROTOCOL.md).

DMTCP checkpoints this very process too. While it does, the agent closes any connection
this process holds (DMTCP could not complete otherwise), so `checkpoint()` waits on
short-lived connections and reconnects; when the job is restored from that checkpoint
(a requeue, preemption, a new run past the time limit), `checkpoint()` returns with
``restored=True`` in the restored process.
"""

import errno
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

__all__ = [
    "PROTOCOL_VERSION", "ENV_SOCKET", "MAX_MESSAGE", "Error", "NotInJob", "AgentError",
    "CheckpointTimeout", "Checkpoint", "Generation", "Client", "in_dmtcp_job", "status",
    "checkpoint", "generations", "set_interval", "ping",
]

PROTOCOL_VERSION = 1
ENV_SOCKET = "SLURM_DMTCP_CONTROL_SOCKET"
MAX_MESSAGE = 64 * 1024
DEFAULT_WAIT = 30 * 60.0


class Error(Exception):
    """Anything that went wrong talking to the agent."""


class NotInJob(Error):
    """No agent to talk to: not inside a --dmtcp job (or its socket is gone)."""


class AgentError(Error):
    """The agent answered with an error. ``code`` is one of PROTOCOL.md's error codes
    (bad_request, unknown_op, too_large, timeout, busy, forbidden, policy, not_found,
    stopping, failed, internal)."""

    def __init__(self, code: str, message: str, ticket: int = 0):
        super().__init__(f"{code}: {message}" + (f" (ticket {ticket})" if ticket else ""))
        self.code = code
        self.message = message
        self.ticket = ticket


class CheckpointTimeout(AgentError):
    """The checkpoint did not finish in time. It goes on: wait(ticket) waits for it."""


@dataclass
class Checkpoint:
    """A requested checkpoint. ``state``: queued, running, done, failed or restored."""

    ticket: int
    state: str
    generation: int = 0
    bytes: int = 0
    path: str = ""
    duration_s: float = 0.0
    restored: bool = False  # this process was restored from a checkpoint while it waited
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Generation:
    """A committed checkpoint generation (gen-NNNNNN folder)."""

    number: int
    time: str
    bytes: int
    reason: str
    path: str
    error: str = ""


class _Lost(Exception):
    """The connection ended before the answer (DMTCP checkpointed us, or the agent went)."""


def _parse_duration(value: Union[int, float, str]) -> Union[int, float, str]:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"interval {value!r}: want seconds (900) or a string such as '90s', '30m', '1h30m', '2d'")
    if isinstance(value, (int, float)) and value < 0:
        raise ValueError(f"interval {value!r}: must not be negative")
    return value


class Client:
    """One agent, one short connection per request.

    ``socket_path`` defaults to $SLURM_DMTCP_CONTROL_SOCKET; ``timeout`` bounds each
    request that does not wait for a checkpoint.
    """

    def __init__(self, socket_path: Optional[str] = None, timeout: float = 10.0):
        self.path = socket_path or os.environ.get(ENV_SOCKET, "")
        if not self.path:
            raise NotInJob(f"{ENV_SOCKET} is not set: this process is not in a --dmtcp job step")
        self.timeout = timeout
        self._next_id = 0

    # -- protocol -------------------------------------------------------------------------

    def _exchange(self, op: str, args: Optional[dict], timeout: float) -> Dict[str, Any]:
        self._next_id += 1
        req = {"v": PROTOCOL_VERSION, "id": self._next_id, "op": op}
        if args:
            req["args"] = args
        line = json.dumps(req, separators=(",", ":")).encode() + b"\n"
        if len(line) > MAX_MESSAGE:
            raise Error(f"{op}: request of {len(line)} bytes exceeds the {MAX_MESSAGE}-byte limit")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            try:
                s.connect(self.path)
            except (FileNotFoundError, ConnectionRefusedError) as e:
                raise NotInJob(f"no agent listening at {self.path}: {e}") from e
            except socket.timeout as e:
                raise Error(f"{op}: the agent at {self.path} did not accept within {timeout:g}s") from e
            except OSError as e:  # PermissionError: another user's socket
                raise Error(f"cannot connect to the agent at {self.path}: {e}") from e
            try:
                try:
                    s.sendall(line)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the agent refused us: its answer may still be there to read
                buf = bytearray()
                while not buf.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        raise _Lost(f"{op}: the agent closed the connection before answering")
                    buf += chunk
                    if len(buf) > MAX_MESSAGE:
                        raise Error(f"{op}: answer longer than {MAX_MESSAGE} bytes")
            except socket.timeout as e:
                raise Error(f"{op}: no answer from the agent within {timeout:g}s") from e
            except (ConnectionResetError, BrokenPipeError) as e:
                raise _Lost(f"{op}: {e}") from e
            except OSError as e:
                if e.errno in (errno.ECONNRESET, errno.EPIPE, errno.EBADF, errno.ENOTCONN):
                    raise _Lost(f"{op}: {e}") from e
                raise
        finally:
            s.close()
        try:
            resp = json.loads(bytes(buf[:buf.index(b"\n")]))
        except ValueError as e:
            raise Error(f"{op}: malformed answer from the agent: {e}") from e
        if not isinstance(resp, dict) or resp.get("v") != PROTOCOL_VERSION:
            raise Error(f"{op}: answer in an unknown protocol version: {resp!r:.200}")
        if not resp.get("ok") and resp.get("id") in (0, self._next_id):
            err = resp.get("error") or {}
            code, msg, ticket = err.get("code", "internal"), err.get("message", "no message"), err.get("ticket", 0)
            cls = CheckpointTimeout if code == "timeout" and ticket else AgentError
            raise cls(code, msg, ticket)
        if not resp.get("ok"):
            raise Error(f"{op}: error answer to request {resp.get('id')}, want {self._next_id}")
        if resp.get("id") != self._next_id:
            raise Error(f"{op}: answer to request {resp.get('id')}, want {self._next_id}")
        return resp.get("result") or {}

    def request(self, op: str, args: Optional[dict] = None, timeout: Optional[float] = None,
                retries: int = 3) -> Dict[str, Any]:
        """Sends one request and returns its result. A connection lost before the answer
        (DMTCP checkpointing this process) is retried: use it only for requests that can
        safely run twice."""
        timeout = self.timeout if timeout is None else timeout
        for attempt in range(retries + 1):
            try:
                return self._exchange(op, args, timeout)
            except _Lost as e:
                if attempt == retries:
                    raise Error(str(e)) from e
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- requests -------------------------------------------------------------------------

    def ping(self) -> Dict[str, Any]:
        """Who answers: protocol, job_id, step, restart_count, agent_pid, started."""
        return self.request("ping")

    def status(self) -> Dict[str, Any]:
        """State, coordinator, processes under DMTCP, interval, last and next checkpoint,
        generations (the keys of PROTOCOL.md, "status")."""
        return self.request("status")

    def generations(self) -> List[Generation]:
        """The committed generations, oldest first."""
        res = self.request("generations")
        return [Generation(number=g.get("number", 0), time=g.get("time", ""), bytes=g.get("bytes", 0),
                           reason=g.get("reason", ""), path=g.get("path", ""), error=g.get("error", ""))
                for g in res.get("generations") or []]

    def set_interval(self, interval: Union[int, float, str]) -> Dict[str, Any]:
        """Sets the periodic interval: seconds, or '90s', '30m', '1h30m', '2d'; 0 turns
        periodic checkpoints off. The site's min_interval holds (AgentError 'policy')."""
        return self.request("interval", {"interval": _parse_duration(interval)})

    def checkpoint(self, wait: bool = True, timeout: Optional[float] = None) -> Checkpoint:
        """Checkpoints the job now. With wait (the default) it returns when the checkpoint
        is committed as a generation, raising AgentError('failed') if it failed and
        CheckpointTimeout after ``timeout`` seconds (default 30 min; the checkpoint goes
        on). If this process is later restored from this checkpoint, the call returns
        in the restored process with ``restored=True``. Without wait it returns the
        queued ticket at once."""
        hello = self.ping()
        res = self.request("checkpoint", retries=0)  # queued; the agent answers before it starts
        ticket = int(res.get("ticket", 0))
        if not wait:
            return _checkpoint(res)
        return self._wait(ticket, DEFAULT_WAIT if timeout is None else float(timeout), hello)

    def wait(self, ticket: int, timeout: Optional[float] = None) -> Checkpoint:
        """Waits for a checkpoint queued with checkpoint(wait=False)."""
        return self._wait(int(ticket), DEFAULT_WAIT if timeout is None else float(timeout), self.ping())

    def _wait(self, ticket: int, timeout: float, hello: Dict[str, Any]) -> Checkpoint:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckpointTimeout("timeout", f"checkpoint not finished after {timeout:g}s; it goes on", ticket)
            try:
                # The agent bounds the wait; our socket timeout leaves it room to answer.
                res = self._exchange("wait", {"ticket": ticket, "timeout": max(left, 0.001)}, left + 10)
                return _checkpoint(res)
            except (_Lost, NotInJob):
                # DMTCP checkpointed this process (the agent closed the connection so the
                # checkpoint could go on), or the job was restored from it and the agent
                # is a new one. Which? Ask again.
                time.sleep(0.2)
                now = self._hello_or_none(deadline)
                if now is None:
                    continue
                if _restarted(hello, now):
                    return Checkpoint(ticket=ticket, state="restored", restored=True,
                                      generation=int(now.get("restored_generation", 0)), raw=now)
            except AgentError as e:
                if e.code == "not_found":
                    now = self._hello_or_none(deadline)
                    if now is not None and _restarted(hello, now):
                        return Checkpoint(ticket=ticket, state="restored", restored=True,
                                          generation=int(now.get("restored_generation", 0)), raw=now)
                raise

    def _hello_or_none(self, deadline: float) -> Optional[Dict[str, Any]]:
        while time.monotonic() < deadline:
            try:
                return self._exchange("ping", None, min(self.timeout, max(deadline - time.monotonic(), 0.1)))
            except (_Lost, NotInJob):
                time.sleep(0.5)  # a restored job's agent may still be starting
        return None


def _restarted(before: Dict[str, Any], now: Dict[str, Any]) -> bool:
    return (before.get("restart_count") != now.get("restart_count")
            or before.get("agent_pid") != now.get("agent_pid")
            or before.get("started") != now.get("started"))


def _checkpoint(res: Dict[str, Any]) -> Checkpoint:
    return Checkpoint(ticket=int(res.get("ticket", 0)), state=res.get("state", ""),
                      generation=int(res.get("generation", 0)), bytes=int(res.get("bytes", 0)),
                      path=res.get("path", ""), duration_s=float(res.get("duration_s", 0.0)), raw=res)


def in_dmtcp_job() -> bool:
    """True when this process runs in a --dmtcp job step that has a control socket."""
    return bool(os.environ.get(ENV_SOCKET))


def ping() -> Dict[str, Any]:
    return Client().ping()


def status() -> Dict[str, Any]:
    """See Client.status."""
    return Client().status()


def generations() -> List[Generation]:
    """See Client.generations."""
    return Client().generations()


def set_interval(interval: Union[int, float, str]) -> Dict[str, Any]:
    """See Client.set_interval."""
    return Client().set_interval(interval)


def checkpoint(wait: bool = True, timeout: Optional[float] = None) -> Checkpoint:
    """See Client.checkpoint."""
    return Client().checkpoint(wait=wait, timeout=timeout)
