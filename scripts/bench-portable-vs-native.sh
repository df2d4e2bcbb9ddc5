#!/usr/bin/env bash
# The portable build (what `cargo build --release` makes: baseline x86-64
# code, the hand-written kernels dispatched to AVX2 + FMA at run time) against
# a build compiled for this machine's own CPU, which is only made here, for
# this comparison, in target/native. Timings alternate between the two
# binaries, so a busy second core slows both alike.
#
#   scripts/bench-portable-vs-native.sh [rounds, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
cargo build --release --quiet
RUSTFLAGS="-C target-cpu=native" cargo build --release --quiet --target-dir target/native
portable=target/release/rbm
native=target/native/release/rbm
: > target/bench-portable.txt
: > target/bench-native.txt
for _ in $(seq "$rounds"); do
    "$portable" bench --tutorial-only --repeat 2 --updates 400 >> target/bench-portable.txt
    "$native" bench --tutorial-only --repeat 2 --updates 400 >> target/bench-native.txt
done
# best of the rounds: the largest "updates/s best" of each build and part count
best() {
    awk -v want="$2" '$2 == "parts" || $2 == "parts:" { parts = $1 }
        /training loop/ && parts == want { if ($4 > b) b = $4 } END { print b }' "$1"
}
echo "PCD-15, batch 20 (the tutorial), training updates per second, best of $((2 * rounds)):"
printf "%-8s %12s %12s %10s\n" parts portable native "portable/native"
for parts in 16 2; do
    p=$(best target/bench-portable.txt "$parts")
    n=$(best target/bench-native.txt "$parts")
    printf "%-8s %12.1f %12.1f %9.1f%%\n" "$parts" "$p" "$n" "$(echo "100 * $p / $n" | bc -l)"
done
