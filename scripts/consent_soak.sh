#!/usr/bin/env bash
# The consent model's soak (issue #17): CONSENT_MODEL_PROFILE=soak (2,000 examples of 15 steps)
# split over CONSENT_SOAK_SHARDS processes (default: one per core), each with a seed, a database
# and a Redis db of its own. Progress: one line per finished example in $OUT/shard-<i>.progress;
# each shard's pytest output in $OUT/shard-<i>.log. Exits non-zero if any shard failed.
set -uo pipefail
cd "$(dirname "$0")/.."
SHARDS=${CONSENT_SOAK_SHARDS:-$(nproc)}
OUT=${CONSENT_SOAK_OUT:-.soak}
BASE_DB=${TEST_DB_NAME:-connector_test}_soak
REDIS_BASE=${CONSENT_SOAK_REDIS_DB:-12}
mkdir -p "$OUT"
start=$(date +%s)
pids=()
for ((i = 0; i < SHARDS; i++)); do
    rm -f "$OUT/shard-$i.progress"
    CONSENT_MODEL_PROFILE=soak CONSENT_MODEL_SHARD="$i/$SHARDS" \
        CONSENT_MODEL_PROGRESS="$OUT/shard-$i.progress" \
        TEST_DB_NAME="${BASE_DB}_$i" TEST_REDIS_URL="redis://127.0.0.1:6379/$((REDIS_BASE + i))" \
        .venv/bin/pytest -q -p no:cacheprovider tests/consent/test_model_product.py \
        >"$OUT/shard-$i.log" 2>&1 &
    pids+=($!)
done
failed=0
for ((i = 0; i < SHARDS; i++)); do
    if wait "${pids[$i]}"; then status=passed; else status=FAILED; failed=1; fi
    done_examples=$(wc -l <"$OUT/shard-$i.progress" 2>/dev/null || echo 0)
    echo "shard $i/$SHARDS: $status, $done_examples examples ($OUT/shard-$i.log)"
done
total=$(cat "$OUT"/shard-*.progress 2>/dev/null | wc -l)
echo "consent soak: $total examples in $(( $(date +%s) - start )) s over $SHARDS shards: $([ $failed = 0 ] && echo passed || echo FAILED)"
exit $failed
