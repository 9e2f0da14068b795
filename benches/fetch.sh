#!/usr/bin/env bash
# Download throughput and memory of `dpgui fetch` against `curl -o /dev/null` on the same URL.
# Targets: dpgui at least 90% of curl's throughput, peak RSS under 50 MB.
#
# A release build of the tests' loopback hub (benches/hub_serve.rs, which is
# tests/common/hub_server.rs as a program) serves one SIZE-byte file (2 GiB by default, made of
# a repeating pattern, generated as it is sent). Each round runs, side by side on the same URL:
#   curl -s -o /dev/null  .../bench/big/resolve/main/model.safetensors
#   dpgui fetch bench/big model.safetensors   (HF_ENDPOINT = the server, HF_HOME = a fresh
#                                              scratch dir: a real download into the hub cache)
# the order alternating between rounds, each under /usr/bin/time -v (wall time, peak RSS).
# Throughput = SIZE / wall time of the whole command (dpgui's includes its start-up, the HEAD
# request and writing the file into the page cache, which curl's /dev/null does not have).
# For that reason each round also runs `curl -s -o FILE` into the same filesystem as the hub
# cache: the like-for-like reference (reported, not a target). Every run starts after a `sync`,
# so none pays for the previous one's writeback.
# After the rounds, the file dpgui fetched is compared byte for byte with what curl receives.
#
# Usage: benches/fetch.sh           (from anywhere; no root needed)
# Knobs: SIZE (2147483648), ROUNDS (3), DPGUI and HUB_SERVE (release builds, built unless set),
#        OUT (benches/results/fetch.md), VERIFY (1; 0 skips the byte comparison).
set -euo pipefail

cd "$(dirname "$0")/.."
SIZE=${SIZE:-2147483648}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-benches/results/fetch.md}
VERIFY=${VERIFY:-1}
RATIO_TARGET=90   # percent of curl
RSS_TARGET=50     # MiB

if [[ -z "${DPGUI:-}" || -z "${HUB_SERVE:-}" ]]; then
    echo "fetch.sh: cargo build --release --bin dpgui --example hub_serve" >&2
    cargo build --release --bin dpgui --example hub_serve >&2
    DPGUI=${DPGUI:-target/release/dpgui}
    HUB_SERVE=${HUB_SERVE:-target/release/examples/hub_serve}
fi
DPGUI=$(realpath "$DPGUI")
HUB_SERVE=$(realpath "$HUB_SERVE")
command -v curl >/dev/null || { echo "fetch.sh: curl not found" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "fetch.sh: /usr/bin/time (GNU time) not found" >&2; exit 1; }

tmp=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$HUB_SERVE" "$SIZE" >"$tmp/endpoint" &
server_pid=$!
for _ in $(seq 100); do
    [[ -s "$tmp/endpoint" ]] && break
    sleep 0.05
done
ENDPOINT=$(head -n1 "$tmp/endpoint")
[[ "$ENDPOINT" == http://* ]] || { echo "fetch.sh: the server did not start" >&2; exit 1; }
URL="$ENDPOINT/bench/big/resolve/main/model.safetensors"
export NO_PROXY=127.0.0.1,localhost
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY HF_TOKEN HF_TOKEN_PATH \
    HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_HUB_OFFLINE

# wall seconds and peak RSS (KiB) from a `time -v` report.
wall_of() {
    awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, p, ":"); s = 0
        for (i = 1; i <= n; i++) s = s * 60 + p[i]
        print s }' "$1"
}
rss_of() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }

run_curl() {
    /usr/bin/time -v -o "$tmp/t" curl -s -o /dev/null -w '%{size_download}' "$URL" >"$tmp/n"
    [[ $(cat "$tmp/n") == "$SIZE" ]] || { echo "fetch.sh: curl got $(cat "$tmp/n") bytes" >&2; exit 1; }
    echo "curl $(wall_of "$tmp/t") $(rss_of "$tmp/t")" >>"$tmp/results"
}

run_curl_file() {
    rm -f "$tmp/curl.out"
    sync
    /usr/bin/time -v -o "$tmp/t" curl -s -o "$tmp/curl.out" "$URL"
    [[ $(stat -c %s "$tmp/curl.out") == "$SIZE" ]] || { echo "fetch.sh: curl wrote a short file" >&2; exit 1; }
    rm -f "$tmp/curl.out"
    echo "curl-file $(wall_of "$tmp/t") $(rss_of "$tmp/t")" >>"$tmp/results"
}

