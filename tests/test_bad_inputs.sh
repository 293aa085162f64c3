#!/usr/bin/env bash
# Hostile and damaged inputs through the real command line, as a table: each
# row is an input, the exit status hdqsim must return (2: configuration error,
# 1: data or vector-set error, 0: accepted) and a fragment its output must
# hold. Every row runs under a timeout, so a hang (a FIFO) fails the row.
# The classes: opening a file, IDX files, CIFAR folders, tensor sizes, numbers and YAML
# structure, empty data and impossible task splits, NPU config keys, test
# vector sets. Positive rows (status 0) show the same fixtures pass when
# intact, so a refusal is the damage's doing.
# Usage: tests/test_bad_inputs.sh HDQSIM_BINARY
set -uo pipefail
hdqsim="$(realpath "$1")"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0 rows=0

# row STATUS FRAGMENT -- ARGS...: run hdqsim ARGS, expect STATUS and FRAGMENT in stdout + stderr.
row() {
  local status="$1" fragment="$2"
  shift 3
  rows=$((rows + 1))
  local out rc
  out="$(timeout 60 "$hdqsim" "$@" 2>&1)"
  rc=$?
  if [ "$rc" -ne "$status" ] || [[ "$out" != *"$fragment"* ]]; then
    failures=$((failures + 1))
    echo "FAIL: hdqsim $* -> exit $rc (expected $status), output must hold: $fragment"
    echo "$out" | head -5 | sed 's/^/    /'
  fi
}

# ------------------------------------------------------------------ fixtures
tiny=scenarios/synthetic-tiny.yaml
sc() { printf '%s\n' "$@" > "$work/s.yaml"; echo "$work/s.yaml"; }  # a scenario from lines
mkfifo "$work/fifo"
mkdir -p "$work/dir"
# A CSV scenario whose train/test files are set per row with --set.
printf '1,2,0\n3,4,1\n5,6,0\n7,8,1\n' > "$work/ok.csv"
csv="$(printf 'name: c\ndata: {dataset: csv, path: %s, test_path: %s}\nnetwork: {hidden: [4]}\ncontinual: {classes_per_task: 1}\n' \
  "$work/ok.csv" "$work/ok.csv" > "$work/csv.yaml"; echo "$work/csv.yaml")"
# A Fashion-MNIST folder: IDX files (big-endian: 00 00 08 ndims, the dims,
# the bytes) of 10 images of 28 x 28 zero pixels with labels 0..9.
fm="$work/fm"
be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
idx_images() { { printf '\x00\x00\x08\x03'; printf "$(be32 "$1")$(be32 28)$(be32 28)"; head -c $(($1 * 784)) /dev/zero; } > "$2"; }
idx_labels() { { printf '\x00\x00\x08\x01'; printf "$(be32 "$1")"; for i in $(seq 0 $(($1 - 1))); do printf "$(printf '\\x%02x' $((i % 10)))"; done; } > "$2"; }
fresh_fm() { rm -rf "$fm"; mkdir -p "$fm"
             for split in train t10k; do idx_images 10 "$fm/$split-images-idx3-ubyte"; idx_labels 10 "$fm/$split-labels-idx1-ubyte"; done; }
fm_run=(train --scenario "$tiny" --set data.dataset=fashion-mnist --set "data.path=$fm" --set epochs=1 --no-golden --out "$work/o")

