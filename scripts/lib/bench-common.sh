# Shared by scripts/bench-flash and scripts/bench-flash-stream (sourced,
# not run): the test images and their compressed variants, one loop device
# to write them to, and timing of commands with caches dropped.
# The sourcing script sets `bench` (its name, for messages) first.

die() { echo "$bench: $*" >&2; exit 2; }

# The images, cached in BENCH_DIR (default target/bench-flash) and reused
# by later runs; each with .zst (zstd -3 -T2), .xz (xz -3 -T2: preset 3
# keeps the one-time compression within minutes; decoding speed is
# near-identical across presets), .gz (pigz), .bz2 (lbzip2) and .qcow2
# variants, a .bmap (bmaptool create) and a .sha256 of every file (what
# btyd checks while reading a stored image):
#   half   disk.img    2 GiB, half zeros: 16 stripes of 64 MiB of real files
#                      (from /usr, concatenated) each followed by 64 MiB of
#                      zeros
#   dense  dense.img   1 GiB of the same files with every NUL byte made 0x01:
#                      no zero run at all, nothing to skip
#   ext4   ext4.img    1.5 GiB GPT disk, one ext4 partition ~60 % full of
#                      /usr files: the shape of a real OS image
dir="${BENCH_DIR:-target/bench-flash}"
declare -A kind_file=([half]=disk.img [dense]=dense.img [ext4]=ext4.img)
declare -A kind_size=([half]=$((2 << 30)) [dense]=$((1 << 30)) [ext4]=$((1536 << 20)))
# The half image by default (bench-flash-stream uses only it).
raw="$dir/disk.img"
size=${kind_size[half]}

make_variant() { # OUT COMMAND...
    local out=$1; shift
    [ -s "$out" ] && return
    echo "$bench: making $out" >&2
    "$@" > "$out.tmp" && mv "$out.tmp" "$out"
}

# N bytes of real files from /usr, concatenated, to stdout.
usr_bytes() { # N
    find /usr -xdev -type f -size +4k -print0 2>/dev/null | sort -z |
        xargs -0 cat 2>/dev/null | head -c "$1" || true
}

build_half() { # OUT
    local out=$1 stripe=$((64 << 20)) stripes=16 data="$dir/data.tmp" i
    echo "$bench: building $out (1 GiB of /usr files + 1 GiB of zeros)" >&2
    usr_bytes $((stripes * stripe)) > "$data"
    [ "$(stat -c %s "$data")" -eq $((stripes * stripe)) ] || die "not enough data under /usr"
    rm -f "$out.tmp"
    for i in $(seq 0 $((stripes - 1))); do
        dd if="$data" of="$out.tmp" bs=1M skip=$((i * 64)) seek=$((i * 128)) count=64 \
            conv=notrunc status=none
    done
    truncate -s "${kind_size[half]}" "$out.tmp"
    rm -f "$data"
}

build_dense() { # OUT
    local out=$1
    echo "$bench: building $out (1 GiB of /usr files, no zero bytes)" >&2
    usr_bytes "${kind_size[dense]}" | tr '\000' '\001' > "$out.tmp"
    [ "$(stat -c %s "$out.tmp")" -eq "${kind_size[dense]}" ] || die "not enough data under /usr"
}

build_ext4() { # OUT
    local out=$1 mnt="$dir/ext4.mnt" part budget
    echo "$bench: building $out (GPT, one ext4 partition ~60 % full of /usr files)" >&2
    rm -f "$out.tmp"
    truncate -s "${kind_size[ext4]}" "$out.tmp"
    printf 'label: gpt\nstart=2048, type=linux\n' | sfdisk -q "$out.tmp"
    # The partition: from 1 MiB to the backup GPT (the last 33 sectors).
    part=$(losetup --find --show --offset $((2048 * 512)) \
        --sizelimit $((kind_size[ext4] - (2048 + 33) * 512)) "$out.tmp")
    mkfs.ext4 -q -E nodiscard -L bench "$part"
    mkdir -p "$mnt"
    mount "$part" "$mnt"
    # Fill to ~60 % with whole files (the free 40 % stays zeros). awk reads
    # to the end: exiting early would SIGPIPE sort and fail the pipeline.
    budget=$(df -B1 --output=size "$mnt" | tail -1)
    budget=$((budget * 60 / 100))
    find /usr -xdev -type f -printf '%s %p\n' 2>/dev/null | sort -k2 |
        awk -v max="$budget" '{ s += $1 + 4096; if (s <= max) print substr($0, index($0, " ") + 1) }' |
        tar -C / --no-recursion --verbatim-files-from -T - -cf - 2>/dev/null | tar -C "$mnt" -xf -
    df -h "$mnt" | tail -1 >&2
    umount "$mnt"
    losetup -d "$part"
    rmdir "$mnt"
}

