#!/usr/bin/env bash
# Fuzzes tessera-piv, tessera-pki's key-attestation verifier and the people import's CSV reader
# (tessera-core): runs every cargo-fuzz target of crates/piv/fuzz (all are found with
# `cargo fuzz list`, so a new [[bin]] target needs no entry here) for SECONDS_PER_TARGET seconds
# (default 20), one after the other, on the nightly toolchain. Corpora grow in
# crates/piv/fuzz/corpus/<target> (seeded from crates/piv/fuzz/seeds/<target>), crashing inputs
# land in crates/piv/fuzz/artifacts/<target>. Exits non-zero if any target found a crash.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Environment: FUZZ_JOBS (default 1) parallel libFuzzer jobs per target; FUZZ_MAX_LEN (default
# 8192) largest input libFuzzer tries; FUZZ_TOOLCHAIN (default nightly).
set -euo pipefail

seconds="${1:-20}"
shift || true
case "$seconds" in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
	exit 2
	;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/crates/piv/fuzz"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
jobs="${FUZZ_JOBS:-1}"
max_len="${FUZZ_MAX_LEN:-8192}"

if ! rustup toolchain list | grep -q "^$toolchain"; then
	echo "fuzz.sh: the $toolchain toolchain is missing (rustup toolchain install $toolchain)" >&2
	exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "fuzz.sh: installing cargo-fuzz" >&2
	cargo install cargo-fuzz --locked
fi

cd "$fuzz_dir"
if [ "$#" -gt 0 ]; then
	targets=("$@")
else
	mapfile -t targets < <(cargo "+$toolchain" fuzz list)
fi

# Build all targets first, so the time limit is spent fuzzing.
cargo "+$toolchain" fuzz build

failed=()
for target in "${targets[@]}"; do
	corpus="corpus/$target"
	mkdir -p "$corpus" "artifacts/$target"
	if [ -d "seeds/$target" ]; then
		cp -n seeds/"$target"/* "$corpus"/ 2>/dev/null || true
	fi
	echo "=== $target: ${seconds}s, $jobs job(s)" >&2
	log="artifacts/$target/last-run.log"
	parallel=()
	if [ "$jobs" -gt 1 ]; then
		# libFuzzer's job mode writes each job's output to fuzz-N.log in the current directory.
		parallel=(-jobs="$jobs" -workers="$jobs")
	fi
	set +e
	cargo "+$toolchain" fuzz run "$target" "$corpus" -- \
		-max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 "${parallel[@]}" \
		2>&1 | tee "$log" | grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==|SUMMARY|thread .* panicked)' >&2
	status="${PIPESTATUS[0]}"
	set -e
	if [ "$status" -eq 0 ]; then
		echo "=== $target: no crash" >&2
	else
		echo "=== $target: FAILED with status $status (log: $fuzz_dir/$log, inputs: $fuzz_dir/artifacts/$target)" >&2
		failed+=("$target")
	fi
done

if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz.sh: crashes in: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz.sh: ${#targets[@]} target(s), no crash" >&2
