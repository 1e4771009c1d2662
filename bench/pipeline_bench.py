#!/usr/bin/python3
"""Pipeline benchmark (issue 4): N trivial derivations through the whole
local stack, webhook to the eval's end, against `nix build` of the same N
derivations, side by side in one run.

  flurry     `flurry up --example <flake> --exit-when-done` on a fresh state
             directory: webhook-ingest, evaluator, builders, uploader and
             reporter on real NATS and Redis. Measured from the line saying
             the signed push webhook was accepted to the line saying the
             eval ended (every job has a result; the last commit status is
             posted right after).
  baseline   one `nix build --no-link <ref>#checks.x86_64-linux.<each>`
             over a copy of the flake with its own nonce (so nothing is
             built already): evaluation and builds, no CI around them.

Also printed: the stack's start-up time (not part of the measured span).

Usage: bench/pipeline_bench.py [--checks 1000] [--build-dir build]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import eval_bench  # noqa: E402  (flake generation and git helpers)


def write_flake(directory: str, n: int) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "flake.nix"), "w") as f:
        f.write(eval_bench.flake_text(n, str(time.time_ns()), "trivial"))


def run_flurry(tool: str, n: int, root: str, timeout_s: int):
    """Returns (seconds from webhook accepted to eval end, start-up seconds, eval line)."""
    flake = os.path.join(root, "flurry-flake")
    write_flake(flake, n)
    state = os.path.join(root, "state")
    start = time.monotonic()
    p = subprocess.Popen([tool, "up", "--state-dir", state, "--port", "0", "--example", flake, "--exit-when-done",
                          "--timeout", str(timeout_s)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())
    sent = ended = None
    up_at = None
    eval_line = ""
    for line in p.stdout:
        now = time.monotonic()
        if up_at is None and "services are up" in line:
            up_at = now
        if sent is None and "sent a signed push webhook" in line:
            sent = now
        if sent is not None and ended is None and line.startswith("flurry: eval ") and "jobs," in line:
            ended = now
            eval_line = line.strip()
    rc = p.wait()
    if rc != 0 or sent is None or ended is None:
        raise RuntimeError(f"flurry up failed (exit {rc}); see {state}/logs")
    return ended - sent, (up_at or sent) - start, eval_line


def run_nix_build(n: int, root: str) -> float:
    ref = eval_bench.make_repo(root, n, "trivial")
    argv = ["nix", "build", "--no-link"] + [f"{ref}#checks.x86_64-linux.check-{i}" for i in range(n)]
    start = time.monotonic()
    subprocess.run(argv, check=True, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def env():
    return dict(os.environ, NIX_CONFIG=os.environ.get("NIX_CONFIG", eval_bench.NIX_CONFIG))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", type=int, default=1000)
    ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--timeout", type=int, default=3600)
    args = ap.parse_args()
    tool = os.path.join(args.build_dir, "tools", "flurry", "flurry")
    if not os.access(tool, os.X_OK):
        print(f"build first: {tool} is missing", file=sys.stderr)
        return 2
    root = tempfile.mkdtemp(prefix="flurry-pipeline-bench-")
    try:
        base = run_nix_build(args.checks, root)
        print(f"{args.checks} derivations, nix build (baseline): {base:8.2f} s  {args.checks / base:8.1f} builds/s", flush=True)
        span, startup, line = run_flurry(tool, args.checks, root, args.timeout)
        print(f"{args.checks} derivations, flurry pipeline:      {span:8.2f} s  {args.checks / span:8.1f} builds/s"
              f"  overhead {span / base:5.2f}x  (stack start-up {startup:.1f} s, not counted)", flush=True)
        print(f"  {line}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
