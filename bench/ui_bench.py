#!/usr/bin/python3
"""Web UI benchmark (issue 15): the listing API and the pages, against a
Redis filled as after months of use.

It starts its own redis-server and nats-server on free loopback ports,
fills Redis with `flurry-ui-bench-seed` through the production adapters
(10,000 evals of 9 jobs over 20 projects, two evals of 10,000 jobs, one
job with a 50 MiB log), starts `flurry-web` on it and measures:

- the API: each endpoint the pages use, sequential requests on fresh
  connections, p50/p99/max; baseline: the same server's /healthz (HTTP and
  process cost, no Redis) in the same run;
- the pages in headless Chromium (bench/ui_bench.mjs, playwright-core
  from tests/browser): time from navigation to drawn and idle for the eval
  page of 10,000 jobs, the job page of the 50 MiB log (first lines shown),
  a filter typed on the big eval page; baseline: the projects page (the
  app's own HTML, CSS and JS and 20 rows of data) in the same browser.

Usage: bench/ui_bench.py [--evals 10000] [--big-jobs 10000] [--log-mb 50] [--requests 300] [--runs 5]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from load_bench import free_port, wait_http, wait_port  # noqa: E402  (the benches' server helpers)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        if r.status != 200:
            raise RuntimeError(f"{url}: {r.status}")
        return r.read()


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def time_requests(url: str, n: int):
    for _ in range(10):  # warm up
        get(url)
    ms, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        size = len(get(url))
        ms.append(1000 * (time.perf_counter() - t))
    return ms, size


def api_endpoints(base: str, seed: dict):
    p = seed["project"]
    q = urllib.parse.urlencode({"forge": p["forge"], "owner": p["owner"], "repo": p["repo"]})
    evals = f"{base}/api/project/evals?{q}"
    # A cursor 15 pages (450 evals) deep: paging costs the same anywhere.
    cursor = ""
    for _ in range(15):
        page = json.loads(get(evals + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")))
        cursor = page["next_cursor"] or ""
    big, small, log_job = seed["big_eval"], seed["small_eval"], seed["log_job"]
    tail = max(0, seed["log_bytes"] - 65536)
    return [
        ("baseline: /healthz", f"{base}/healthz"),
        ("projects", f"{base}/api/projects"),
        ("project (refs)", f"{base}/api/project?{q}"),
        ("evals, first page", evals),
        ("evals, 15 pages deep", evals + f"&cursor={urllib.parse.quote(cursor)}"),
        ("evals of main", evals + "&ref=refs%2Fheads%2Fmain"),
        ("compare (9 jobs)", f"{base}/api/evals/{small}/compare"),
        ("badge", f"{base}/badge/{p['forge']}/{p['owner']}/{p['repo']}.svg"),
        ("eval (record)", f"{base}/api/evals/{big}"),
        ("compare (10,000 jobs)", f"{base}/api/evals/{big}/compare"),
        ("eval jobs (10,000)", f"{base}/api/evals/{big}/jobs"),
        ("log, 64 KiB at the end of 50 MiB", f"{base}/api/jobs/{log_job}/log?offset={tail}&limit=65536"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evals", type=int, default=10000)
    ap.add_argument("--big-jobs", type=int, default=10000)
    ap.add_argument("--log-mb", type=int, default=50)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    seed_tool = os.path.join(args.build_dir, "tools", "ui-bench-seed", "flurry-ui-bench-seed")
    web = os.path.join(args.build_dir, "services", "web", "flurry-web")
    for tool in (seed_tool, web):
        if not os.access(tool, os.X_OK):
            print(f"build first (./flurry build): {tool} is missing", file=sys.stderr)
            return 2
    root = tempfile.mkdtemp(prefix="flurry-ui-bench-")
    nats_port, redis_port, web_port = free_port(), free_port(), free_port()
    procs = [
        subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(nats_port), "-sd", os.path.join(root, "nats")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        wait_port(nats_port)
        wait_port(redis_port)
        out = subprocess.run([seed_tool, "--redis-port", str(redis_port), "--evals", str(args.evals), "--big-jobs",
                              str(args.big_jobs), "--log-mb", str(args.log_mb)], capture_output=True, text=True, check=True).stdout
        seed = json.loads(out.strip().splitlines()[-1])
        info = subprocess.run(["redis-cli", "-p", str(redis_port), "info", "memory"], capture_output=True, text=True).stdout
        mem = next((l.split(":")[1].strip() for l in info.splitlines() if l.startswith("used_memory_human:")), "?")
        print(f"seeded {seed['evals']:,} evals, {seed['jobs']:,} jobs, a {args.log_mb} MiB log in {seed['seconds']:.1f} s; "
              f"Redis holds {mem}", flush=True)

        config = os.path.join(root, "web.toml")
        with open(config, "w") as f:
            f.write(f'[nats]\nurl = "nats://127.0.0.1:{nats_port}"\n[redis]\nport = {redis_port}\n'
                    f'[web]\nlisten = "127.0.0.1:{web_port}"\npublic_url = "http://127.0.0.1:{web_port}"\n'
                    f'assets_dir = "{ROOT}/services/web/assets"\n[log]\nlevel = "warn"\n')
        procs.append(subprocess.Popen([web, "--config", config], stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "web.log"), "w")))
        base = f"http://127.0.0.1:{web_port}"
        wait_http(base + "/healthz")

        print(f"\nAPI: {args.requests} sequential requests each, a new connection per request (target: listing p99 < 50 ms)")
        print(f"{'endpoint':<36} {'bytes':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99 vs baseline':>16}")
        floor = None
        for name, url in api_endpoints(base, seed):
            n = args.requests if "10,000" not in name and "50 MiB" not in name else max(30, args.requests // 10)
            ms, size = time_requests(url, n)
            p99 = percentile(ms, 99)
            floor = floor or p99
            print(f"{name:<36} {size:>10,} {percentile(ms, 50):>8.2f} {p99:>8.2f} {max(ms):>8.2f} {p99 / floor:>15.1f}x", flush=True)

        if not args.no_browser:
            mjs = os.path.join(HERE, "ui_bench.mjs")
            print(f"\nPages in headless Chromium, {args.runs} runs each (targets: eval page of 10,000 jobs "
                  f"interactive < 1 s, 50 MiB log's first lines < 1 s)", flush=True)
            subprocess.run(["node", mjs, f"base={base}", f"big_eval={seed['big_eval']}", f"big_jobs={args.big_jobs}", f"log_job={seed['log_job']}", f"log_mb={args.log_mb}",
                            f"runs={args.runs}"], check=True)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
