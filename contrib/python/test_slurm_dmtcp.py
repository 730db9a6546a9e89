"""Tests of slurm_dmtcp against a fake agent on a real Unix socket (python3 -m unittest)."""

import json
import os
import socket
import tempfile
import threading
import unittest
from unittest import mock

import slurm_dmtcp as sd


class FakeAgent:
    """Answers each request with handler(request) -> reply dict, or None to close the
    connection without an answer (what the real agent does while DMTCP checkpoints the
    client)."""

    def __init__(self, handler):
        self.dir = tempfile.mkdtemp(prefix="sdt")
        self.path = os.path.join(self.dir, "control.sock")
        self.handler = handler
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                buf = b""
                while not buf.endswith(b"\n"):
                    d = c.recv(65536)
                    if not d:
                        break
                    buf += d
                if not buf:
                    continue
                req = json.loads(buf)
                self.requests.append(req)
                reply = self.handler(req)
                if reply is None:
                    continue
                if isinstance(reply, bytes):
                    c.sendall(reply)
                    continue
                reply.setdefault("v", 1)
                reply.setdefault("id", req.get("id", 0))
                c.sendall(json.dumps(reply).encode() + b"\n")

    def close(self):
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.rmdir(self.dir)


def ok(result):
    return {"ok": True, "result": result}


def err(code, message, ticket=0):
    e = {"code": code, "message": message}
    if ticket:
        e["ticket"] = ticket
    return {"ok": False, "error": e}


HELLO = {"protocol": 1, "job_id": "42", "step": "batch", "restart_count": 0, "agent_pid": 100,
         "started": "2026-01-01T00:00:00Z"}


class AgentTest(unittest.TestCase):
    def start(self, handler):
        agent = FakeAgent(handler)
        self.addCleanup(agent.close)
        return agent, sd.Client(agent.path, timeout=5)


class TestRequests(AgentTest):
    def test_request_format_and_status(self):
        agent, c = self.start(lambda r: ok({"state": "running", "processes": 2}))
        st = c.status()
        self.assertEqual(st["processes"], 2)
        self.assertEqual(agent.requests, [{"v": 1, "id": 1, "op": "status"}])

    def test_generations(self):
        gens = [{"number": 3, "time": "t", "bytes": 10, "reason": "periodic", "path": "/c/gen-000003"}]
        _, c = self.start(lambda r: ok({"keep": 2, "generations": gens}))
        self.assertEqual(c.generations(), [sd.Generation(3, "t", 10, "periodic", "/c/gen-000003")])

    def test_interval_forms(self):
        agent, c = self.start(lambda r: ok({"old_s": 3600, "interval_s": 600}))
        for value in (600, "10m", "1h30m", 0):
            c.set_interval(value)
        self.assertEqual([r["args"] for r in agent.requests],
                         [{"interval": 600}, {"interval": "10m"}, {"interval": "1h30m"}, {"interval": 0}])
        for bad in (-1, True, None, [1]):
            with self.assertRaises(ValueError):
                c.set_interval(bad)

    def test_agent_error(self):
        _, c = self.start(lambda r: err("policy", "interval 5s is shorter than the site's min_interval 60s"))
        with self.assertRaises(sd.AgentError) as cm:
            c.set_interval(5)
        self.assertEqual(cm.exception.code, "policy")
        self.assertIn("min_interval", str(cm.exception))

    def test_malformed_answers(self):
        for reply, want in ((b"not json\n", "malformed"), (b'{"v":2,"ok":true}\n', "unknown protocol version"),
                            (b"x" * (sd.MAX_MESSAGE + 10), "longer than")):
            with self.subTest(want=want):
                _, c = self.start(lambda r, reply=reply: reply)
                with self.assertRaises(sd.Error) as cm:
                    c.status()
                self.assertIn(want, str(cm.exception))

    def test_no_answer_times_out(self):
        gate = threading.Event()
        self.addCleanup(gate.set)
        _, c = self.start(lambda r: gate.wait(10) and None)
        c.timeout = 0.3
        with self.assertRaises(sd.Error) as cm:
            c.status()
        self.assertIn("no answer", str(cm.exception))

    def test_lost_connection_is_retried(self):
        calls = []

        def handler(r):
            calls.append(r)
            return None if len(calls) == 1 else ok({"state": "running"})

        _, c = self.start(handler)
        self.assertEqual(c.status()["state"], "running")
        self.assertEqual(len(calls), 2)

    def test_permission_denied(self):
        d = tempfile.mkdtemp(prefix="sdt")
        self.addCleanup(os.rmdir, d)
        with mock.patch.object(socket.socket, "connect", side_effect=PermissionError(13, "Permission denied")):
            with self.assertRaises(sd.Error) as cm:
                sd.Client(os.path.join(d, "control.sock")).status()
        self.assertIn("Permission denied", str(cm.exception))
        self.assertNotIsInstance(cm.exception, sd.NotInJob)

    def test_not_in_job(self):
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertFalse(sd.in_dmtcp_job())
            with self.assertRaises(sd.NotInJob):
                sd.Client()
        with mock.patch.dict(os.environ, {sd.ENV_SOCKET: "/nonexistent/control.sock"}):
            self.assertTrue(sd.in_dmtcp_job())
            with self.assertRaises(sd.NotInJob):
                sd.status()


