#!/usr/bin/env bash
# SCST apply speed on the real SCST 3.10 image, against its floor, in the same VM.
#
# Builds recipes/scst-fc-node.toml (SCST 3.10 from ../shared/upstream/scst-3.10.tar.gz
# or SANFORGE_UPSTREAM=DIR, imported into the builder's cache) in a scratch copy of the
# project twice: once serving a generated scst.conf of --devices vdisk_nullio devices,
# --targets iSCSI targets and --groups initiator groups (`sanforge scst generate
# --iscsi`: 1,000 / 8 / 8 by default, 125 LUNs a target, 2,033 sysfs writes), checked
# with `sanforge scst check` and `sanforge node check`; once serving 1 device. Boots
# each under QEMU TCG --runs times (default 3). The big image boots with
# `sanforge.bench=scst-apply` on the kernel command line: after `ready` the init
# (src/init/bench.rs) empties SCST with its own teardown and replays the exact
# (path, string) list it wrote at boot with busybox `echo` in a `sh` loop, timed by
# the VM's clock, and prints both times on the console. Prints per boot:
#   apply s   the init's write loops at boot, first write to last (scst step + enable
#             ports)
#   floor s   busybox replaying the same writes
#   ratio     apply / floor (goal: <= 1.1)
#   scst step the boot's whole `scst` step (parse, validate, plan, daemon start, writes)
#   ready s   boot to `ready` (seconds since the kernel started), 1,000 devices and 1
# and the machine's load average before and after. Timings under TCG on a shared
# machine are noisy: compare apply and floor of the same boot.
# Usage: benches/scst-apply.sh [--runs N] [--devices N] [--targets N] [--groups N]
#                              [--memory MIB] [--debug]
#   --debug  the debug build of sanforge and sanforge-init instead of --release
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3; devices=1000; targets=8; groups=8; memory=1024; profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift ;;
    --devices) devices="$2"; shift ;;
    --targets) targets="$2"; shift ;;
    --groups) groups="$2"; shift ;;
    --memory) memory="$2"; shift ;;
    --debug) profile=debug ;;
    *) echo "usage: $0 [--runs N] [--devices N] [--targets N] [--groups N] [--memory MIB] [--debug]" >&2; exit 2 ;;
  esac
  shift
done
upstream="${SANFORGE_UPSTREAM:-../shared/upstream}"
archive="$upstream/scst-3.10.tar.gz"
[ -f "$archive" ] || { echo "needs the SCST 3.10 archive: $archive (or SANFORGE_UPSTREAM=DIR)" >&2; exit 2; }
archive=$(realpath "$archive")
if [ "$profile" = release ]; then cargo build --release -q --bins; else cargo build -q --bins; fi
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/$profile"
sf="$bin/sanforge"
export SANFORGE_INIT="$bin/sanforge-init" SANFORGE_PROGRESS=plain
work=$(mktemp -d)
stop_all() {
  for p in big small; do
    [ -d "$work/$p/out/scst-fc-node" ] && "$sf" run "$work/$p/out/scst-fc-node" --stop > /dev/null 2>&1 || true
  done
}
trap 'stop_all; rm -rf "$work"' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "load average (1, 5, 15 min) before: $(load)" >&2

# project NAME SCST_CONF: a scratch copy of the project serving SCST_CONF, built.
project() {
  local dir="$work/$1"
  mkdir -p "$dir"
  cp -r recipes overlays kernel-configs "$dir/"
  cp "$2" "$dir/recipes/nodes/scst-fc-node.scst.conf"
  # The address QEMU's user network forwards to.
  sed -i 's|^addresses = .*|addresses = ["192.0.2.15/24"]|' "$dir/recipes/nodes/scst-fc-node.toml"
  (
    cd "$dir"
    "$sf" scst check recipes/nodes/scst-fc-node.scst.conf > "$work/$1.check" 2>&1 \
      || { cat "$work/$1.check" >&2; exit 1; }
    "$sf" node check recipes/nodes/scst-fc-node.toml > "$work/$1.nodecheck" 2>&1 \
      || { cat "$work/$1.nodecheck" >&2; exit 1; }
    "$sf" fetch --import "$archive" > "$work/$1.import" 2>&1 || { cat "$work/$1.import" >&2; exit 1; }
    s=$(date +%s)
    "$sf" build recipes/scst-fc-node.toml > "$work/$1.build" 2>&1 || { tail -40 "$work/$1.build" >&2; exit 1; }
    echo "built the $1 image in $(( $(date +%s) - s ))s" >&2
  )
}

