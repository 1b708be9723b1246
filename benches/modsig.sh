#!/usr/bin/env bash
# Module signing on the SCST image (issue 16 item 3): builds recipes/scst-fc-node.toml
# with a fresh module-signing key (`sanforge keygen --module-signing`, in a temporary
# directory outside the project, named through SANFORGE_MODULE_SIGNING_KEY) and
# enforcement on, then checks what a signed image must hold: every module of the
# initramfs (the kernel's and SCST's extra/, qla2x00t included) ends with sign-file's
# trailer, the manifest names the certificate, and the cached kernel tree has no key.
# Prints one table: wall and CPU time of the build, modules signed in-tree and extra/.
# Cost: one full server kernel build (the new certificate is a new kernel key) plus
# the SCST modules: tens of minutes. Run it when the machine is quiet.
# Usage: benches/modsig.sh [RECIPE]
set -euo pipefail
cd "$(dirname "$0")/.."
recipe="${1:-recipes/scst-fc-node.toml}"
cargo build --release -q
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release"
export SANFORGE_PROGRESS=plain SANFORGE_INIT="$bin/sanforge-init"
tmp=$(mktemp -d)
variant="recipes/bench-modsig-$$.toml"
trap 'rm -rf "$tmp" "$variant"' EXIT
"$bin/sanforge" keygen --module-signing "$tmp/key/modsign.pem" > /dev/null
export SANFORGE_MODULE_SIGNING_KEY="$tmp/key/modsign.pem"
{ cat "$recipe"; printf '\n[kernel.module-signing]\nenforce = true\n'; } > "$variant"
/usr/bin/time -f "%e %U %S" -o "$tmp/time" \
  "$bin/sanforge" build "$variant" --out "$tmp/out" > "$tmp/build.log" 2>&1 \
  || { tail -20 "$tmp/build.log"; exit 1; }
read -r wall user sys < "$tmp/time"
mkdir "$tmp/root"
zstd -dc "$tmp/out/initramfs.cpio.zst" | (cd "$tmp/root" && cpio -idm --quiet 2> /dev/null)
intree=0; extra=0; unsigned=()
while IFS= read -r -d '' ko; do
  if [ "$(tail -c 28 "$ko")" = "~Module signature appended~" ]; then
    case "$ko" in */extra/*) extra=$((extra + 1)) ;; *) intree=$((intree + 1)) ;; esac
  else
    unsigned+=("${ko#"$tmp/root/"}")
  fi
done < <(find "$tmp/root/lib/modules" -name '*.ko' -print0)
kernel_key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["keys"]["kernel"])' "$tmp/out/manifest.json")
kdir="${SANFORGE_CACHE:-$HOME/.cache/sanforge}/stages/kernel/$kernel_key/build"
printf '%-10s %8s %8s %10s %10s %10s\n' RECIPE "WALL s" "CPU s" "IN-TREE" "EXTRA" UNSIGNED
printf '%-10s %8.0f %8.0f %10d %10d %10d\n' "$(basename "$recipe" .toml)" "$wall" \
  "$(echo "$user + $sys" | bc)" "$intree" "$extra" "${#unsigned[@]}"
grep -o '"cert-sha256": "[0-9a-f]*"' "$tmp/out/manifest.json" || { echo "manifest: no module-signing record" >&2; exit 1; }
[ ! -e "$kdir/certs/sanforge-module-signing.pem" ] || { echo "the key stayed in $kdir" >&2; exit 1; }
[ "${#unsigned[@]}" -eq 0 ] || { printf 'unsigned: %s\n' "${unsigned[@]}" >&2; exit 1; }
[ "$extra" -gt 0 ] || { echo "no SCST module in extra/" >&2; exit 1; }
