#!/bin/sh
# A peer that lies (tests/e2e/external.rs): it sends nothing, yet reports 400 frames received
# and sent, as if an 8 s call had gone perfectly. The censor saw no packet of it, so callwall
# must judge the call `error`: "report contradicts the network".
set -eu
start=$CALLWALL_START_UNIX_NS
step=$((CALLWALL_FRAME_INTERVAL_MS * 1000000))
{
  printf '{"event":"hello","impl":"liar 1"}\n'
  printf '{"event":"connected","t_ns":%s}\n' "$start"
  seq=0
  while [ $seq -lt 400 ]; do
    sent=$((start + seq * step))
    printf '{"seq":%s,"sent_ns":%s,"recv_ns":%s}\n' $seq $sent $((sent + 5000000))
    seq=$((seq + 1))
  done
  end=$((start + 400 * step))
  printf '{"event":"sent","frames":400,"start_ns":%s,"end_ns":%s}\n' "$start" $end
  printf '{"event":"done","t_ns":%s}\n' $((end + 1000000000))
} > "$CALLWALL_REPORT"