"$sf" scst generate --iscsi --devices "$devices" --targets "$targets" --groups "$groups" > "$work/big.conf"
"$sf" scst generate --iscsi --devices 1 --targets 1 --groups 1 > "$work/small.conf"
writes=$("$sf" scst plan "$work/big.conf" | wc -l)
echo "generated: $devices vdisk_nullio devices, $targets iSCSI targets, $groups initiator groups: $writes sysfs writes" >&2
project big "$work/big.conf"
project small "$work/small.conf"

# boot NAME [APPEND...]: boots NAME's image until ready; its console log on stdout's
# file $work/NAME.console.
boot() {
  local name="$1"; shift
  local out="$work/$name/out/scst-fc-node" port=$((20000 + RANDOM % 20000))
  local args=()
  for a in "$@"; do args+=(--append "$a"); done
  "$sf" run "$out" --until-ready --quiet --accel tcg --timeout 900 --memory "$memory" \
    --iscsi-port "$port" "${args[@]}" > "$work/$name.run" 2>&1 \
    || { cat "$work/$name.run" >&2; tail -40 "$work/$name/out/scst-fc-node.run/console.log" >&2; exit 1; }
}
console() { tr -d '\r' < "$work/$1/out/scst-fc-node.run/console.log"; }
ready_at() { console "$1" | sed -n 's/^.*sanforge-init:   ready  *\([0-9.]*\)$/\1/p' | tail -1; }
step_took() { console "$1" | sed -n "s/^.*sanforge-init:   $2  .* -> *[0-9.]*  *\([0-9.]*\) s.*$/\1/p" | tail -1; }

rows=()
for i in $(seq 1 "$runs"); do
  boot big sanforge.bench=scst-apply
  # The bench runs after `ready`: wait for its line.
  line=""
  for _ in $(seq 1 1800); do
    line=$(console big | grep -m1 -E "sanforge-init: bench scst-apply: " || true)
    [ -n "$line" ] && break
    sleep 0.5
  done
  [ -n "$line" ] || { echo "run $i: no bench line on the console after 900 s" >&2; console big | tail -40 >&2; exit 1; }
  case "$line" in *"failed: "*) echo "run $i: $line" >&2; exit 1 ;; esac
  get() { echo "$line" | grep -oE "(^| )$1=[^ ]*" | cut -d= -f2; }
  [ "$(get failed)" = 0 ] || { echo "run $i: the busybox replay had failed writes: $line" >&2; exit 1; }
  [ "$(get devices | cut -d/ -f1)" = "$(get devices | cut -d/ -f2)" ] \
    || { echo "run $i: the replay did not re-create every device: $line" >&2; exit 1; }
  big_ready=$(ready_at big); scst_step=$(step_took big scst)
  echo "run $i: $line" | sed 's/^.*bench scst-apply: /run '"$i"': /' >&2
  "$sf" run "$work/big/out/scst-fc-node" --stop > /dev/null
  boot small
  small_ready=$(ready_at small)
  "$sf" run "$work/small/out/scst-fc-node" --stop > /dev/null
  rows+=("$(printf '| %d | %s | %s | %s | %s | %s | %s | %s | %s |' "$i" "$(get writes)" \
    "$(get apply_s)" "$(get floor_s)" "$(get ratio)" "$scst_step" "$(get teardown_s)" \
    "$big_ready" "$small_ready")")
done

echo "load average (1, 5, 15 min) after: $(load)" >&2
echo "| boot | writes | apply s | floor s | ratio (goal <= 1.1) | scst step s | teardown s | ready s, $devices devices | ready s, 1 device |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
