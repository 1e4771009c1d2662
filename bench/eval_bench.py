#!/usr/bin/python3
"""Evaluation benchmark (issue 3): Flurry's evaluation path against one
`nix eval --json` over the same attribute set, side by side in one run.

For each size it generates a flake with N trivial checks (fresh derivations
every run), commits it to a git repository, and measures:

  baseline   nix eval --json <ref>#checks.x86_64-linux --apply 'mapAttrs drvPath'
  flurry     flurry-eval-bench: the evaluator's nix work (evaluate every
             attribute, derivation graph, output validity, job planning)

Figures: wall seconds, attributes per second, speed against the baseline,
peak total RSS of the whole run (every process it runs at once, sampled
every 50 ms), when the first batch of jobs was ready, and how many workers
were replaced for passing the memory ceiling. Flurry runs with 1 and 2
workers by default. A "heavy" flake whose attributes each allocate a large
list is measured too, and one whose attributes are CPU-heavy. As a
yardstick for what 2 workers can gain, it first measures how much faster two
CPU-bound processes run at once than one after the other on this machine.

Usage: bench/eval_bench.py [--sizes 1000,10000] [--build-dir build] [--heavy N] [--cpu N] [--workers 1,2] [--max-memory-mib M]
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

NIX_CONFIG = "experimental-features = nix-command flakes\nsandbox = false\nsubstituters =\nflake-registry = /dev/null\n"


WORK = {
    "trivial": "0",
    # Each attribute allocates a 200,000-element list.
    "heavy": "builtins.length (builtins.genList (i: i * i) 200000)",
    # Each attribute computes over a 1,000,000-element list: evaluation CPU
    # dominates, as with NixOS configurations.
    "cpu": "builtins.foldl' (a: b: a + b) 0 (builtins.genList (i: i * i) 1000000)",
}


def flake_text(n: int, nonce: str, kind: str) -> str:
    work = WORK[kind]
    return f"""{{
  outputs = {{ self }}: {{
    checks.x86_64-linux = builtins.listToAttrs (builtins.genList (i: {{
      name = "check-${{toString i}}";
      value = derivation {{
        name = "check-${{toString i}}";
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" "echo {nonce} ${{toString i}} ${{toString ({work})}} > $out" ];
      }};
    }}) {n});
  }};
}}
"""


def make_repo(root: str, n: int, kind: str) -> str:
    repo = tempfile.mkdtemp(prefix=f"flake-{n}-{kind}-", dir=root)
    with open(os.path.join(repo, "flake.nix"), "w") as f:
        f.write(flake_text(n, str(time.time_ns()), kind))
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    subprocess.run(["git", "-C", repo, "add", "."], check=True)
    subprocess.run(["git", "-C", repo, "commit", "-q", "-m", "bench"], check=True, env=env)
    rev = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "-C", repo, "update-ref", f"refs/flurry/{rev}", rev], check=True)
    return f"git+file://{repo}?ref=refs/flurry/{rev}&rev={rev}"


def tree_rss_bytes(root_pid: int) -> int:
    """Summed resident memory of root_pid and all its descendants."""
    children = {}
    rss = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/statm") as f:
                resident = int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = resident
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def measure(argv):
    """Runs argv; returns (seconds, peak total RSS MiB of its process tree,
    peak RSS MiB of its largest process, stdout). The total is sampled every
    50 ms over every process the run starts at once."""
    env = dict(os.environ, NIX_CONFIG=os.environ.get("NIX_CONFIG", NIX_CONFIG))
    t = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        peak = 0
        while p.poll() is None:
            peak = max(peak, tree_rss_bytes(p.pid))
            time.sleep(0.05)
        dt = time.monotonic() - t
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {stderr[-2000:]}")
    return dt, peak / 2**20, largest, stdout


def parallel_speedup() -> float:
    """How much two CPU-bound processes gain from running at once here (2.0
    on two free cores; less on shared or hyper-threaded ones)."""
    spin = [sys.executable, "-c", "x = 0\nfor i in range(20_000_000): x += i * i"]
    t = time.monotonic()
    subprocess.run(spin, check=True)
    one = time.monotonic() - t
    t = time.monotonic()
    procs = [subprocess.Popen(spin) for _ in range(2)]
    for p in procs:
        p.wait()
    both = time.monotonic() - t
    return 2 * one / both


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--heavy", type=int, default=1000, help="size of the allocation-heavy flake (0 = skip)")
    ap.add_argument("--cpu", type=int, default=100, help="size of the CPU-heavy flake (0 = skip)")
    ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--workers", default="1,2", help="worker counts to run Flurry's pool with")
    ap.add_argument("--max-memory-mib", type=int, default=2048, help="per-worker memory ceiling")
    args = ap.parse_args()
    tool = os.path.join(args.build_dir, "tools", "eval-bench", "flurry-eval-bench")
    if not os.access(tool, os.X_OK):
        print(f"build first: {tool} is missing", file=sys.stderr)
        return 2
    engines = ["cli"] + (["nix-eval-jobs"] if shutil.which("nix-eval-jobs") else [])
    cases = ([(int(s), "trivial") for s in args.sizes.split(",") if s] + ([(args.heavy, "heavy")] if args.heavy else []) +
             ([(args.cpu, "cpu")] if args.cpu else []))
    root = tempfile.mkdtemp(prefix="flurry-eval-bench-")
    print(f"{'flake':>14} {'tool':>26} {'wall s':>8} {'attrs/s':>9} {'x baseline':>10} {'total RSS MiB':>13} "
          f"{'first batch s':>13} {'restarts':>8}")
    try:
        print(f"machine: two CPU-bound processes at once run {parallel_speedup():.2f}x as fast as one after the other", flush=True)
        for n, kind in cases:
            label = f"{n}{'' if kind == 'trivial' else ' ' + kind}"
            # Every tool gets its own fresh flake (new nonce), so each writes
            # its .drv files itself; none profits from the other's work.
            ref = make_repo(root, n, kind)
            base = ["nix", "eval", "--json", f"{ref}#checks.x86_64-linux", "--apply", "cs: builtins.mapAttrs (n: v: v.drvPath) cs"]
            base_s, rss, _, _ = measure(base)
            print(f"{label:>14} {'nix eval (baseline)':>26} {base_s:8.2f} {n / base_s:9.0f} {1:10.2f} {rss:13.0f} {'':>13} {'':>8}",
                  flush=True)
            for engine in engines:
                for workers in [int(w) for w in args.workers.split(",")]:
                    ref = make_repo(root, n, kind)
                    s, rss, _, out = measure([tool, ref, "checks.x86_64-linux", "--engine", engine, "--workers", str(workers),
                                              "--max-memory-mib", str(args.max_memory_mib)])
                    got = json.loads(out.strip().splitlines()[-1])
                    assert got["attributes"] == n and got["eval_errors"] == 0, got
                    name = f"flurry {engine} {workers}w"
                    print(f"{label:>14} {name:>26} {s:8.2f} {n / s:9.0f} {base_s / s:10.2f} {rss:13.0f} "
                          f"{got['first_batch_seconds']:13.2f} {got['memory_restarts']:8d}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
