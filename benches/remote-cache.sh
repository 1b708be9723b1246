#!/usr/bin/env bash
# The stage cache shared through an OCI registry (issue 16 item 2): what a fresh
# builder's build of the default recipe costs with a warm remote cache against a cold
# one, and how many bytes each stage pushes.
#
# Starts Debian's docker-registry on 127.0.0.1 (a free port, a temporary storage dir),
# then:
#   push:  a build from the existing cache ($SANFORGE_CACHE, default ~/.cache/sanforge)
#          with the remote set and a fresh signing key: pushes every entry it has
#   warm:  a fresh builder (empty temporary SANFORGE_CACHE) with the remote: pulls
#   cold:  a fresh builder without the remote (with `cold`: rebuilds the kernel,
#          10-20 minutes; without it, the line says so and prints no time)
# Run `sanforge build` first (so the existing cache has the recipe's stages).
# Usage: benches/remote-cache.sh [RECIPE] [cold]
#   SANFORGE_BENCH_PROFILE=debug uses the debug build instead of --release.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe="${1:-recipes/storage-node.toml}"
which="${2:-}"
profile="${SANFORGE_BENCH_PROFILE:-release}"
if [ "$profile" = release ]; then cargo build --release -q; else cargo build -q; fi
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/$profile"
command -v docker-registry > /dev/null || { echo "docker-registry is missing: install Debian's docker-registry package (.ci/setup does)" >&2; exit 1; }
export SANFORGE_PROGRESS=plain SANFORGE_INIT="$bin/sanforge-init"
unset SANFORGE_REMOTE_CACHE SANFORGE_REMOTE_CACHE_KEY
tmp=$(mktemp -d)
variant="${recipe%.toml}.bench-rcache-$$"
reg_pid=""
cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2> /dev/null || true; wait "$reg_pid" 2> /dev/null || true; fi
  rm -rf "$tmp" "$variant.toml" "$variant.lock" "$variant.pub"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$tmp/registry.yml" << EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $tmp/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$tmp/registry.yml" > "$tmp/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break; sleep 0.1; done
remote="oci://127.0.0.1:$port/sanforge-cache"

"$bin/sanforge" keygen --out "$tmp/key" > /dev/null
cp "$tmp/key.pub" "$variant.pub"
cp "${recipe%.toml}.lock" "$variant.lock" 2> /dev/null || true
{ cat "$recipe"; printf '\n[cache]\ntrusted-keys = ["%s"]\n' "$variant.pub"; } > "$variant.toml"

run() { # NAME CACHE REMOTE [KEY]
  /usr/bin/time -f "%e" -o "$tmp/$1.time" env SANFORGE_CACHE="$2" \
    ${4:+SANFORGE_REMOTE_CACHE_KEY="$4"} \
    "$bin/sanforge" build "$variant.toml" --out "$tmp/out-$1" --remote-cache "$3" > "$tmp/$1.log" 2>&1 \
    || { tail -20 "$tmp/$1.log"; exit 1; }
  cat "$tmp/$1.time"
}

push_s=$(run push "${SANFORGE_CACHE:-$HOME/.cache/sanforge}" "$remote" "$tmp/key")
warm_s=$(run warm "$tmp/cache-warm" "$remote")
if [ "$which" = cold ]; then
  cold_s=$(run cold "$tmp/cache-cold" off)
else
  cold_s="not run (pass \`cold\`: rebuilds the kernel)"
fi
pulled=$(sed -n 's/^pulled from the remote cache: //p' "$tmp/warm.log")
ran=$(sed -n 's/.*(ran: \([^;]*\);.*/\1/p' "$tmp/warm.log")

printf '%-42s %s\n' "BUILD" "WALL s"
printf '%-42s %s\n' "push (existing cache, remote set)" "$push_s"
printf '%-42s %s\n' "fresh builder, warm remote" "$warm_s"
printf '%-42s %s\n' "fresh builder, cold (no remote)" "$cold_s"
echo
echo "warm run pulled: ${pulled:-nothing}; ran: ${ran:-?}"
grep '^==> fetch' "$tmp/warm.log" | sed 's/^/  warm: /' || true
same=yes
for f in "$tmp/out-push"/*; do
  [ -f "$f" ] || continue
  cmp -s "$f" "$tmp/out-warm/$(basename "$f")" || { same=no; echo "differs: $(basename "$f")"; }
done
echo "warm outputs identical to the pushing builder's: $same"
echo
printf '%-10s %14s\n' STAGE "BYTES PUSHED"
grep '^pushed ' "$tmp/push.log" | sed 's/^pushed \([a-z]*\): \([0-9]*\) bytes.*/\1 \2/' |
  while read -r stage bytes; do printf '%-10s %14s\n' "$stage" "$bytes"; done
grep -h 'warning' "$tmp/push.log" "$tmp/warm.log" || true
