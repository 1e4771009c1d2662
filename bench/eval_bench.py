#!/usr/bin/python3
"""Evaluation benchmark (issue 3): Flurry's evaluation path against one
`nix eval --json` over the same attribute set, side by side in one run.

For each size it generates a flake with N trivial checks (fresh derivations
every run), commits it to a git repository, and measures:

  baseline   nix eval --json <ref>#checks.x86_64-linux --apply 'mapAttrs drvPath'
  flurry     flurry-eval-bench: the evaluator's nix work (evaluate every
             attribute, derivation graph, output validity, job planning)

Figures: wall seconds, attributes per second, and peak RSS of the largest
process (getrusage RUSAGE_CHILDREN; nix-eval-jobs workers are separate
processes, so the total is at most workers x that). A "heavy" flake whose
attributes each allocate a large list is measured too.

Usage: bench/eval_bench.py [--sizes 1000,10000] [--build-dir build] [--heavy N]
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


def flake_text(n: int, nonce: str, heavy: bool) -> str:
    work = 'builtins.length (builtins.genList (i: i * i) 200000)' if heavy else '0'
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


def make_repo(root: str, n: int, heavy: bool) -> str:
    repo = tempfile.mkdtemp(prefix=f"flake-{n}{'-heavy' if heavy else ''}-", dir=root)
    with open(os.path.join(repo, "flake.nix"), "w") as f:
        f.write(flake_text(n, str(time.time_ns()), heavy))
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    subprocess.run(["git", "-C", repo, "add", "."], check=True)
    subprocess.run(["git", "-C", repo, "commit", "-q", "-m", "bench"], check=True, env=env)
    rev = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "-C", repo, "update-ref", f"refs/flurry/{rev}", rev], check=True)
    return f"git+file://{repo}?ref=refs/flurry/{rev}&rev={rev}"


def measure(argv):
    """Runs argv in a fresh child; returns (seconds, peak RSS MiB, stdout)."""
    code = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.monotonic()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "dt = time.monotonic() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'rc': p.returncode, 'seconds': dt, 'rss_mib': rss, 'out': p.stdout[-2000:], 'err': p.stderr[-2000:]}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                       env=dict(os.environ, NIX_CONFIG=os.environ.get("NIX_CONFIG", NIX_CONFIG)))
    res = json.loads(r.stdout)
    if res["rc"] != 0:
        raise RuntimeError(f"{argv[0]} failed: {res['err']}")
    return res["seconds"], res["rss_mib"], res["out"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--heavy", type=int, default=1000, help="size of the allocation-heavy flake (0 = skip)")
    ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tool = os.path.join(args.build_dir, "tools", "eval-bench", "flurry-eval-bench")
    if not os.access(tool, os.X_OK):
        print(f"build first: {tool} is missing", file=sys.stderr)
        return 2
    engines = ["cli"] + (["nix-eval-jobs"] if shutil.which("nix-eval-jobs") else [])
    cases = [(int(s), False) for s in args.sizes.split(",") if s] + ([(args.heavy, True)] if args.heavy else [])
    root = tempfile.mkdtemp(prefix="flurry-eval-bench-")
    print(f"{'flake':>14} {'tool':>22} {'wall s':>8} {'attrs/s':>9} {'peak RSS MiB':>13}")
    try:
        for n, heavy in cases:
            label = f"{n}{' heavy' if heavy else ''}"
            # Every tool gets its own fresh flake (new nonce), so each writes
            # its .drv files itself; none profits from the other's work.
            ref = make_repo(root, n, heavy)
            base = ["nix", "eval", "--json", f"{ref}#checks.x86_64-linux", "--apply", "cs: builtins.mapAttrs (n: v: v.drvPath) cs"]
            s, rss, _ = measure(base)
            print(f"{label:>14} {'nix eval (baseline)':>22} {s:8.2f} {n / s:9.0f} {rss:13.0f}", flush=True)
            for engine in engines:
                ref = make_repo(root, n, heavy)
                s, rss, out = measure([tool, ref, "checks.x86_64-linux", "--engine", engine, "--workers", str(args.workers)])
                got = json.loads(out.strip().splitlines()[-1])
                assert got["attributes"] == n, got
                print(f"{label:>14} {'flurry ' + engine:>22} {s:8.2f} {n / s:9.0f} {rss:13.0f}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