class TestCheckpoint(AgentTest):
    def test_checkpoint_waits_on_short_connections(self):
        def handler(r):
            if r["op"] == "ping":
                return ok(HELLO)
            if r["op"] == "checkpoint":
                self.assertNotIn("args", r, "the checkpoint request itself never waits")
                return ok({"ticket": 7, "state": "queued"})
            return ok({"ticket": 7, "state": "done", "generation": 4, "bytes": 123, "path": "/c/gen-000004",
                       "duration_s": 0.5})

        agent, c = self.start(handler)
        ck = c.checkpoint(timeout=60)
        self.assertEqual((ck.ticket, ck.state, ck.generation, ck.bytes, ck.restored), (7, "done", 4, 123, False))
        self.assertEqual([r["op"] for r in agent.requests], ["ping", "checkpoint", "wait"])
        self.assertEqual(agent.requests[2]["args"]["ticket"], 7)
        self.assertLessEqual(agent.requests[2]["args"]["timeout"], 60)

    def test_no_wait(self):
        _, c = self.start(lambda r: ok(HELLO) if r["op"] == "ping" else ok({"ticket": 2, "state": "queued"}))
        ck = c.checkpoint(wait=False)
        self.assertEqual((ck.ticket, ck.state), (2, "queued"))

    def test_connection_closed_during_checkpoint_then_done(self):
        """DMTCP checkpoints the client: the agent closes the wait; the client asks again."""
        waits = []

        def handler(r):
            if r["op"] == "ping":
                return ok(HELLO)
            if r["op"] == "checkpoint":
                return ok({"ticket": 1, "state": "queued"})
            waits.append(r)
            if len(waits) == 1:
                return None
            return ok({"ticket": 1, "state": "done", "generation": 2})

        agent, c = self.start(handler)
        ck = c.checkpoint(timeout=30)
        self.assertEqual((ck.state, ck.generation, ck.restored), ("done", 2, False))
        self.assertEqual([r["op"] for r in agent.requests], ["ping", "checkpoint", "wait", "ping", "wait"])

    def test_restored_from_the_checkpoint(self):
        """The wait's connection dies, and a new agent (restart 1) answers: restored."""
        state = {"restarted": False}

        def handler(r):
            if r["op"] == "ping":
                h = dict(HELLO)
                if state["restarted"]:
                    h.update(restart_count=1, agent_pid=200, restored_generation=5)
                return ok(h)
            if r["op"] == "checkpoint":
                return ok({"ticket": 3, "state": "queued"})
            state["restarted"] = True
            return None

        _, c = self.start(handler)
        ck = c.checkpoint(timeout=30)
        self.assertTrue(ck.restored)
        self.assertEqual((ck.state, ck.generation, ck.ticket), ("restored", 5, 3))

    def test_unknown_ticket_after_restart(self):
        def handler(r):
            if r["op"] == "ping":
                return ok(dict(HELLO, restart_count=1, agent_pid=300, restored_generation=2))
            return err("not_found", "no checkpoint ticket 9 in this agent")

        _, c = self.start(handler)
        with mock.patch.object(c, "ping", return_value=HELLO):
            ck = c.wait(9, timeout=10)
        self.assertTrue(ck.restored)
        self.assertEqual(ck.generation, 2)

    def test_failed_checkpoint(self):
        def handler(r):
            if r["op"] == "ping":
                return ok(HELLO)
            if r["op"] == "checkpoint":
                return ok({"ticket": 1, "state": "queued"})
            return err("failed", "checkpoint failed: no process under DMTCP", 1)

        _, c = self.start(handler)
        with self.assertRaises(sd.AgentError) as cm:
            c.checkpoint()
        self.assertEqual(cm.exception.code, "failed")
        self.assertEqual(cm.exception.ticket, 1)

    def test_timeout(self):
        def handler(r):
            if r["op"] == "ping":
                return ok(HELLO)
            if r["op"] == "checkpoint":
                return ok({"ticket": 4, "state": "queued"})
            return err("timeout", "checkpoint not finished after 0.2s", 4)

        _, c = self.start(handler)
        with self.assertRaises(sd.CheckpointTimeout) as cm:
            c.checkpoint(timeout=0.2)
        self.assertEqual(cm.exception.ticket, 4)


if __name__ == "__main__":
    unittest.main()
