#!/usr/bin/env bash
# Measures the spine's figures and prints a table:
#   cold build of the default recipe (only with --cold: a fresh cache whose source
#   blobs are copied from the normal cache, so no download is timed), a second build
#   with nothing changed, a build after changing only the node config, initramfs and
#   vmlinuz sizes, and QEMU start → `sanforge-init: ready` under TCG.
# Usage: benches/spine.sh [--cold] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
cold=0; runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --cold) cold=1 ;;
    --runs) runs="$2"; shift ;;
    *) echo "usage: $0 [--cold] [--runs N]" >&2; exit 2 ;;
  esac
  shift
done
cargo build --release -q
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release"
export SANFORGE_PROGRESS=plain SANFORGE_INIT="$bin/sanforge-init"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy of the project, so the node config can change without touching the checkout.
cp -r Cargo.toml recipes overlays kernel-configs "$work/"
if [ "$cold" = 1 ]; then
  main_cache="${SANFORGE_CACHE:-$HOME/.cache/sanforge}"
  export SANFORGE_CACHE="$work/cache"
  mkdir -p "$SANFORGE_CACHE/blobs"
  [ -d "$main_cache/blobs/sha256" ] && cp -a "$main_cache/blobs/sha256" "$SANFORGE_CACHE/blobs/"
fi
sf="$bin/sanforge"
secs() { local s e; s=$(date +%s%N); "$@" > "$work/last.log" 2>&1 || { cat "$work/last.log" >&2; exit 1; }; e=$(date +%s%N); echo "scale=2; ($e - $s) / 1000000000" | bc; }
out="$work/out/storage-node"
first=$(cd "$work" && secs "$sf" build --out "$out")
first_ran=$(grep -o 'ran: [^;]*' "$work/last.log" || true)
noop=$(cd "$work" && secs "$sf" build --out "$out")
noop_ran=$(grep -o 'ran: [^;]*' "$work/last.log" || true)
sed -i 's/^hostname = .*/hostname = "san-bench"/' "$work/recipes/nodes/storage-node.toml"
node=$(cd "$work" && secs "$sf" build --out "$out")
node_ran=$(grep -o 'ran: [^;]*' "$work/last.log" || true)
initramfs=$(stat -c %s "$out/initramfs.cpio.zst")
vmlinuz=$(stat -c %s "$out/vmlinuz")
ready=()
for i in $(seq 1 "$runs"); do
  port=$((20000 + RANDOM % 20000))
  "$sf" run "$out" --until-ready --quiet --accel tcg --iscsi-port "$port" > "$work/run.log" 2>&1 || { cat "$work/run.log" >&2; exit 1; }
  ready+=("$(grep -o 'ready after [0-9.]*' "$work/run.log" | grep -o '[0-9.]*$')")
  "$sf" run "$out" --stop > /dev/null
done
mib() { echo "scale=2; $1 / 1048576" | bc; }
printf '%-44s %12s  %s\n' "figure" "value" "goal / note"
printf '%-44s %12s  %s\n' "first build ($([ $cold = 1 ] && echo cold || echo 'with this cache'))" "${first} s" "$first_ran"
printf '%-44s %12s  %s\n' "second build, nothing changed" "${noop} s" "< 5 s; $noop_ran"
printf '%-44s %12s  %s\n' "build after changing only the node config" "${node} s" "< 30 s, no kernel; $node_ran"
printf '%-44s %12s  %s\n' "initramfs.cpio.zst" "$(mib "$initramfs") MiB" "< 32 MiB"
printf '%-44s %12s  %s\n' "vmlinuz" "$(mib "$vmlinuz") MiB" ""
printf '%-44s %12s  %s\n' "QEMU start → ready, TCG (runs: ${ready[*]})" "$(printf '%s\n' "${ready[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p") s" "< 5 s (median)"
