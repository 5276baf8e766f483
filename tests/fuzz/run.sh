#!/bin/sh
# Run the libFuzzer harnesses one after another: replay each over its seed corpus, or fuzz each for a while.
#
# usage: tests/fuzz/run.sh replay|fuzz DIR SECONDS NAME...
# DIR holds the binaries (DIR/fuzz_NAME, `make fuzz`); the seeds are tests/fuzz/corpus/NAME,
# the dictionary tests/fuzz/NAME.dict when there is one. While fuzzing, new inputs go to
# DIR/new/NAME (the committed corpus is only read), a crashing input to DIR/crash-NAME-*,
# and libFuzzer's output to DIR/log/NAME-MODE.log. Any crash, leak, sanitizer report,
# timeout or out-of-memory stops the run with the end of that log; the exit status is 1.
set -u

[ $# -ge 3 ] || { echo "usage: $0 replay|fuzz DIR SECONDS NAME..." >&2; exit 2; }
mode=$1 dir=$2 secs=$3
shift 3
case $mode in replay | fuzz) ;; *) echo "$0: unknown mode '$mode'" >&2; exit 2 ;; esac

# Leaks count as failures; UBSan stops at its first report (the harnesses are also built
# with -fno-sanitize-recover=undefined).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "$dir/log"

# The last value libFuzzer printed for `key` (stat::key: N, or "Done N runs").
stat() {
	sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

for name in "$@"; do
	bin=$dir/fuzz_$name
	corpus=tests/fuzz/corpus/$name
	log=$dir/log/$name-$mode.log
	if [ ! -x "$bin" ] || [ ! -d "$corpus" ]; then
		echo "fuzz_$name: missing $bin or $corpus" >&2
		exit 1
	fi
	if [ "$mode" = replay ]; then
		"$bin" -runs=0 "$corpus" >"$log" 2>&1
	else
		dict=
		[ -f "tests/fuzz/$name.dict" ] && dict=-dict=tests/fuzz/$name.dict
		rm -rf "$dir/new/$name"
		mkdir -p "$dir/new/$name"
		# shellcheck disable=SC2086 # $dict is one word or none
		"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix="$dir/crash-$name-" $dict \
			"$dir/new/$name" "$corpus" >"$log" 2>&1
	fi
	rc=$?
	# Belt and braces: a sanitizer report is a failure even if the exit status says not.
	if [ $rc -ne 0 ] || grep -q -e 'runtime error:' -e '^==[0-9]*==ERROR:' "$log"; then
		echo "fuzz_$name: FAILED ($mode, exit status $rc); the end of $log:" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
	runs=$(stat number_of_executed_units "$log")
	[ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
	if [ "$mode" = replay ]; then
		echo "fuzz_$name: $(ls "$corpus" | wc -l) seeds replayed, clean"
	else
		echo "fuzz_$name: ${runs:-?} runs in ${secs} s" \
			"($(stat average_exec_per_sec "$log") exec/s," \
			"$(ls "$dir/new/$name" | wc -l) new inputs), clean"
	fi
done
