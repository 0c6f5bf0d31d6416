#!/usr/bin/env python3
"""Turns the suite's Google Benchmark JSON into CSV, Markdown tables and gnuplot data."""
import csv
import json
import sys

COLS = ["family", "row", "bytes", "writers", "p50_ns", "p99_ns", "p999_ns", "max_ns", "floor_p50_ns",
        "x_floor", "x_ref", "trips", "msgs_per_s", "GB_per_s", "x_bare_ring"]


def parse(doc):
    good, bad = [], []
    for b in doc.get("benchmarks", []):
        if b.get("error_occurred"):
            bad.append(f"{b['name']}: {b.get('error_message', 'error')}")
            continue
        parts = b["name"].split("/")  # family/row/bytes[/writers]/iterations:1/manual_time
        r = {"family": parts[0], "row": parts[1], "bytes": int(parts[2])}
        r["writers"] = int(parts[3]) if parts[0] == "tput" else 1
        for k in COLS[4:]:
            if k in b:
                r[k] = b[k]
        good.append(r)
    # Throughput ratio to the bare batched ring of the same run and record size.
    bare = {r["bytes"]: r["msgs_per_s"] for r in good if r["row"] == "bare_ring_batched"}
    for r in good:
        if r["family"] == "tput" and r["bytes"] in bare:
            r["x_bare_ring"] = r["msgs_per_s"] / bare[r["bytes"]]
    return good, bad


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} us"
    return f"{ns:.0f} ns"


def targets(rtt, tput):
    """The benchmark issue's targets, computed from this run (64 B rows)."""
    def r(row, b=64):
        return next((x for x in rtt if x["row"] == row and x["bytes"] == b), None)

    def t(row, b=64, w=1):
        return next((x for x in tput if x["row"] == row and x["bytes"] == b and x["writers"] == w), None)

    out = ["Targets (64 B, this run):\n"]

    def line(text, value, ok):
        out.append(f"- {text}: {value} ({'met' if ok else 'missed'})\n")

    q, bare, zc = r("fwipc_queue_spin"), r("bare_seq_ring"), r("fwipc_queue_zero_copy_spin")
    if q:
        line("QUEUE spinning round trip p50 <= 1.8x floor", f"{q['x_floor']:.2f}x", q["x_floor"] <= 1.8)
    if zc:
        line("QUEUE C++ zero-copy round trip p50 <= 1.8x floor", f"{zc['x_floor']:.2f}x", zc["x_floor"] <= 1.8)
    if q and bare:
        ratio = q["x_floor"] / bare["x_floor"]
        line("QUEUE (ipc_send/ipc_receive) vs the bare per-slot-sequence ring, each against its floor, <= 1.1x",
             f"{ratio:.2f}x (bare ring {bare['x_floor']:.2f}x floor)", ratio <= 1.1)
    sl = r("fwipc_queue_sleep")
    if sl and "x_ref" in sl:
        line("sleeping-reader wake round trip <= 1.2x raw futex (interleaved chunk by chunk)", f"{sl['x_ref']:.2f}x",
             sl["x_ref"] <= 1.2)
    for ref in ("boost_mq", "posix_mq"):
        x = r(ref)
        if q and x:
            ratio = x["p50_ns"] / q["p50_ns"]
            line(f"QUEUE >= 50x faster than {ref} at p50", f"{ratio:.0f}x", ratio >= 50)
    b, p = t("fwipc_queue_batch"), t("fwipc_queue")
    if b and "x_bare_ring" in b:
        line("QUEUE batched throughput >= 0.8x the bare batched ring", f"{b['x_bare_ring']:.2f}x", b["x_bare_ring"] >= 0.8)
    if p:
        line("QUEUE plain ipc_send throughput >= 20 M msg/s", f"{p['msgs_per_s'] / 1e6:.1f} M/s", p["msgs_per_s"] >= 20e6)
    out.append("\nRing v2 targets (issue 17, this run; fwipc_ring2 rows, layout 4 beside them):\n")

    def both(val, old, f):
        return f(val) + (f" (layout 4: {f(old)})" if old is not None else "")

    q2, zc2 = r("fwipc_ring2_spin"), r("fwipc_ring2_zero_copy_spin")
    if q2:
        line("64 B round trip through ipc_send/ipc_receive <= 1.7x floor",
             both(q2["x_floor"], q["x_floor"] if q else None, lambda v: f"{v:.2f}x"), q2["x_floor"] <= 1.7)
    if zc2:
        line("C++ zero-copy round trip <= 1.6x floor",
             both(zc2["x_floor"], zc["x_floor"] if zc else None, lambda v: f"{v:.2f}x"), zc2["x_floor"] <= 1.6)
    xu, xu2 = r("fwipc_queue_other_uid_spin"), r("fwipc_ring2_other_uid_spin")
    if xu2 and "x_ref" in xu2:
        line("a writer of another uid (nobody) to a root reader: round trip <= 1.2x the same-uid round trip",
             both(xu2["x_ref"], xu["x_ref"] if xu and "x_ref" in xu else None, lambda v: f"{v:.1f}x"),
             xu2["x_ref"] <= 1.2)
    p2, b2 = t("fwipc_ring2"), t("fwipc_ring2_batch")
    if p2 and "x_bare_ring" in p2:
        line("one-way 64 B, plain ipc_send >= 0.5x the bare batched ring",
             both(p2["x_bare_ring"], p["x_bare_ring"] if p and "x_bare_ring" in p else None, lambda v: f"{v:.2f}x"),
             p2["x_bare_ring"] >= 0.5)
    if b2 and "x_bare_ring" in b2:
        line("one-way 64 B, batches >= 0.8x the bare batched ring",
             both(b2["x_bare_ring"], b["x_bare_ring"] if b and "x_bare_ring" in b else None, lambda v: f"{v:.2f}x"),
             b2["x_bare_ring"] >= 0.8)
    p4, p42 = t("fwipc_queue", 64, 4), t("fwipc_ring2", 64, 4)
    if p2 and p42:
        ratio = p42["msgs_per_s"] / p2["msgs_per_s"]
        old = p4["msgs_per_s"] / p["msgs_per_s"] if p and p4 else None
        line("4 writer processes to 1 reader >= 1.5x one writer's rate", both(ratio, old, lambda v: f"{v:.2f}x"),
             ratio >= 1.5)
    b512, b5122 = t("fwipc_queue_batch", 512), t("fwipc_ring2_batch", 512)
    if b5122 and "x_bare_ring" in b5122:
        line("512 B batched >= 0.8x the bare batched ring",
             both(b5122["x_bare_ring"], b512["x_bare_ring"] if b512 and "x_bare_ring" in b512 else None,
                  lambda v: f"{v:.2f}x"), b5122["x_bare_ring"] >= 0.8)
    return "".join(out)