# Build what is missing of image KIND (default half) and its variants.
build_images() { # [KIND]
    local kind=${1:-half} img
    img="$dir/${kind_file[$kind]}"
    mkdir -p "$dir"
    if [ ! -s "$img" ] || [ "$(stat -c %s "$img")" -ne "${kind_size[$kind]}" ]; then
        "build_$kind" "$img"
        rm -f "$img".zst "$img".xz "$img".gz "$img".bz2 "${img%.img}.qcow2" "$img".bmap "$img"*.sha256
        mv "$img.tmp" "$img"
    fi
    make_variant "$img.zst" zstd -3 -T2 -q -c "$img"
    make_variant "$img.xz" xz -3 -T2 -c "$img"
    make_variant "$img.gz" pigz -c "$img"
    make_variant "$img.bz2" lbzip2 -c "$img"
    [ -s "${img%.img}.qcow2" ] || qemu-img convert -f raw -O qcow2 "$img" "${img%.img}.qcow2"
    if command -v bmaptool >/dev/null && [ ! -s "$img.bmap" ]; then
        bmaptool create -o "$img.bmap" "$img"
    fi
    local f
    for f in "$img" "$img".zst "$img".xz "$img".gz "$img".bz2 "${img%.img}.qcow2"; do
        [ -s "$f.sha256" ] || sha256sum < "$f" | cut -d' ' -f1 > "$f.sha256"
    done
}

# The target: a loop device (--direct-io=on: the backing file's page cache
# absorbs nothing) over a FULLY WRITTEN file, larger than every image, that
# lives on a small ext2 filesystem, itself on a loop device over a
# preallocated file in BENCH_DIR. Why the detour: a loop device over a
# plain file advertises WRITE_ZEROES and serves BLKZEROOUT with a nearly
# free fallocate (the zeros are never written), while the peers' dd writes
# real zeros. ext2 files cannot fallocate, so the loop device's first
# WRITE_ZEROES fails, the kernel stops advertising it, and BLKZEROOUT (made
# once here to settle that) falls back to writing zero pages like any disk
# without a zeroing command: every zero bty skips is really written.
# What remains kinder than a USB stick: the kernel's zero-page fallback
# keeps many writes in flight, which this virtual disk absorbs better than
# dd's one 4 MiB write at a time; a stick's write speed bounds both alike.
# Sets `loop`; detach_target undoes it all.
target_fs="" target_inner="" target_mnt=""
attach_target() {
    local need=$((2 << 30)) k
    for k in "${!kind_size[@]}"; do ((kind_size[$k] > need)) && need=${kind_size[$k]}; done
    need=$((need + (64 << 20)))
    target_fs="$dir/target.ext2"
    target_mnt="$dir/target.mnt"
    rm -f "$dir/target.backing"
    if [ ! -s "$target_fs" ]; then
        fallocate -l $((need + (256 << 20))) "$target_fs.tmp"
        mke2fs -q -t ext2 -F "$target_fs.tmp"
        mv "$target_fs.tmp" "$target_fs"
    fi
    target_inner=$(losetup --find --show --direct-io=on "$target_fs")
    mkdir -p "$target_mnt"
    mount -t ext2 "$target_inner" "$target_mnt"
    if [ "$(stat -c %s "$target_mnt/backing" 2>/dev/null || echo 0)" -ne "$need" ]; then
        echo "$bench: writing the $((need >> 20)) MiB target backing file" >&2
        rm -f "$target_mnt/backing"
        dd if=/dev/zero of="$target_mnt/backing" bs=4M count=$((need >> 22)) oflag=direct status=none
    fi
    loop=$(losetup --find --show --direct-io=on "$target_mnt/backing")
    blkdiscard -z -o 0 -l $((4 << 20)) "$loop"
    local wz
    wz=$(cat "/sys/block/${loop#/dev/}/queue/write_zeroes_max_bytes")
    [ "$wz" -eq 0 ] || die "$loop still offers WRITE_ZEROES ($wz bytes): zeroing would be free"
}
detach_target() {
    [ -z "$loop" ] || losetup -d "$loop" 2>/dev/null || true
    loop=""
    [ -z "$target_mnt" ] || umount "$target_mnt" 2>/dev/null || true
    [ -z "$target_inner" ] || losetup -d "$target_inner" 2>/dev/null || true
    target_inner=""
}

declare -A secs
runs=${BENCH_RUNS:-3}
now_ns() { date +%s%N; }
# One timed run of COMMAND (a bash string) into times[KEY]. A failure of an
# optional command marks KEY failed (shown as FAILED in the table, its
# error printed, never silently counted out); any other failure ends the
# bench.
declare -A times failed
time_once() { # KEY COMMAND [optional]
    local key=$1 cmd=$2 optional=${3:-} start end
    [ -z "${failed[$key]:-}" ] || return 0
    sync; echo 3 > /proc/sys/vm/drop_caches
    start=$(now_ns)
    if ! bash -euo pipefail -c "$cmd" >/dev/null 2>"$dir/last.err"; then
        cat "$dir/last.err" >&2
        [ -n "$optional" ] || die "$key failed: $cmd"
        echo "$bench: $key FAILED: $cmd" >&2
        failed[$key]=1
        return 0
    fi
    end=$(now_ns)
    times[$key]+="$(awk -v ns=$((end - start)) 'BEGIN { printf "%.2f", ns / 1e9 }') "
}
median() { # KEY: the median of its runs into secs[KEY]
    local key=$1
    [ -z "${failed[$key]:-}" ] && [ -n "${times[$key]:-}" ] || return 0
    secs[$key]=$(printf '%s\n' ${times[$key]} | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }')
    echo "$bench: $key ${secs[$key]} s (median of: ${times[$key]% })" >&2
}
check() { # the loop device must hold the image now
    cmp -n "$size" "$raw" "$loop" >/dev/null || die "$1 left $loop different from the image"
}
