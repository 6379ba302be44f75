# Shared by scripts/bench-flash and scripts/bench-flash-stream (sourced,
# not run): the 2 GiB test image and its compressed variants, one loop
# device to write them to, and timing of commands with caches dropped.
# The sourcing script sets `bench` (its name, for messages) first.

die() { echo "$bench: $*" >&2; exit 2; }

# The image: 2 GiB raw disk, half zeros: 16 stripes of 64 MiB of real files
# (from /usr, concatenated) each followed by 64 MiB of zeros; made into .zst
# (zstd -3 -T2), .xz (xz -3 -T2: preset 3 keeps the one-time compression
# within minutes; decoding speed is near-identical across presets), .gz
# (pigz), .bz2 (lbzip2) and .qcow2. Cached in BENCH_DIR (default
# target/bench-flash) and reused by later runs.
dir="${BENCH_DIR:-target/bench-flash}"
raw="$dir/disk.img"
stripe=$((64 << 20))
stripes=16
size=$((2 * stripes * stripe))

make_variant() { # OUT COMMAND...
    local out=$1; shift
    [ -s "$out" ] && return
    echo "$bench: making $out" >&2
    "$@" > "$out.tmp" && mv "$out.tmp" "$out"
}
# Build what is missing of the image and its variants.
build_images() {
    mkdir -p "$dir"
    if [ ! -s "$raw" ] || [ "$(stat -c %s "$raw")" -ne "$size" ]; then
        echo "$bench: building $raw (1 GiB of /usr files + 1 GiB of zeros)" >&2
        data="$dir/data.tmp"
        find /usr -xdev -type f -size +4k -print0 2>/dev/null | sort -z |
            xargs -0 cat 2>/dev/null | head -c $((stripes * stripe)) > "$data" || true
        [ "$(stat -c %s "$data")" -eq $((stripes * stripe)) ] || die "not enough data under /usr"
        rm -f "$raw.tmp"
        for i in $(seq 0 $((stripes - 1))); do
            dd if="$data" of="$raw.tmp" bs=1M skip=$((i * 64)) seek=$((i * 128)) count=64 \
                conv=notrunc status=none
        done
        truncate -s "$size" "$raw.tmp"
        rm -f "$data" "$raw".*.tmp
        mv "$raw.tmp" "$raw"
        rm -f "$raw".zst "$raw".xz "$raw".gz "$raw".bz2 "$dir/disk.qcow2" "$raw.bmap"
    fi
    make_variant "$raw.zst" zstd -3 -T2 -q -c "$raw"
    make_variant "$raw.xz" xz -3 -T2 -c "$raw"
    make_variant "$raw.gz" pigz -c "$raw"
    make_variant "$raw.bz2" lbzip2 -c "$raw"
    [ -s "$dir/disk.qcow2" ] || qemu-img convert -f raw -O qcow2 "$raw" "$dir/disk.qcow2"
    if ((${have_bmap:-0})) && [ ! -s "$raw.bmap" ]; then bmaptool create -o "$raw.bmap" "$raw"; fi
}

# One loop device, a little larger than the image, over noise-free sparse
# backing (contents do not matter: every run overwrites the whole image),
# with --direct-io=on so the backing file's page cache does not absorb the
# writes. The caller detaches it (`losetup -d "$loop"`) on exit.
attach_target() {
    truncate -s $((size + (64 << 20))) "$dir/target.backing"
    loop=$(losetup --find --show --direct-io=on "$dir/target.backing")
}

declare -A secs
runs=${BENCH_RUNS:-3}
now_ns() { date +%s%N; }
# One timed run of COMMAND (a bash string) into times[KEY]; a failure of an
# optional command drops KEY, any other failure ends the bench.
declare -A times dropped
time_once() { # KEY COMMAND [optional]
    local key=$1 cmd=$2 optional=${3:-} start end
    [ -z "${dropped[$key]:-}" ] || return 0
    sync; echo 3 > /proc/sys/vm/drop_caches
    start=$(now_ns)
    if ! bash -euo pipefail -c "$cmd" >/dev/null 2>"$dir/last.err"; then
        cat "$dir/last.err" >&2
        [ -n "$optional" ] || die "$key failed: $cmd"
        echo "$bench: $key failed; left out" >&2
        dropped[$key]=1
        return 0
    fi
    end=$(now_ns)
    times[$key]+="$(awk -v ns=$((end - start)) 'BEGIN { printf "%.2f", ns / 1e9 }') "
}
median() { # KEY: the median of its runs into secs[KEY]
    local key=$1
    [ -z "${dropped[$key]:-}" ] && [ -n "${times[$key]:-}" ] || return 0
    secs[$key]=$(printf '%s\n' ${times[$key]} | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }')
    echo "$bench: $key ${secs[$key]} s (median of: ${times[$key]% })" >&2
}
check() { # the loop device must hold the image now
    cmp -n "$size" "$raw" "$loop" >/dev/null || die "$1 left $loop different from the image"
}