# ------------------------------------------------------- opening a file
row 2 "is a FIFO (named pipe), not a regular file" -- train --scenario "$work/fifo"
row 2 "/dev/zero: is a character device, not a regular file" -- train --scenario /dev/zero
row 1 "is a FIFO (named pipe), not a regular file" -- train --scenario "$csv" --set "data.path=$work/fifo"
row 1 "is a character device" -- train --scenario "$csv" --set data.path=/dev/zero
row 1 "dir: is a directory, not a regular file" -- train --scenario "$csv" --set "data.path=$work/dir"
row 2 "is a FIFO (named pipe)" -- estimate --scenario "$tiny" --npu "$work/fifo"
truncate -s 3G "$work/huge.csv"  # sparse: no disk used
row 1 "huge.csv: 3 GiB is more than the limit of 2 GiB for a data file" -- train --scenario "$csv" --set "data.path=$work/huge.csv"
{ printf '1,'; head -c $((2 << 20)) /dev/zero | tr '\0' '7'; printf ',0\n'; } > "$work/longline.csv"
row 1 "longline.csv:1: the line is longer than the limit of 1 MiB" -- train --scenario "$csv" --set "data.path=$work/longline.csv"
head -c $((5 << 20)) /dev/zero | tr '\0' '#' > "$work/big.yaml"
row 2 "big.yaml: 5 MiB is more than the limit of 4 MiB" -- train --scenario "$work/big.yaml"
mkdir -p "$work/har/train"; mkfifo "$work/har/train/X_train.txt"
row 1 "X_train.txt: is a FIFO" -- train --scenario "$csv" --set data.dataset=uci-har --set "data.path=$work/har"

# ---------------------------------------------------------------- IDX files
fresh_fm
row 0 "signature (HDQT final weights)" -- "${fm_run[@]}"
# Two gzip members back to back are one gzip file (gzip itself reads them so).
fresh_fm; f="$fm/train-images-idx3-ubyte"; head -c 1000 "$f" | gzip > "$f.gz"; tail -c +1001 "$f" | gzip >> "$f.gz"; rm "$f"
row 0 "signature (HDQT final weights)" -- "${fm_run[@]}"
fresh_fm; idx_images 0 "$fm/train-images-idx3-ubyte"; idx_labels 0 "$fm/train-labels-idx1-ubyte"
row 1 "holds 0 images, an empty data set" -- "${fm_run[@]}"
fresh_fm; printf 'this is not an IDX file at all, but long enough\n' > "$fm/train-images-idx3-ubyte"
row 1 "bad IDX magic number 0x74686973" -- "${fm_run[@]}"
fresh_fm; cp "$fm/train-labels-idx1-ubyte" "$fm/train-images-idx3-ubyte"
row 1 "IDX magic number is 0x00000801 (type 0x08, 1 dimensions) (expected an IDX images file" -- "${fm_run[@]}"
# An f32 images file (type 0x0D) of u8 size: the type is what is wrong, not the length.
fresh_fm; { printf "\x00\x00\x0d\x03$(be32 10)$(be32 28)$(be32 28)"; head -c 7840 /dev/zero; } > "$fm/train-images-idx3-ubyte"
row 1 "IDX magic number is 0x00000d03 (type 0x0d, 3 dimensions) (expected" -- "${fm_run[@]}"
fresh_fm; { printf '\x00\x00\x08\xff'; for _ in $(seq 255); do printf '\x00\x00\x00\x02'; done; } > "$fm/train-images-idx3-ubyte"
row 1 "IDX magic number is 0x000008ff (type 0x08, 255 dimensions) (expected" -- "${fm_run[@]}"
fresh_fm; gzip -c "$fm/train-images-idx3-ubyte" > "$fm/train-images-idx3-ubyte.gz"; printf 'JUNK' >> "$fm/train-images-idx3-ubyte.gz"
row 1 "4 bytes of junk after the gzip stream" -- "${fm_run[@]}"
fresh_fm; printf "\x00\x00\x08\x03$(be32 65536)$(be32 4096)$(be32 4096)" > "$fm/train-images-idx3-ubyte"
row 1 "65536 x 4096 x 4096 elements, more than the limit of 2^28" -- "${fm_run[@]}"
fresh_fm; f="$fm/t10k-images-idx3-ubyte"; head -c -1 "$f" > "$work/t" && mv "$work/t" "$f"
row 1 "truncated IDX file: the header promises 10 x 28 x 28 = 7840 elements of 1 byte(s), but only 7839" -- "${fm_run[@]}"

