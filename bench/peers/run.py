#!/usr/bin/env python3
"""Side-by-side benchmark of spikecl against Python SNN frameworks (see README.md).

Every run is its own process, pinned to one core, one thread on every side; the sides of a
workload alternate within each repetition (the order rotates from one repetition to the next),
and each figure is the median and the minimum over the repetitions. spikecl runs twice per
repetition: with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from that command's
environment (OpenBLAS picks its kernel for the CPU) and with them as the environment sets them;
the OpenBLAS kernel that ran is read from spikecl's device line.

    python3 bench/peers/run.py --python /work/venv-peers/bin/python [--reps 3]

Writes a markdown table to stdout and to --md, and every run to --json.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import common  # noqa: E402

PEERS = {
    # name: (script, extra args, label)
    "jax": ("peer_jax.py", [], "plain JAX (jit + lax.scan), hoisted"),
    "snntorch_compile": ("peer_torch.py", ["--framework", "snntorch_compile"],
                         "snnTorch + torch.compile, hoisted"),
    "snntorch": ("peer_torch.py", ["--framework", "snntorch"], "snnTorch eager"),
    "spikingjelly": ("peer_torch.py", ["--framework", "spikingjelly"],
                     "SpikingJelly (multi-step)"),
    "norse": ("peer_torch.py", ["--framework", "norse"], "Norse"),
}

# timed batches per run (spikecl bench --batches; the peers time the same number after their
# first step and --warmup more); the Open Neuromorphic shapes take seconds per step
BATCHES = {"mlp_direct": 30, "mlp_poisson": 10, "conv": 5, "on_1024": 3, "on_4096": 3}
WARMUP = {"mlp_direct": 3, "mlp_poisson": 2, "conv": 1, "on_1024": 1, "on_4096": 0}
# torch.compile unrolls the Python loop over time: 500 steps take too long to compile
SKIP = {("snntorch_compile", "on_1024"), ("snntorch_compile", "on_4096")}
BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def one_thread_env():
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    return env


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def run_cmd(cmd, env, timeout):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout} s", time.time() - t0
    return p, p.stdout, p.stderr, time.time() - t0


def run_spikecl(args, wl, blas):
    w = common.WORKLOADS[wl]
    env = one_thread_env()
    if blas == "unset":
        for v in BLAS_VARS:
            env.pop(v, None)
    cmd = args.pin + [args.spikecl, "bench", w["model"], "--device", "cpu", "--threads", "1",
                      "--batches", str(BATCHES[wl])] + (["--no-update"] if args.no_update else [])
    p, out, err, wall = run_cmd(cmd, env, args.timeout)
    res = last_json(out) if p is not None and p.returncode == 0 else None
    rec = {"side": f"spikecl_blas_{blas}", "workload": wl, "cmd": shlex.join(cmd),
           "blas_env": {v: env.get(v) for v in BLAS_VARS}, "wall_s": round(wall, 1)}
    m = re.search(r"device cpu: .*\((OpenBLAS[^)]*)\)", err)
    if m:
        rec["openblas"] = m.group(1)
        k = re.search(r" (\w+) MAX_THREADS", m.group(1))
        rec["openblas_kernel"] = k.group(1) if k else "?"
    if res is None:
        rec["error"] = (err or out)[-600:]
        return rec
    rec.update(res)
    # bench prints samples/s with one decimal: at ~2 samples/s (on_4096) that is +-3%
    rec["step_ms"] = 1e3 * res["batch"] / res["train_samples_per_s"]
    rec["compile_s"] = 0.0  # ahead-of-time compiled C; no JIT on the CPU backend
    rec["layers"] = err.strip().splitlines()[-12:]
    return rec


def run_peer(args, wl, peer):
    script, extra, _ = PEERS[peer]
    cmd = args.pin + [args.python, os.path.join(HERE, script), wl] + extra + [
        "--batches", str(BATCHES[wl]), "--warmup", str(WARMUP[wl])] + (
        ["--no-update"] if args.no_update else [])
    p, out, err, wall = run_cmd(cmd, one_thread_env(), args.timeout)
    res = last_json(out) if p is not None and p.returncode == 0 else None
    rec = {"side": peer, "workload": wl, "cmd": shlex.join(cmd), "wall_s": round(wall, 1)}
    if res is None:
        rec["error"] = (err or out)[-600:]
        return rec
    rec.update(res)
    rec["step_ms"] = peer_step_ms(rec)
    return rec


def peer_step_ms(r):
    """Mean ms per timed step of a peer run (train_samples_per_s is rounded to 0.1, too coarse
    at a few samples per second; runs saved before train_s existed have it for one step)."""
    if "train_s" in r:
        return 1e3 * r["train_s"] / r["batches"]
    if r["batches"] == 1:
        return r["step_ms_median"]
    return 1e3 * r["batch"] / r["train_samples_per_s"]


def summarise(runs):
    """{(side, workload): {median/min step_ms, samples/s, compile, rss, loss check}}"""
    out = {}
    for r in runs:
        out.setdefault((r["side"], r["workload"]), []).append(r)
    summ = {}
    for key, rs in out.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            summ[key] = {"error": rs[-1]["error"], "runs": len(rs)}
            continue
        steps = [r["step_ms"] for r in ok]
        s = {"runs": len(ok), "failed": len(rs) - len(ok),
             "step_ms_median": statistics.median(steps), "step_ms_min": min(steps),
             "samples_per_s_median": statistics.median(r["train_samples_per_s"] for r in ok),
             "samples_per_s_max": max(r["train_samples_per_s"] for r in ok),
             "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in ok),
             "compile_s_median": statistics.median(r.get("compile_s", 0.0) for r in ok)}
        if "loss_decreased" in ok[0]:
            s["loss_decreased"] = all(r["loss_decreased"] is not False for r in ok)
            s["rss_after_import_mb"] = statistics.median(r["rss_after_import_mb"] for r in ok)
        if "openblas_kernel" in ok[0]:
            s["openblas_kernel"] = sorted({r["openblas_kernel"] for r in ok})
        summ[key] = s
    return summ


ROW = {"mlp_direct": "seed MLP, direct, T=25, B=128, train samples/s",
       "mlp_poisson": "seed MLP, Poisson, T=25, B=128, train samples/s",
       "on_1024": "Open Neuromorphic Linear+LIF, N=1024, B=16, T=500, ms per step",
       "on_4096": "same, N=4096, ms per step",
       "conv": "seed conv net (12C5-MP2-32C5-MP2-FC10), direct, T=10, B=128, train samples/s"}


def fmt_cell(s, wl):
    if s is None:
        return "–"
    if "error" in s:
        return "failed"
    if wl.startswith("on_"):
        txt = f"{s['step_ms_median']:,.0f} ({s['step_ms_min']:,.0f})"
    else:
        txt = f"{s['samples_per_s_median']:,.0f} ({s['samples_per_s_max']:,.0f})"
    if s.get("loss_decreased") is False:
        txt += " ⚠loss"
    return txt


def markdown(summ, workloads, sides):
    labels = {"spikecl_blas_unset": "spikecl (OpenBLAS vars unset)",
              "spikecl_blas_set": "spikecl (OpenBLAS vars as set)"}
    labels.update({k: v[2] for k, v in PEERS.items()})
    lines = ["| workload (1 thread; median (best) of the runs) | "
             + " | ".join(labels[s] for s in sides) + " |",
             "|---|" + "---|" * len(sides)]
    for wl in workloads:
        lines.append(f"| {ROW[wl]} | "
                     + " | ".join(fmt_cell(summ.get((s, wl)), wl) for s in sides) + " |")
    peers = [s for s in sides if not s.startswith("spikecl")]
    lines += ["", "spikecl's speed over each peer (median step time of the peer / median step "
              "time of spikecl with the OpenBLAS variables unset; > 1: spikecl is faster):", "",
              "| workload | " + " | ".join(labels[s] for s in peers) + " |",
              "|---|" + "---|" * len(peers)]
    for wl in workloads:
        base = summ.get(("spikecl_blas_unset", wl))
        cells = []
        for s in peers:
            p = summ.get((s, wl))
            if not base or "error" in base or not p or "error" in p:
                cells.append("–")
            else:
                cells.append(f"{p['step_ms_median'] / base['step_ms_median']:.2f}x")
        lines.append(f"| {wl} | " + " | ".join(cells) + " |")
    lines += ["", "Compile/JIT time (first step minus a median step, s, median of the runs) "
              "and peak RSS (MB; for the Python peers, after importing the framework → peak):",
              "", "| workload | " + " | ".join(labels[s] for s in sides) + " |",
              "|---|" + "---|" * len(sides)]
    for wl in workloads:
        cells = []
        for s in sides:
            x = summ.get((s, wl))
            if not x or "error" in x:
                cells.append("–")
                continue
            rss = (f"{x['rss_after_import_mb']:.0f}→{x['peak_rss_mb']:.0f}"
                   if "rss_after_import_mb" in x else f"{x['peak_rss_mb']:.0f}")
            cells.append(f"{x['compile_s_median']:.1f} s, {rss} MB")
        lines.append(f"| {wl} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save(path, meta, runs, summ=None):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    summary = [dict(side=k[0], workload=k[1], **v) for k, v in (summ or {}).items()]
    with open(path + ".tmp", "w") as f:
        json.dump({"meta": meta, "summary": summary, "runs": runs}, f, indent=1)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=os.path.join("/work", "venv-peers", "bin", "python"),
                    help="the interpreter of the venv holding the frameworks")
    ap.add_argument("--spikecl", default=os.path.join(ROOT, "build", "spikecl"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--reps-for", action="append", default=[], metavar="WORKLOAD=N",
                    help="another number of runs for one workload (e.g. on_4096=1)")
    ap.add_argument("--workloads", default="mlp_direct,mlp_poisson,conv,on_1024,on_4096")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--cpu", default="1", help="core to pin every run to (taskset -c)")
    ap.add_argument("--no-update", action="store_true",
                    help="every side times forward and backward alone, no optimizer step (the "
                         "Open Neuromorphic benchmark's protocol)")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per run")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--md", default=os.path.join(HERE, "results", "latest.md"))
    ap.add_argument("--from-json", metavar="FILE",
                    help="run nothing: the tables from the runs in FILE (e.g. a stopped run's)")
    args = ap.parse_args()
    args.pin = ["taskset", "-c", args.cpu]
    workloads = args.workloads.split(",")
    peers = [p for p in args.peers.split(",") if p]
    for p in peers:
        if p not in PEERS:
            ap.error(f"unknown peer {p!r}; known: {', '.join(PEERS)}")
    reps = {wl: args.reps for wl in workloads}
    for item in args.reps_for:
        wl, _, n = item.partition("=")
        if wl not in reps or not n.isdigit():
            ap.error(f"--reps-for {item!r}: expected WORKLOAD=N for a chosen workload")
        reps[wl] = int(n)
    sides = ["spikecl_blas_unset", "spikecl_blas_set"] + peers
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        runs = saved["runs"]
        args.saved_date = saved["meta"].get("date")
        args.saved_loads = saved["meta"].get("loadavg_1min")  # runs saved before loads per run
        args.no_update = saved["meta"].get("update") is False
        for r in runs:
            if not r["side"].startswith("spikecl") and "error" not in r:
                r["step_ms"] = peer_step_ms(r)
        done = {r["workload"] for r in runs}
        workloads = [wl for wl in workloads if wl in done]
        reps = {wl: 1 + max(r["rep"] for r in runs if r["workload"] == wl) for wl in workloads}
        sides = [s for s in sides if any(r["side"] == s for r in runs)]
        report(args, runs, workloads, sides, reps, None)
        return
    runs = []
    load_start = os.getloadavg()
    for wl in workloads:
        if wl not in common.WORKLOADS:
            ap.error(f"unknown workload {wl!r}")
        for rep in range(reps[wl]):
            order = sides[rep % len(sides):] + sides[:rep % len(sides)]  # rotate
            for side in order:
                if (side, wl) in SKIP:
                    continue
                load = round(os.getloadavg()[0], 2)
                if side.startswith("spikecl"):
                    r = run_spikecl(args, wl, side.rsplit("_", 1)[1])
                else:
                    r = run_peer(args, wl, side)
                r["rep"] = rep
                r["loadavg_1min_before"] = load  # other processes on the machine
                runs.append(r)
                fig = (f"{r['step_ms']:.1f} ms/step" if "step_ms" in r
                       else "FAILED: " + r["error"].strip().splitlines()[-1][:200])
                print(f"[{wl} rep {rep}] {side}: {fig} ({r['wall_s']} s)", file=sys.stderr,
                      flush=True)
                save(args.json, {"partial": True}, runs)  # what is done survives a stop
    report(args, runs, workloads, sides, reps, load_start)


def report(args, runs, workloads, sides, reps, load_start):
    summ = summarise(runs)
    cpu = "?"
    try:
        cpu = re.search(r"Model name:\s*(.+)", subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout).group(1).strip()
    except Exception:  # noqa: BLE001 - the CPU name is informative only
        pass
    loads = [r["loadavg_1min_before"] for r in runs if "loadavg_1min_before" in r]
    if load_start is not None:
        loads = [load_start[0]] + loads + [os.getloadavg()[0]]
    elif not loads and getattr(args, "saved_loads", None):
        loads = args.saved_loads
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    meta = {"date": getattr(args, "saved_date", None) or now,
            "cpu": cpu, "cores": os.cpu_count(), "pinned_to": args.cpu,
            "reps_per_workload": reps, "platform": platform.platform(),
            # other processes on the machine: the 1-minute load average, over the runs
            "loadavg_1min_min_median_max": ([round(min(loads), 2),
                                             round(statistics.median(loads), 2),
                                             round(max(loads), 2)] if loads else None),
            "blas_env_as_set": {v: os.environ.get(v) for v in BLAS_VARS},
            "update": not args.no_update}
    md = markdown(summ, workloads, sides)
    head = (f"{meta['date']}, {cpu} ({meta['cores']} cores), every run pinned to core "
            f"{args.cpu}, one thread, runs per side (alternating): "
            + ", ".join(f"{wl} {n}" for wl, n in reps.items()) + ". A step: "
            + ("forward and backward only (--no-update), no optimizer step."
               if args.no_update else "forward, backward and Adam's update."))
    if loads:
        la = meta["loadavg_1min_min_median_max"]
        head += (f" Load average (1 min) over the runs: min {la[0]}, median {la[1]}, "
                 f"max {la[2]} (on {meta['cores']} cores).")
    kern = {s: summ[(s, wl)].get("openblas_kernel") for s in ("spikecl_blas_unset",
            "spikecl_blas_set") for wl in workloads
            if (s, wl) in summ and "openblas_kernel" in summ[(s, wl)]}
    head += f"\n\nOpenBLAS kernel that ran: {json.dumps(kern)}\n\n"
    print(head + md)
    if not args.from_json:
        save(args.json, meta, runs, summ)
    with open(args.md, "w") as f:
        f.write(head + md + "\n")

if __name__ == "__main__":
    main()
