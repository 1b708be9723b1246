#!/usr/bin/env bash
# The kernel matrix of a recipe: builds every kernel it names ([kernel] and each
# [kernel.matrix] entry; cached stages are reused), boots each image under QEMU until
# `sanforge-init: ready`, and prints one row per kernel: version, stages passed, image
# size (vmlinuz + initramfs), build time and boot-to-ready time.
# Usage: benches/matrix.sh [RECIPE] [sanforge matrix options, e.g. --no-boot --json]
set -euo pipefail
cd "$(dirname "$0")/.."
recipe="${1:-recipes/storage-node.toml}"
[ $# -gt 0 ] && shift
cargo build --release -q
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release"
export SANFORGE_PROGRESS=plain SANFORGE_INIT="$bin/sanforge-init"
accel=tcg
[ -w /dev/kvm ] && accel=auto
exec "$bin/sanforge" matrix "$recipe" --accel "$accel" "$@"
