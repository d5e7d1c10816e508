#!/bin/sh
# bench_policies: `udaxctl bench truncate-dma --iterations 50 --json` on an
# emulated device: the safe policies (default, untrack-first) report 0
# corruptions over 50 truncates under DMA, and the unsafe policy reports
# more than 0 - proof that the corruption check can fail.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
command -v jq >/dev/null || test_skip "jq is not installed"
test_find mkfs.udaxfs >/dev/null || test_skip "mkfs.udaxfs is not built"
test_find udaxfs >/dev/null || test_skip "udaxfs is not built"
out=/dev/shm/$TEST_TAG.json
trap 'rm -f $out' EXIT
timeout 120 "$UDAXCTL" bench truncate-dma --iterations 50 --nodma-iterations 50 \
	--futex-rounds 500 --qd 16 --io-size 128K --file-size 4M \
	--policy default,untrack-first,unsafe --json --quiet > $out
rc=$?
cat $out
[ $rc = 0 ] || { echo "FAIL: the bench exited $rc"; exit 1; }
jq -e '.futex_oneway_us.p50 > 0' $out >/dev/null || { echo "FAIL: no futex floor"; exit 1; }
for p in default untrack-first; do
	jq -e --arg p $p '.policies[$p] | .truncates == 50 and .corruptions == 0 and
		.truncate_under_dma_us.p50 > 0 and .truncate_no_dma_us.p50 > 0 and
		(.mechanism_us | has("p999"))' $out >/dev/null ||
		{ echo "FAIL: policy $p: want 50 truncates, 0 corruptions and latencies"; exit 1; }
done
# Whether a freed block is handed out again while the DMA still runs is a
# race the unsafe policy loses most of the time, not always: on a busy
# machine a run of 50 can end with every stale write landing before reuse.
# So the unsafe policy alone gets up to three more runs of 100; the check
# is proved able to fail when any of them sees a corruption.
tries=0
while ! jq -e '.policies.unsafe.corruptions > 0' $out >/dev/null; do
	tries=$((tries + 1))
	[ $tries -le 3 ] ||
		{ echo "FAIL: the unsafe policy showed no corruption in 4 runs: the check cannot fail?"; exit 1; }
	echo "unsafe policy: no corruption in this run; run $((tries + 1)) of at most 4"
	timeout 120 "$UDAXCTL" bench truncate-dma --iterations 100 --nodma-iterations 10 \
		--futex-rounds 100 --qd 16 --io-size 128K --file-size 4M \
		--policy unsafe --json --quiet > $out || { echo "FAIL: the bench exited $?"; exit 1; }
	jq -c '.policies.unsafe | {truncates, corruptions}' $out
done
echo PASS
exit 0
