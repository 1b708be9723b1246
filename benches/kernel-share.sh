#!/usr/bin/env bash
# How much of a kernel build a second config of the same source reuses (issue 12 item 7).
# Builds variants of the default recipe's kernel, each differing from the default (and
# from each other) by one option, so none is in the stage cache:
#   cold:   nothing shared (SANFORGE_KERNEL_SEED=0, SANFORGE_CCACHE=0): every object compiled
#   seeded: a second config started from the cold build's tree (kbuild recompiles what
#           the changed option touches; ccache off, so only seeding counts)
#   clean:  the same second config again, not seeded (ccache on: it only fills or reuses
#           the compiler cache, whose objects are what gcc writes): the reference
#           output, and the older way of sharing, for comparison
# and prints wall and CPU time (user+sys of the whole `sanforge build`, which does not
# depend on what else the machine is doing) of each, and the ratio to cold. `seeded` and
# `clean` build the same config: the script checks that vmlinuz and every module are
# byte-identical between them (a seeded build must equal a clean one).
# The bench removes its own variants' cache entries when it ends.
# Usage: benches/kernel-share.sh [RECIPE]
set -euo pipefail
cd "$(dirname "$0")/.."
recipe="${1:-recipes/storage-node.toml}"
cargo build --release -q
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release"
export SANFORGE_PROGRESS=plain SANFORGE_INIT="$bin/sanforge-init"
cache="${SANFORGE_CACHE:-$HOME/.cache/sanforge}"
tmp=$(mktemp -d)
variant="recipes/bench-kshare-$$.toml"
# The variant keeps the recipe's pinned packages (only the kernel differs).
[ -f "${recipe%.toml}.lock" ] && cp "${recipe%.toml}.lock" "${variant%.toml}.lock"
made=()
cleanup() {
  for k in "${made[@]}"; do rm -rf "$cache/stages/kernel/$k"; done
  rm -rf "$tmp" "$variant" "${variant%.toml}.lock"
}
trap cleanup EXIT
# Distinct from the default and from earlier runs' leftovers.
shift_a=$(( 12 + RANDOM % 4 )); shift_b=$(( shift_a + 4 ))
mkvariant() { # OPTION
  sed "s/^options = { CONFIG_PRINTK_TIME = \"y\" }/options = { CONFIG_PRINTK_TIME = \"y\", $1 }/" "$recipe" > "$variant"
  grep -q "$1" "$variant" || { echo "cannot add $1 to $recipe's [kernel] options" >&2; exit 1; }
}
kernel_entry() { # full path of the variant's kernel entry
  local short
  short=$("$bin/sanforge" plan "$variant" 2>/dev/null | awk '$1 == "kernel" { print $2 }')
  ls -d "$cache/stages/kernel/$short"* 2>/dev/null | head -1
}
run() { # NAME SEED CCACHE
  /usr/bin/time -f "%e %U %S" -o "$tmp/$1.time" env SANFORGE_KERNEL_SEED="$2" SANFORGE_CCACHE="$3" \
    "$bin/sanforge" build "$variant" --out "$tmp/out-$1" > "$tmp/$1.log" 2>&1 \
    || { tail -20 "$tmp/$1.log"; exit 1; }
  read -r wall user sys < "$tmp/$1.time"
  cpu=$(echo "$user + $sys" | bc)
  kwall=$(grep -Eo 'kernel: done in [0-9.]+s' "$tmp/$1.log" | grep -Eo '[0-9.]+' || echo "-")
  echo "$1 $wall $cpu $kwall" >> "$tmp/table"
}
digest() { # ENTRY -> one line per file of vmlinuz + modules
  (cd "$1" && find vmlinuz modules -type f -print0 | sort -z | xargs -0 sha256sum)
}

mkvariant "CONFIG_LOG_BUF_SHIFT = \"$shift_a\""
run cold 0 0
made+=("$(basename "$(kernel_entry)")")

mkvariant "CONFIG_LOG_BUF_SHIFT = \"$shift_b\""
run seeded 1 0
entry=$(kernel_entry)
grep -q "starting from the build tree of" "$tmp/seeded.log" \
  || { echo "the seeded build did not start from the cold build's tree" >&2; exit 1; }
digest "$entry" > "$tmp/seeded.sums"
rm -rf "$entry"
run clean 0 1
made+=("$(basename "$(kernel_entry)")")
digest "$(kernel_entry)" > "$tmp/clean.sums"

printf '%-8s %9s %9s %12s %10s\n' BUILD "WALL s" "CPU s" "KERNEL s" "CPU/cold"
read -r _ _ cold_cpu _ < <(head -1 "$tmp/table")
while read -r name wall cpu kwall; do
  printf '%-8s %9.0f %9.0f %12s %9.0f%%\n' "$name" "$wall" "$cpu" "$kwall" "$(echo "100 * $cpu / $cold_cpu" | bc -l)"
done < "$tmp/table"
echo
files=$(wc -l < "$tmp/seeded.sums")
if cmp -s "$tmp/seeded.sums" "$tmp/clean.sums"; then
  echo "seeded build = clean build: vmlinuz and $((files - 1)) modules byte-identical"
else
  echo "seeded build DIFFERS from the clean build:"; diff "$tmp/seeded.sums" "$tmp/clean.sums" | head -20
  exit 1
fi
