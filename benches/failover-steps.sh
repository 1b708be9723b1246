#!/usr/bin/env bash
# The per-step breakdown of a switchover and a failover (issue 14) from the logs that
# `benches/failover.sh --logs DIR` saves per run (tests/failover.rs, SANFORGE_FAILOVER_LOGS):
# every resource action the cluster ran (pacemaker-controld's "Initiating" and
# "Result of", pacemaker-execd's execution times), the DRBD, Corosync and fence-peer
# lines of the kernel ring, the throttle and transition lines, and the host's events
# (move, kill, the writer's first failure and first write again), on the host's time
# line in seconds after the move or the kill. Each guest's clocks are mapped to the
# host's through the `clock` line the test wrote at capture time.
# Usage: benches/failover-steps.sh RUN_DIR   (e.g. /tmp/logs/run-1)
set -euo pipefail
exec python3 - "$@" <<'EOF'
import re, sys, os, datetime

run = sys.argv[1]
events = []
for line in open(os.path.join(run, "events.txt")):
    t, what = line.split(" ", 1)
    events.append((float(t), "host", what.strip()))

PCMK = re.compile(r"^(\w{3} \d\d \d\d:\d\d:\d\d\.\d{3}) (\S+) +(pacemaker-\w+) *\[\d+\] \(\w+\)\s+\w+: (.*)$")
KERN = re.compile(r"^\[ *(\d+\.\d+)\] (.*)$")
WANT_PCMK = re.compile(r"Initiating (?!monitor operation .*_monitor_0)|Result of (?!monitor)|exited with status|"
                       r"aborted by|Transition \d+ \(|High CPU|Moderate CPU|throttle mode|state is now lost|"
                       r"Choosing .* for promotion|fence-peer|drbd-fence")
WANT_KERN = re.compile(r"drbd|TOTEM|QUORUM|iSCSI|fence")

def load(path, label):
    out = []
    lines = open(path, errors="replace").read().splitlines()
    m = re.match(r"clock (\S+) (\d+) (\S+)", lines[0]) if lines else None
    if not m:
        print(f"{path}: no clock line; skipped", file=sys.stderr)
        return out
    host, guest, up = float(m.group(1)), int(m.group(2)), float(m.group(3))
    year = datetime.datetime.fromtimestamp(guest, datetime.timezone.utc).year
    for l in lines[1:]:
        p = PCMK.match(l)
        if p:
            if not WANT_PCMK.search(p.group(4)):
                continue
            g = datetime.datetime.strptime(f"{year} {p.group(1)}", "%Y %b %d %H:%M:%S.%f")
            g = g.replace(tzinfo=datetime.timezone.utc).timestamp()
            out.append((g + host - guest, f"{label}/{p.group(3).replace('pacemaker-', '')}", p.group(4)))
            continue
        k = KERN.match(l)
        if k and WANT_KERN.search(k.group(2)):
            out.append((host + float(k.group(1)) - up, f"{label}/kernel", k.group(2)))
    return out

for phase, start_word, end_word in (("switchover", "move", "switchover: I/O again"),
                                    ("failover", "kill", "failover: I/O again")):
    files = sorted(f for f in os.listdir(run) if f.startswith(phase + "-"))
    if not files:
        continue
    t0 = next((t for t, _, w in events if w.startswith(start_word)), None)
    t1 = next((t for t, _, w in events if w.startswith(end_word)), None)
    if t0 is None:
        continue
    lines = list(events)
    for f in files:
        lines += load(os.path.join(run, f), f[len(phase) + 1:-4])
    end = (t1 or t0 + 60) + 1.0
    print(f"\n## {phase} ({', '.join(files)}): seconds after the {start_word}")
    print("| t (s) | where | what |\n|---|---|---|")
    seen = set()
    landed = None
    for t, who, what in sorted(lines):
        if t0 - 0.5 <= t <= end and (who, what) not in seen:
            seen.add((who, what))
            what = re.sub(r" \| .*$", "", what)[:150]
            print(f"| {t - t0:6.2f} | {who} | {what} |")
            if landed is None and "aborted by rsc_location.cli-prefer" in what:
                landed = t
    # Seed 004 measured its switchover in the cluster's log: from the move constraint
    # (the DC sees it land in the CIB) to the last action; here to the writer's I/O.
    if phase == "switchover" and landed is not None and t1 is not None:
        print(f"\nswitchover from the move constraint in the CIB to I/O again: {t1 - landed:.2f} s "
              f"(the move command itself: {landed - t0:.2f} s)")
EOF
