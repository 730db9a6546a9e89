#!/usr/bin/env python3
"""A parameter sweep driver for a --dmtcp Slurm job: runs one program per parameter and
asks slurm-dmtcp for a checkpoint between two programs, where nothing is half done.

    python3 sweep.py [--interval 30m] [--results FILE] 'PROGRAM {}' P1 P2 ...

Each program is 'PROGRAM {}' with {} replaced by the parameter, run through the shell.
The sweep's progress lives in this process's memory: DMTCP checkpoints it with everything
else, so after a requeue, a preemption or a new run past the time limit the job goes on
from the last checkpoint, without a progress file of its own. Outside a --dmtcp job it
runs the same sweep without checkpoints.

Needs slurm_dmtcp.py (contrib/python) on PYTHONPATH.
"""

import argparse
import shlex
import subprocess
import sys
import time

import slurm_dmtcp


def log(msg):
    print(f"sweep: {msg}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", help="periodic checkpoint interval to set (e.g. 30m; 0: none)")
    ap.add_argument("--results", help="append one line per finished program to this file")
    ap.add_argument("--checkpoint-timeout", type=float, default=1800.0, help="seconds to wait for a checkpoint")
    ap.add_argument("program", help="command template; {} is replaced by the parameter")
    ap.add_argument("params", nargs="+")
    args = ap.parse_args(argv)

    dmtcp = slurm_dmtcp.in_dmtcp_job()
    if dmtcp:
        st = slurm_dmtcp.status()
        log(f"job {st['job_id']} under DMTCP: {st['processes']} processes, interval {st['interval_s']}s, "
            f"{len(st['generations'])} generations so far")
        if args.interval is not None:
            r = slurm_dmtcp.set_interval(args.interval)
            log(f"interval {r['old_s']}s -> {r['interval_s']}s")
    else:
        log("not in a --dmtcp job: no checkpoints")

    done = []  # survives restarts: it is in the checkpoint
    for p in args.params:
        cmd = args.program.replace("{}", shlex.quote(p))
        t = time.monotonic()
        log(f"run {len(done) + 1}/{len(args.params)}: {cmd}")
        rc = subprocess.run(cmd, shell=True).returncode
        done.append((p, rc))
        log(f"param {p} done: exit {rc} in {time.monotonic() - t:.1f}s")
        if args.results:
            with open(args.results, "a") as f:
                f.write(f"{p} {rc}\n")
        if not dmtcp:
            continue
        # A safe point: the program has finished and its result is recorded.
        asked = time.monotonic()
        try:
            ck = slurm_dmtcp.checkpoint(timeout=args.checkpoint_timeout)
        except slurm_dmtcp.Error as e:
            log(f"checkpoint after param {p} failed: {e}; going on")
            continue
        if ck.restored:
            log(f"restored from generation {ck.generation} (checkpoint after param {p}); going on")
        else:
            log(f"checkpoint after param {p}: generation {ck.generation}, {ck.bytes} bytes, "
                f"{time.monotonic() - asked:.1f}s from request to commit")
    failed = [p for p, rc in done if rc != 0]
    log(f"all {len(done)} done, {len(failed)} failed" + (f": {' '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