# ------------------------------------------------------------ CIFAR folders
# The binary versions' layout (datasets/cifar.h): records of label byte(s) then
# 3072 pixel bytes, no header. cifar_records FILE LABELS...: one record per
# argument, zero pixels; an argument is a CIFAR-10 label or a CIFAR-100
# coarse:fine pair.
cifar_records() { local f="$1" l b; shift; : > "$f"
                  for l in "$@"; do { for b in ${l//:/ }; do printf "$(printf '\\x%02x' "$b")"; done
                                      head -c 3072 /dev/zero; } >> "$f"; done; }
c10="$work/cifar-10-batches-bin" c100="$work/cifar-100-binary"
fresh_c10() { rm -rf "$c10"; mkdir -p "$c10"
              for b in 1 2 3 4 5; do cifar_records "$c10/data_batch_$b.bin" 0 1 2 3 4 5 6 7 8 9; done
              cp "$c10/data_batch_1.bin" "$c10/test_batch.bin"; }
fresh_c100() { rm -rf "$c100"; mkdir -p "$c100"
               cifar_records "$c100/train.bin" $(for c in $(seq 0 99); do echo "$((c / 5)):$c"; done)
               cp "$c100/train.bin" "$c100/test.bin"; }
cifar_run=(train --scenario "$tiny" --set epochs=1 --no-golden --out "$work/o")
c10_run=("${cifar_run[@]}" --set data.dataset=cifar10 --set "data.path=$c10")
c100_run=("${cifar_run[@]}" --set data.dataset=cifar100 --set "data.path=$c100")
fresh_c10
row 0 "signature (HDQT final weights)" -- "${c10_run[@]}"
fresh_c100
row 0 "signature (HDQT final weights)" -- "${c100_run[@]}"
row 0 "signature (HDQT final weights)" -- "${c100_run[@]}" --set data.cifar100_labels=coarse
row 1 "nope: no such folder. CIFAR-10 is not in Debian" -- "${cifar_run[@]}" --set data.dataset=cifar10 --set "data.path=$work/nope"
row 1 "the folder must hold train.bin and test.bin" -- "${cifar_run[@]}" --set data.dataset=cifar100 --set "data.path=$work/nope"
row 1 "ok.csv: not a folder" -- "${cifar_run[@]}" --set data.dataset=cifar10 --set "data.path=$work/ok.csv"
fresh_c10; rm "$c10/data_batch_3.bin"
row 1 "data_batch_3.bin: no such file (the folder exists but lacks it)" -- "${c10_run[@]}"
# Truncated: 10 records of 3073 bytes less 100 = 9 records and 2973 bytes of the tenth (record 9 from 0).
fresh_c10; head -c -100 "$c10/test_batch.bin" > "$work/t" && mv "$work/t" "$c10/test_batch.bin"
row 1 "test_batch.bin: 30630 bytes is not a whole number of 3073-byte cifar-10 records: record 9 is cut short after 2973 bytes" -- "${c10_run[@]}"
fresh_c10; : > "$c10/data_batch_2.bin"
row 1 "data_batch_2.bin: empty file" -- "${c10_run[@]}"
# Wrong record size: 10 CIFAR-100 records (3074 bytes) in a CIFAR-10 folder; 10 x 3074 = 10 x 3073 + 10.
fresh_c10; cp "$c100/train.bin" "$work/t"; head -c 30740 "$work/t" > "$c10/data_batch_1.bin"
row 1 "data_batch_1.bin: 30740 bytes is not a whole number of 3073-byte cifar-10 records: record 10 is cut short after 10 bytes" -- "${c10_run[@]}"
# Bad labels (the offset is the label byte's): 10 in CIFAR-10 (record 4: 4 x 3073 = 12292), fine 100
# (record 1's second byte: 3074 + 1) and coarse 20 (record 0's first byte) in CIFAR-100.
fresh_c10; cifar_records "$c10/data_batch_5.bin" 0 1 2 3 10 5 6 7 8 9
row 1 "data_batch_5.bin: record 4 (byte offset 12292): label 10 is outside 0..9" -- "${c10_run[@]}"
fresh_c100; cifar_records "$c100/test.bin" 0:0 0:100
row 1 "test.bin: record 1 (byte offset 3075): label 100 is outside 0..99" -- "${c100_run[@]}"
fresh_c100; cifar_records "$c100/test.bin" 20:0
row 1 "test.bin: record 0 (byte offset 0): label 20 is outside 0..19" -- "${c100_run[@]}" --set data.cifar100_labels=coarse
row 2 "data.cifar100_labels: 'superclass' is not one of: fine, coarse" -- "${c100_run[@]}" --set data.cifar100_labels=superclass
row 2 "data.cifar100_labels: applies to dataset cifar100 only, not cifar10" -- "${c10_run[@]}" --set data.cifar100_labels=fine

# ------------------------------------------------------------- tensor sizes
row 2 "network.hidden: the weights of hidden layer 1 (1048576 x 1048576)" -- train --scenario "$tiny" --set 'network.hidden=[1048576,1048576]'
row 2 "batch: the activations of the widest hidden layer" -- train --scenario "$tiny" --set batch=65536 --set 'network.hidden=[4096]'
row 2 "data.synthetic: the training split" -- train --scenario "$tiny" --set data.synthetic.train_per_class=1048576 --set data.synthetic.channels=1024
row 2 "network: the weights of layer 0 (1048576 x 32768)" -- train --scenario "$tiny" --set 'network.hidden=[1048576]' \
  --set batch=1 --set data.synthetic.channels=1024 --set data.synthetic.train_per_class=1 --set data.synthetic.test_per_class=1
row 2 "--m x --k (operand A): -3 x 256: every dimension must be >= 1" -- bench gemm --m -3
row 2 "more than the limit of 2^28" -- bench gemm --m 100000 --k 100000

# ------------------------------------------------------------------ networks
row 2 "network.preset: 'resnet18' is not one of: cnn-small, resnet20, resnet32" -- train --scenario "$tiny" --set "network={preset: resnet18}"
row 2 "network.hidden (an MLP) and network.preset (a layer graph) exclude each other" -- train --scenario "$(sc 'network: {hidden: [4], preset: cnn-small}')"
row 2 "network.preset cnn-small needs images (a sample shape C x H x W or H x W); the data's samples have shape {2}" -- \
  train --scenario "$csv" --set "network={preset: cnn-small}"
row 2 "conv_mapping: the NPU executes the whole_batch convolution mapping" -- train --scenario scenarios/syn-cnn-er-paper.yaml --engine npu --out "$work/cnn-npu"

# --------------------------------------------- numbers, ranges, YAML structure
row 2 "--set lr: '.inf' is not a finite number" -- train --scenario "$tiny" --set lr=.inf
row 2 "--set momentum: '.nan' is not a finite number" -- train --scenario "$tiny" --set momentum=.nan
row 2 "s.yaml:2: lr: '.inf' is not a finite number" -- train --scenario "$(sc 'name: x' 'lr: .inf')"
row 2 "s.yaml:3: epochs: duplicate key (first given on line 2)" -- train --scenario "$(sc 'name: x' 'epochs: 1' 'epochs: 9')"
row 2 "s.yaml:2: continual.method: duplicate key (first given on line 1)" -- train --scenario "$(sc 'continual: {method: er,' '  method: naive}')"
row 2 "a key must be a plain scalar" -- train --scenario "$(sc '[a, b]: 1')"
row 2 "more than 100000 YAML nodes" -- train --scenario "$(sc 'a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]' 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]' \
  'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]' 'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]' 'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]')"
row 2 "seed: '-1' is not a valid integer" -- train --scenario "$tiny" --set seed=-1

# ------------------------------------------ empty data, impossible task splits
row 2 "continual.classes_per_task = 20 is more than the 4 classes of synthetic" -- train --scenario "$tiny" --set continual.classes_per_task=20
printf '1,2,0\n3,4,5\n' > "$work/gap.csv"
row 2 "has no training samples in csv" -- train --scenario "$csv" --set "data.path=$work/gap.csv" --set "data.test_path=$work/gap.csv"
printf 'a,b,label\n' > "$work/empty.csv"
row 1 "empty.csv: no data rows" -- train --scenario "$csv" --set "data.path=$work/empty.csv"
row 2 "has no test samples in csv" -- train --scenario "$csv" --set data.limit_test=1

# ---------------------------------------------------------- NPU config keys
grep -v '^clock_mhz:' sim/configs/edge-npu.yaml > "$work/no-clock.yaml"
row 2 "no-clock.yaml: clock_mhz: missing; this field has no default" -- estimate --scenario "$tiny" --npu "$work/no-clock.yaml"
grep -v 'size_bytes: 524288' sim/configs/edge-npu.yaml > "$work/no-sram.yaml"
row 2 "sram.size_bytes: missing" -- estimate --scenario "$tiny" --npu "$work/no-sram.yaml"
grep -v 'quantum_cycles:\|^simulation:' sim/configs/edge-npu.yaml > "$work/no-quantum.yaml"
row 0 "simulation.quantum_cycles not given, documented default 100000" -- estimate --scenario "$tiny" --npu "$work/no-quantum.yaml" --steps 1 --out "$work/est"
grep -q '"simulation.quantum_cycles": "100000"' "$work/est/estimate.json" 2>/dev/null ||
  { failures=$((failures + 1)); echo "FAIL: estimate.json does not record the default taken"; }
{ cat sim/configs/edge-npu.yaml; echo 'clock_mhz: 800'; } > "$work/twice.yaml"
row 2 "twice.yaml:$(wc -l < "$work/twice.yaml"): clock_mhz: duplicate key (first given on line $(grep -n '^clock_mhz' sim/configs/edge-npu.yaml | cut -d: -f1))" -- \
  estimate --scenario "$tiny" --npu "$work/twice.yaml"

# ---------------------------------------------------------- test-vector sets
"$hdqsim" vectors --out "$work/v" --count 2 --seed 5 >/dev/null
set_copy() { rm -rf "$work/w"; cp -r "$work/v" "$work/w"; }
set_copy
row 0 "checked 6 cases" -- vectors --check "$work/w"
set_copy; rm "$work/w/gemm_0001/case.json"
row 1 "gemm_0001/case.json: missing (manifest.json lists it)" -- vectors --check "$work/w"
set_copy; head -n 3 "$work/w/quantize_0000/x.hex" > "$work/t" && mv "$work/t" "$work/w/quantize_0000/x.hex"
head -n 3 "$work/w/quantize_0000/q.hex" > "$work/t" && mv "$work/t" "$work/w/quantize_0000/q.hex"
row 1 "quantize_0000/x.hex: 3 values, but case.json's count promises" -- vectors --check "$work/w"
row 1 "manifest.json lists" -- vectors --check "$work/w"
set_copy; sed -i '2s/^/0/' "$work/w/hadamard_0000/x.hex"
row 1 "hadamard_0000/x.hex:2: '0" -- vectors --check "$work/w"
row 1 "has 9 hex digits, expected 8 for 32-bit values" -- vectors --check "$work/w"
set_copy; sed -i '1s/^./g/' "$work/w/gemm_0000/c.hex"
row 1 "gemm_0000/c.hex:1: 'g' is not a lowercase hex digit" -- vectors --check "$work/w"
set_copy; head -c 20 "$work/w/gemm_0000/case.json" > "$work/t" && mv "$work/t" "$work/w/gemm_0000/case.json"
row 1 "gemm_0000/case.json: not valid JSON: parse error at line" -- vectors --check "$work/w"
set_copy; sed -i 's/"m": [0-9]*/"m": -3/' "$work/w/gemm_0000/case.json"
row 1 "gemm_0000/case.json: m: -3 is not an integer in 1..2147483647" -- vectors --check "$work/w"
set_copy; sed -i 's/"m": [0-9]*/"m": 100000/; s/"k": [0-9]*/"k": 100000/' "$work/w/gemm_0000/case.json"
row 1 "A (m x k): 100000 x 100000 = 10000000000 elements is more than the limit" -- vectors --check "$work/w"
set_copy; echo x > "$work/w/gemm_0000/notes.txt"
row 1 "gemm_0000/notes.txt: not listed in manifest.json" -- vectors --check "$work/w"
set_copy; rm -r "$work/w/hadamard_0001"
row 1 "hadamard_0001: missing (manifest.json lists this case)" -- vectors --check "$work/w"
set_copy; rm "$work/w/manifest.json"
row 1 "manifest.json: no such file" -- vectors --check "$work/w"
set_copy; mkfifo "$work/w/gemm_0000/stats.json.fifo"
row 1 "stats.json.fifo: not listed in manifest.json" -- vectors --check "$work/w"

echo "bad inputs: $rows rows, $failures failed"
[ "$failures" -eq 0 ]
