#!/usr/bin/env bash
# How much of a kernel build a second config of the same source reuses (issue 12 item 7).
# Builds two variants of the default recipe's kernel, each differing from the default
# (and from each other) by one option, so neither is in the stage cache:
#   cold: ccache off (SANFORGE_CCACHE=0): every object compiled
#   warm: ccache on, warm from the default kernel already built into $SANFORGE_CACHE
# and prints wall and CPU time (user+sys of the whole build, which does not depend on
# what else the machine is doing) of each. Run `sanforge build` first.
# Usage: benches/kernel-share.sh [RECIPE] [both|cold|warm]
set -euo pipefail
cd "$(dirname "$0")/.."
recipe="${1:-recipes/storage-node.toml}"
which="${2:-both}"
cargo build --release -q
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release"
export SANFORGE_PROGRESS=plain SANFORGE_INIT="$bin/sanforge-init"
tmp=$(mktemp -d)
variant="recipes/bench-kshare-$$.toml"
trap 'rm -rf "$tmp" "$variant"' EXIT
run() { # NAME OPTION CCACHE
  sed "s/^options = { CONFIG_PRINTK_TIME = \"y\" }/options = { CONFIG_PRINTK_TIME = \"y\", $2 }/" "$recipe" > "$variant"
  grep -q "$2" "$variant" || { echo "cannot add $2 to $recipe's [kernel] options" >&2; exit 1; }
  /usr/bin/time -f "%e %U %S" -o "$tmp/$1.time" env SANFORGE_CCACHE="$3" \
    "$bin/sanforge" build "$variant" --out "$tmp/out-$1" > "$tmp/$1.log" 2>&1 \
    || { tail -20 "$tmp/$1.log"; exit 1; }
  read -r wall user sys < "$tmp/$1.time"
  printf '%-6s %10.0f %10.0f\n' "$1" "$wall" "$(echo "$user + $sys" | bc)"
}
printf '%-6s %10s %10s\n' BUILD "WALL s" "CPU s"
[ "$which" = warm ] || run cold 'CONFIG_LOG_BUF_SHIFT = "18"' 0
if [ "$which" != cold ]; then
  ccache_dir="${SANFORGE_CACHE:-$HOME/.cache/sanforge}/ccache"
  CCACHE_DIR="$ccache_dir" ccache -z > /dev/null
  run warm 'CONFIG_LOG_BUF_SHIFT = "19"' 1
  echo
  CCACHE_DIR="$ccache_dir" ccache -s | grep -Ei 'hits|misses' || true
fi
