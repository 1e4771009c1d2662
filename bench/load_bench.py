#!/usr/bin/python3
"""Webhook load benchmark (issue 6): signed GitHub push webhooks from a
second process (tools/webhook-load) at sustained rates into webhook-ingest
on real NATS JetStream and Redis, side by side with a baseline in the same
run; then every webhook answered 2xx is looked up in JetStream.

  baseline   GET /healthz on the same ingest, same rate and connections:
             the HTTP server alone (no signature, no parse, no publish).
  webhooks   POST /webhooks/github, each signed (X-Hub-Signature-256) with
             its own delivery id and revision: signature check, parse,
             JetStream publish acknowledged before the 202.

The rate is open-loop (request k is due at start + k/rate) and latency
counts from when a request was due, so a server that falls behind shows it
in p99 instead of slowing the load down. Only nats-server, redis-server and
webhook-ingest run (no evaluator takes the changes away), so the check
drains FLURRY_CHANGES and compares ids: "missing" must be 0.

Usage: bench/load_bench.py [--rates 500,1000,2000,4000] [--duration 10]
                           [--connections 32] [--build-dir build]
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
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout_s} s")


def wait_port(port: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open in {timeout_s} s")


class Servers:
    """nats-server, redis-server and webhook-ingest under one directory."""

    def __init__(self, root: str, build_dir: str, workers: int):
        self.root = root
        self.nats_port, self.redis_port, self.ingest_port = free_port(), free_port(), free_port()
        self.secret = os.path.join(root, "webhook-secret")
        with open(self.secret, "w") as f:
            f.write("load-bench-secret-0123456789")
        os.chmod(self.secret, 0o600)
        config = os.path.join(root, "flurry.toml")
        with open(config, "w") as f:
            f.write(f"""[log]
level = "warn"
[nats]
url = "nats://127.0.0.1:{self.nats_port}"
[redis]
host = "127.0.0.1"
port = {self.redis_port}
[http]
workers = {workers}
[webhook-ingest]
listen = "127.0.0.1:{self.ingest_port}"
[webhook-ingest.github]
secret_file = "{self.secret}"
""")
        logs = open(os.path.join(root, "servers.log"), "w")
        self.procs = [
            subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.nats_port), "-sd",
                              os.path.join(root, "nats")], stdout=logs, stderr=subprocess.STDOUT),
            subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--dir", root,
                              "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
                             stdout=logs, stderr=subprocess.STDOUT),
        ]
        wait_port(self.nats_port)
        wait_port(self.redis_port)
        ingest = os.path.join(build_dir, "services", "webhook-ingest", "flurry-webhook-ingest")
        self.procs.append(subprocess.Popen([ingest, "--config", config], stdout=logs, stderr=subprocess.STDOUT))
        self.ingest = f"http://127.0.0.1:{self.ingest_port}"
        wait_http(self.ingest + "/healthz")

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def run_load(tool: str, args: list) -> dict:
    out = subprocess.run([tool, "send", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="500,1000,2000,4000")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=4, help="http.workers of the ingest")
    ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--require-all-ok", action="store_true",
                    help="fail unless every request was answered 2xx (the CI run: correctness, never speed)")
    args = ap.parse_args()
    tool = os.path.join(args.build_dir, "tools", "webhook-load", "flurry-webhook-load")
    if not os.access(tool, os.X_OK):
        print(f"build first: {tool} is missing", file=sys.stderr)
        return 2
    root = tempfile.mkdtemp(prefix="flurry-load-bench-")
    lost = 0
    not_ok = 0
    try:
        servers = Servers(root, args.build_dir, args.workers)
        try:
            print(f"{args.duration:g} s per rate, {args.connections} connections, ingest http.workers={args.workers}")
            print("| load | rate asked /s | answered /s | 2xx | other | errors | p50 ms | p90 ms | p99 ms | max ms | in JetStream |")
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            for rate in [float(r) for r in args.rates.split(",")]:
                common = ["--rate", f"{rate:g}", "--duration", f"{args.duration:g}", "--connections", str(args.connections)]
                rows = [("healthz (baseline)", run_load(tool, ["--url", servers.ingest + "/healthz", "--get", *common]), None)]
                ids = os.path.join(root, f"accepted-{rate:g}.txt")
                hooks = run_load(tool, ["--url", servers.ingest + "/webhooks/github", "--secret-file", servers.secret,
                                        "--accepted-out", ids, *common])
                check = subprocess.run([tool, "verify", "--nats", f"nats://127.0.0.1:{servers.nats_port}", "--ids", ids],
                                       capture_output=True, text=True)
                found = json.loads(check.stdout.strip().splitlines()[-1]) if check.stdout.strip() else None
                rows.append(("signed webhooks", hooks, found))
                for name, r, f in rows:
                    other = r["answered"] - r["ok"]
                    not_ok += r["planned"] - r["ok"]
                    stored = "" if f is None else f"{f['found']}/{f['accepted']} (missing {f['missing']})"
                    if f is not None:
                        lost += f["missing"]
                    print(f"| {name} | {rate:g} | {r['answered_per_s']:.0f} | {r['ok']} | {other} | {r['errors']} | "
                          f"{r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | {stored} |",
                          flush=True)
                if check.returncode not in (0, 1):
                    print(f"verify failed: {check.stderr.strip()}", file=sys.stderr)
                    return 2
        finally:
            servers.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if lost:
        print(f"LOST: {lost} webhooks answered 2xx are not in JetStream", file=sys.stderr)
        return 1
    if args.require_all_ok and not_ok:
        print(f"FAILED: {not_ok} requests were not answered 2xx", file=sys.stderr)
        return 1
    print("every webhook answered 2xx was found in JetStream")
    return 0


if __name__ == "__main__":
    sys.exit(main())