run_dpgui() {
    rm -rf "$tmp/hf" "$tmp/state"
    sync
    HF_HOME=$tmp/hf HF_ENDPOINT=$ENDPOINT XDG_STATE_HOME=$tmp/state XDG_CONFIG_HOME=$tmp/cfg \
        /usr/bin/time -v -o "$tmp/t" "$DPGUI" fetch bench/big model.safetensors >"$tmp/path" 2>"$tmp/err" ||
        { cat "$tmp/err" >&2; exit 1; }
    local got
    got=$(stat -L -c %s "$(cat "$tmp/path")")
    [[ "$got" == "$SIZE" ]] || { echo "fetch.sh: dpgui wrote $got bytes" >&2; exit 1; }
    echo "dpgui $(wall_of "$tmp/t") $(rss_of "$tmp/t")" >>"$tmp/results"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$tmp/results"
for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then run_curl; run_dpgui; else run_dpgui; run_curl; fi
    run_curl_file
    tail -n3 "$tmp/results" | sort | awk -v size="$SIZE" -v r="$r" \
        '{ printf "round %d: %-9s %6.2f s  %7.0f MiB/s  RSS %5.1f MiB\n", r, $1, $2, size / $2 / 1048576, $3 / 1024 }' >&2
done

verified="not checked"
if [[ "$VERIFY" == 1 ]]; then
    if curl -s "$URL" | cmp -s - "$(cat "$tmp/path")"; then
        verified="identical to what curl receives"
    else
        echo "fetch.sh: the fetched file differs from the served one" >&2
        exit 1
    fi
fi

# Medians of each tool's throughput and its peak RSS.
summary=$(awk -v size="$SIZE" '
    { tp[$1, ++n[$1]] = size / $2 / 1048576; rss[$1] = ($3 > rss[$1] ? $3 : rss[$1]) }
    function median(t,   m, i, j, v, a) {
        m = n[t]; for (i = 1; i <= m; i++) a[i] = tp[t, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { v = a[i]; a[i] = a[j]; a[j] = v }
        return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        c = median("curl"); d = median("dpgui"); f = median("curl-file")
        printf "%.0f %.0f %.1f %.1f %.1f %.0f %.1f\n", c, d, 100 * d / c, rss["dpgui"] / 1024, rss["curl"] / 1024, f, 100 * d / f
    }' "$tmp/results")
read -r curl_tp dpgui_tp ratio dpgui_rss curl_rss file_tp file_ratio <<<"$summary"
verdict() { awk -v a="$1" -v b="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? a >= b : a < b; print ok ? "met" : "MISSED" }'; }
ratio_ok=$(verdict "$ratio" "$RATIO_TARGET" ">=")
rss_ok=$(verdict "$dpgui_rss" "$RSS_TARGET" "<")

echo "curl ${curl_tp} MiB/s, dpgui ${dpgui_tp} MiB/s: ${ratio}% of curl (target >= ${RATIO_TARGET}%: ${ratio_ok}); dpgui peak RSS ${dpgui_rss} MiB (target < ${RSS_TARGET}: ${rss_ok}); curl -o FILE ${file_tp} MiB/s (dpgui ${file_ratio}% of it)"

{
    echo "# dpgui fetch vs curl: download throughput and memory"
    echo
    echo "\`benches/fetch.sh\` ($(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r)): a ${SIZE}-byte file from"
    echo "the tests' loopback hub (release build of benches/hub_serve.rs), ${ROUNDS} rounds side by side,"
    echo "order alternating; \`curl -s -o /dev/null URL\` vs \`dpgui fetch bench/big model.safetensors\`"
    echo "into a fresh hub cache (HF_HOME in $(df -P "$tmp" | awk 'NR == 2 { print $1 }'), page cache; no fsync"
    echo "of the data). Throughput = size / wall time of the whole command; the median is reported."
    echo
    echo "| round | tool | wall (s) | MiB/s | peak RSS (MiB) |"
    echo "|---|---|---|---|---|"
    awk -v size="$SIZE" '{ r = int((NR + 2) / 3); printf "| %d | %s | %.2f | %.0f | %.1f |\n", r, $1, $2, size / $2 / 1048576, $3 / 1024 }' "$tmp/results"
    echo
    echo "- curl median: **${curl_tp} MiB/s** (peak RSS ${curl_rss} MiB)"
    echo "- dpgui median: **${dpgui_tp} MiB/s** = **${ratio}%** of curl (target >= ${RATIO_TARGET}%: ${ratio_ok})"
    echo "- dpgui peak RSS: **${dpgui_rss} MiB** (target < ${RSS_TARGET} MiB: ${rss_ok})"
    echo "- like for like, \`curl -s -o FILE\` on the cache's filesystem: ${file_tp} MiB/s; dpgui is ${file_ratio}% of it"
    echo "- the fetched file: ${verified}"
    echo "- load average before / after: ${load_before} / $(cut -d' ' -f1-3 /proc/loadavg) (the VM is shared)"
    echo
    echo "Reading. curl's figure is a read into /dev/null; dpgui also stores every byte in the page"
    echo "cache, which on this 2-vCPU VM (the server on the same machine) costs about as much as the"
    echo "transfer itself, and varies with the VM's memory: \`dd if=/dev/zero\` of 2 GiB into the same"
    echo "filesystem, no network at all, took 0.35 s to 3.4 s from one run to the next (2026-11-30)."
    echo "dpgui reserves the file's blocks (fallocate, file size unchanged) before the transfer: a full"
    echo "disk shows at the start, and ext4 writes into reserved blocks faster than with delayed"
    echo "allocation (0.69 s -> 0.60 s median for 2 GiB, 2026-11-30). A \`perf record\` of a download"
    echo "(2026-11-29) had 98% of its samples in the kernel (page-cache allocation and copy, the socket"
    echo "copy) and under 2% in dpgui, reqwest and hyper; chunks of 64 KiB or more go straight from"
    echo "reqwest's buffer to write(2). A writer thread was tried: on two cores the hand-off cost more"
    echo "than the overlap gained. Real hub downloads (TLS, tens to hundreds of MB/s) are bounded by"
    echo "the network, far below these figures."
} >"$OUT"
echo "fetch.sh: wrote $OUT" >&2