def main(src, out_csv, out_md, out_dat):
    with open(src) as f:
        doc = json.load(f)
    data, errors = parse(doc)
    with open(out_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLS)
        w.writeheader()
        for r in data:
            w.writerow(r)
    ctx = doc.get("context", {})
    rtt = [r for r in data if r["family"] == "rtt"]
    tput = [r for r in data if r["family"] == "tput"]
    with open(out_md, "w") as f:
        f.write(f"Run {ctx.get('date', '?')} on {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs "
                f"at {ctx.get('mhz_per_cpu', '?')} MHz.\n\n")
        f.write("Round trip between two processes. x floor = median over chunks of (p50 of a chunk of this row / "
                "p50 of the raw cache-line ping-pong chunk run just before it); the floor changes mode "
                "(~45 vs ~210 ns) from moment to moment on this VM.\n\n")
        f.write("| row | bytes | p50 | p99 | p99.9 | max | x floor |\n|---|---|---|---|---|---|---|\n")
        for r in sorted(rtt, key=lambda r: (r["bytes"], r["p50_ns"])):
            f.write(f"| {r['row']} | {r['bytes']} | {fmt_ns(r['p50_ns'])} | {fmt_ns(r['p99_ns'])} | "
                    f"{fmt_ns(r['p999_ns'])} | {fmt_ns(r['max_ns'])} | {r['x_floor']:.2f} |\n")
        f.write("\nOne-way throughput, writer processes to one reader (moodycamel: threads of one process). "
                "x bare ring = rate / the bare batched ring's rate for that record size.\n\n")
        f.write("| row | bytes | writers | M msg/s | GB/s | x bare ring |\n|---|---|---|---|---|---|\n")
        for r in sorted(tput, key=lambda r: (r["bytes"], r["writers"], -r["msgs_per_s"])):
            x = f"{r['x_bare_ring']:.2f}" if "x_bare_ring" in r else "-"
            f.write(f"| {r['row']} | {r['bytes']} | {r['writers']} | {r['msgs_per_s'] / 1e6:.2f} | "
                    f"{r['GB_per_s']:.2f} | {x} |\n")
        f.write("\n" + targets(rtt, tput))
        for e in errors:
            f.write(f"\n{e}\n")
    # gnuplot data: block 0 latency per row, block 1 throughput per row (1 writer).
    with open(out_dat, "w") as f:
        by_row = {}
        for r in rtt:
            by_row.setdefault(r["row"], {})[r["bytes"]] = r
        f.write("row p50_64 p99_64 p999_64 p50_512 p99_512 p999_512\n")
        for name, v in sorted(by_row.items(), key=lambda kv: kv[1].get(64, {}).get("p50_ns", 0)):
            vals = []
            for b in (64, 512):
                x = v.get(b, {})
                vals += [x.get("p50_ns", 0), x.get("p99_ns", 0), x.get("p999_ns", 0)]
            f.write(name + " " + " ".join(f"{x:.0f}" for x in vals) + "\n")
        f.write("\n\n")
        by_row = {}
        for r in tput:
            if r["writers"] == 1:
                by_row.setdefault(r["row"], {})[r["bytes"]] = r
        f.write("row mps_64 mps_512\n")
        for name, v in sorted(by_row.items(), key=lambda kv: -kv[1].get(64, {}).get("msgs_per_s", 0)):
            f.write(f"{name} {v.get(64, {}).get('msgs_per_s', 0) / 1e6:.3f} {v.get(512, {}).get('msgs_per_s', 0) / 1e6:.3f}\n")


if __name__ == "__main__":
    main(*sys.argv[1:5])
