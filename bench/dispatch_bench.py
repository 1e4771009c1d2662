#!/usr/bin/python3
"""Dispatch benchmark (issue 4): DAGs of jobs through real NATS and Redis and
the builder's own handler, with a build runner that succeeds at once, so
that only scheduling is measured: jobs per second, latency from a job
being ready (its last dependency finished) to its build starting (p50,
p99), and Redis commands per job, for wide (no edges), deep (chains of
100) and mixed (layers of 1,000, two edges each) shapes at each size.

It starts its own nats-server (JetStream) and redis-server on free loopback
ports. The baseline is the same run's smallest size: how per-job cost
changes from there to the largest.

Usage: bench/dispatch_bench.py [--sizes 10000,100000] [--shapes wide,deep,mixed] [--slots 8]
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--shapes", default="wide,deep,mixed")
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--appendfsync", default="everysec", choices=["everysec", "always", "no"],
                    help="redis-server's AOF fsync policy (README: always is advised in production)")
    ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    args = ap.parse_args()
    tool = os.path.join(args.build_dir, "tools", "dispatch-bench", "flurry-dispatch-bench")
    if not os.access(tool, os.X_OK):
        print(f"build first: {tool} is missing", file=sys.stderr)
        return 2
    root = tempfile.mkdtemp(prefix="flurry-dispatch-bench-")
    nats_port, redis_port = free_port(), free_port()
    servers = [
        subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(nats_port), "-sd", os.path.join(root, "nats")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                          "--appendfsync", args.appendfsync, "--dir", root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        wait_port(nats_port)
        wait_port(redis_port)
        print(f"{'shape':>6} {'jobs':>7} {'jobs/s':>8} {'ready->started p50 ms':>22} {'p99 ms':>8} {'redis cmds/job':>15} "
              f"{'s/1k jobs vs smallest':>22}")
        sizes = [int(s) for s in args.sizes.split(",") if s]
        for shape in args.shapes.split(","):
            first = None
            for n in sizes:
                out = subprocess.run([tool, "--nats", f"nats://127.0.0.1:{nats_port}", "--redis-port", str(redis_port), "--jobs",
                                      str(n), "--shape", shape, "--slots", str(args.slots)],
                                     capture_output=True, text=True, check=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                per_k = 1000 * r["seconds"] / n
                first = first or per_k
                print(f"{shape:>6} {n:>7} {r['jobs_per_second']:>8.0f} {r['ready_to_started_p50_ms']:>22} "
                      f"{r['ready_to_started_p99_ms']:>8} {r['redis_commands_per_job']:>15.1f} {per_k / first:>21.2f}x", flush=True)
    finally:
        for s in servers:
            s.terminate()
            s.wait()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
