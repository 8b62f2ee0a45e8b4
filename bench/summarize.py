#!/usr/bin/env python3
"""Summarize bench/run.sh raw.tsv: medians per (scenario, proxy) and Portcullis/nginx ratios.

usage: summarize.py RAW_TSV CLK_TCK
"""
import csv
import statistics
import sys

SCEN_TITLE = {
    "plain": "plain HTTP, no logging",
    "log": "plain HTTP, event file / JSON access log",
    "tls": "TLS 1.3 (ECDSA P-256), no logging",
}


def main() -> None:
    path, clk_tck = sys.argv[1], float(sys.argv[2])
    rows = list(csv.DictReader(open(path), delimiter="\t"))
    groups: dict = {}
    for r in rows:
        req = int(r["requests"])
        cpu_s = int(r["cpu_ticks"]) / clk_tck
        wall = float(r["wall_s"])
        m = groups.setdefault((r["scenario"], r["proxy"]), {k: [] for k in
                                                            ("rps", "p50", "p99", "cpu_us", "busy", "ctxsw", "errors")})
        m["rps"].append(float(r["rps"]))
        m["p50"].append(float(r["p50_ms"]))
        m["p99"].append(float(r["p99_ms"]))
        m["cpu_us"].append(cpu_s * 1e6 / req if req else float("nan"))
        m["busy"].append(100.0 * cpu_s / wall if wall else float("nan"))
        m["errors"].append(int(r["errors"]))
        m["ctxsw"].append(int(r.get("ctx_switches") or 0) / req if req else float("nan"))

    med = {k: {f: statistics.median(v) for f, v in m.items() if f != "errors"}
           | {"errors": sum(m["errors"]), "n": len(m["rps"]), "cpu_min": min(m["cpu_us"])}
           for k, m in groups.items()}

    scenarios = []
    for r in rows:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])

    print("| scenario | proxy | req/s | p50 ms | p99 ms | proxy CPU µs/req | (best run) | proxy core busy % | ctx switches/req | runs | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in scenarios:
        for p in ("nginx", "portcullis"):
            m = med.get((s, p))
            if not m:
                continue
            print(f"| {s} | {p} | {m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {m['cpu_us']:.1f} "
                  f"| {m['cpu_min']:.1f} | {m['busy']:.0f} | {m['ctxsw']:.2f} | {m['n']} | {m['errors']} |")
        n, pc = med.get((s, "nginx")), med.get((s, "portcullis"))
        if n and pc:
            print(f"| {s} | **Portcullis/nginx** | {pc['rps'] / n['rps']:.2f}× | {pc['p50'] / n['p50']:.2f}× "
                  f"| {pc['p99'] / n['p99']:.2f}× | **{pc['cpu_us'] / n['cpu_us']:.2f}×** | {pc['cpu_min'] / n['cpu_min']:.2f}× | | | | |")
    print()
    for s in scenarios:
        print(f"- {s}: {SCEN_TITLE.get(s, s)}")
    print("- values are medians over the runs; each metric's median is taken on its own")
    print("- proxy CPU µs/req = (utime+stime of the proxy's processes during the run) / requests completed")
    print("- (best run) = the lowest CPU µs/req of the runs: sharing the machine only ever adds to it")
    print("- proxy core busy % = that CPU time / wall time of the run (100 = the proxy's core was saturated)")
    print("- ctx switches/req = voluntary + involuntary context switches of all the proxy's threads / requests")


if __name__ == "__main__":
    main()
