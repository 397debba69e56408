#!/usr/bin/env python3
"""Write latency during background snapshots and without one (`scripts/memory-bench stall`).

    snapshot-stall.py SAMPLES LEADER LOG1 LOG2 LOG3

SAMPLES: `ensemble-bench load ... SAMPLES` lines, `SENT_UNIX_US LATENCY_US`. LOGn: server n's
log, whose "background snapshot started" / "background snapshot written" lines (info level,
RFC 3339 UTC timestamps) give each server's snapshot windows. LEADER: the index (1-3) of the
leader. A write counts as during a snapshot when its [sent, answered] interval overlaps the
window (and, as a check free of the bias that a long write meets more windows, when its
answer came during it). A leader snapshot is whole or incremental as its "written" line says
(`incremental=true`, builds since 2026-12-04; whole otherwise). Prints the snapshots taken
during the load and markdown tables of p50 / p99 / p999.
"""
import bisect
import re
import sys
from datetime import datetime, timezone

LINE = re.compile(r"^(\S+)\s+INFO\b.*background snapshot (started|written).*zxid=(0x[0-9a-f]+)")
INCREMENTAL = re.compile(r"\bincremental=true\b")


def unix_us(stamp):
    """Microseconds since the epoch of an RFC 3339 UTC stamp (any number of fraction digits)."""
    whole, _, frac = stamp.rstrip("Z").partition(".")
    t = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc)
    return int(t.timestamp()) * 1_000_000 + int((frac + "000000")[:6])


def windows(log_path):
    """(start_us, end_us, zxid, incremental) of every snapshot the log shows started and
    written."""
    started, out = {}, []
    with open(log_path, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            t, what, zxid = unix_us(m.group(1)), m.group(2), m.group(3)
            if what == "started":
                started[zxid] = t
            elif zxid in started:
                out.append((started.pop(zxid), t, zxid, bool(INCREMENTAL.search(line))))
    return sorted(out)


def overlaps(ws, a, b):
    """Whether [a, b] overlaps one of the sorted, disjoint windows `ws`."""
    i = bisect.bisect_right(ws, (b, float("inf"))) - 1
    return i >= 0 and ws[i][1] >= a


def quantile_ms(sorted_us, q):
    """The sample at or above rank q, in milliseconds (as ensemble-bench's stats)."""
    if not sorted_us:
        return float("nan")
    i = min(max(-(-len(sorted_us) * q // 1), 1), len(sorted_us)) - 1
    return sorted_us[int(i)] / 1000


def main(samples_path, leader, logs):
    samples = []
    with open(samples_path) as f:
        for line in f:
            sent, lat = line.split()
            samples.append((int(sent), int(lat)))
    first = min(s for s, _ in samples)
    last = max(s + l for s, l in samples)
    per_server = [
        [w for w in windows(p) if w[1] >= first and w[0] <= last] for p in logs
    ]
    for i, ws in enumerate(per_server, 1):
        role = "leader" if i == leader else "follower"
        took = ", ".join(f"{(e - s) / 1000:.0f}{'i' if inc else ''}" for s, e, _, inc in ws)
        busy = sum(min(e, last) - max(s, first) for s, e, _, _ in ws) / (last - first)
        whole = sum(1 for w in ws if not w[3])
        print(f"server {i} ({role}): {len(ws)} snapshots during the load ({whole} whole), "
              f"{100 * busy:.0f}% of its time, each took (ms; i: incremental): {took}")
    for rule, span in (
        ("ran during (its [sent, answered] overlaps the window)", lambda s, l: (s, s + l)),
        ("answered during", lambda s, l: (s + l, s + l)),
    ):
        print(f"\nwrites that {rule}:")
        table(split(samples, per_server, leader, span))


def split(samples, per_server, leader, span):
    """Latencies of the writes whose `span` overlaps a whole leader snapshot, else an
    incremental one, a follower's only, none."""
    lead = per_server[leader - 1]
    lead_whole = [w for w in lead if not w[3]]
    lead_incremental = [w for w in lead if w[3]]
    rest = [ws for i, ws in enumerate(per_server, 1) if i != leader]
    groups = {k: [] for k in ("leader", "leader-incremental", "follower", "none")}
    for sent, lat in samples:
        a, b = span(sent, lat)
        if overlaps(lead_whole, a, b):
            groups["leader"].append(lat)
        elif overlaps(lead_incremental, a, b):
            groups["leader-incremental"].append(lat)
        elif any(overlaps(ws, a, b) for ws in rest):
            groups["follower"].append(lat)
        else:
            groups["none"].append(lat)
    return groups


def table(groups):
    """Prints the markdown table of the groups and the p999 ratios to no snapshot."""
    names = {
        "leader": "during a whole snapshot on the leader",
        "leader-incremental": "during an incremental one on the leader",
        "follower": "during a snapshot on a follower only",
        "none": "no snapshot on any server",
    }
    print("| writes (set 16x16) | count | p50 / p99 / p999 ms |")
    print("| --- | --- | --- |")
    for k, lats in groups.items():
        lats.sort()
        q = " / ".join(f"{quantile_ms(lats, p):.2f}" for p in (0.5, 0.99, 0.999))
        print(f"| {names[k]} | {len(lats)} | {q} |")
    base = quantile_ms(groups["none"], 0.999)
    for k in ("leader", "leader-incremental", "follower"):
        if groups[k]:
            print(f"p999 {k} / none: {quantile_ms(groups[k], 0.999) / base:.2f}x")

if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
