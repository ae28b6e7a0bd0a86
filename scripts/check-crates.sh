#!/usr/bin/env bash
# The crate family as a user gets it (CI runs this from .ci/run):
#  1. the core (`dotcompute` with default features off) pulls in none of the
#     CUDA, NVML, compiler, device, wgpu or workload crates;
#  2. the feature combinations that matter build and pass their tests: core
#     only and default here; all features are what scripts/test.sh tests
#     (the workspace build enables `full` through the dotcompute command);
#  3. the core and the default feature set build for macOS, FreeBSD and
#     Windows, and every feature for Windows (`cargo check --target`;
#     nothing runs there);
#  4. a fresh crate that depends on dotcompute with `default-features =
#     false` builds and runs the README's Rust examples;
#  5. every publishable crate passes `cargo publish --dry-run` (packaged and
#     built from the package, in dependency order).
# Usage: bash scripts/check-crates.sh [--quick]   (--quick: steps 1, 3, 4)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
QUICK=false
[ "${1:-}" = --quick ] && QUICK=true

echo "== 1. the core's dependencies (cargo tree -p dotcompute --no-default-features)"
tree="$(cargo tree -p dotcompute --no-default-features -e normal,build --prefix none --locked)"
for crate in cudarc nvml-wrapper libloading rayon sha2 lru hex wgpu naga memmap2 dotcompute-workloads; do
  if grep -q "^$crate v" <<<"$tree"; then
    echo "check-crates: the core pulls in $crate:" >&2
    cargo tree -p dotcompute --no-default-features -e normal,build -i "$crate" >&2 || true
    exit 1
  fi
done
count="$(sed 's/ (\*)//' <<<"$tree" | sort -u | wc -l)"
echo "the core: $((count - 1)) crates besides dotcompute itself"

if ! $QUICK; then
  echo "== 2. feature combinations: core only, then default"
  cargo test -p dotcompute --no-default-features --locked
  cargo test -p dotcompute --locked
fi

echo "== 3. other platforms (cargo check --target)"
targets=(x86_64-apple-darwin x86_64-unknown-freebsd x86_64-pc-windows-gnu)
if command -v rustup >/dev/null; then
  rustup target add "${targets[@]}" >/dev/null
fi
for t in "${targets[@]}"; do
  # Every feature on the platform least like Linux; the core and the
  # default set on each (CI time).
  sets=("--no-default-features" "")
  [ "$t" = x86_64-pc-windows-gnu ] && sets+=("--features full")
  for features in "${sets[@]}"; do
    echo "-- $t ${features:-(default features)}"
    # shellcheck disable=SC2086
    cargo check -q -p dotcompute $features --target "$t" --locked
  done
done

echo "== 4. a fresh crate with default-features = false runs the README's examples"
fresh="$ROOT/target/fresh-crate"
rm -rf "$fresh" && mkdir -p "$fresh/src" "$fresh/examples"
cat >"$fresh/Cargo.toml" <<EOF
[package]
name = "fresh-user"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
dotcompute = { path = "$ROOT/crates/dotcompute", default-features = false }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }

[workspace]
EOF
# The README's ```rust blocks (not the `ignore`d ones), in order: the first
# is the quick start (src/main.rs), each further one an example.
python3 - "$ROOT/README.md" "$fresh" <<'PY'
import re, sys
readme, out = sys.argv[1], sys.argv[2]
blocks = re.findall(r"^```rust\n(.*?)^```", open(readme).read(), re.S | re.M)
assert blocks, "no ```rust block in the README"
for i, code in enumerate(blocks):
    # Lines starting with "# " are hidden doc-test lines; they compile too.
    code = "".join(l[2:] if l.startswith("# ") else ("" if l == "#\n" else l)
                   for l in code.splitlines(keepends=True))
    path = f"{out}/src/main.rs" if i == 0 else f"{out}/examples/readme_{i}.rs"
    open(path, "w").write(code)
    print("README block", i + 1, "->", path)
PY
cp Cargo.lock "$fresh/Cargo.lock"
(
  cd "$fresh"
  export CARGO_TARGET_DIR="$ROOT/target/fresh-crate-target"
  out="$(cargo run -q)"
  echo "$out"
  grep -q "Result: 6" <<<"$out" || { echo "check-crates: the quick start did not print 'Result: 6'" >&2; exit 1; }
  for ex in examples/*.rs; do
    name="$(basename "$ex" .rs)"
    cargo run -q --example "$name"
  done
  tree="$(cargo tree -e normal --prefix none)"
  for crate in cudarc rayon wgpu; do
    if grep -q "^$crate v" <<<"$tree"; then echo "check-crates: the fresh crate pulls in $crate" >&2; exit 1; fi
  done
)

if ! $QUICK; then
  echo "== 5. cargo publish --dry-run (every publishable crate, in dependency order)"
  # Cargo unpacks the packages it just made into its registry cache and
  # keeps an unpacked copy from an earlier run at the same path: remove
  # those, so the packages built are this checkout's.
  version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
  rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/dotcompute-"$version" \
    "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/dotcompute-*-"$version"
  cargo publish --dry-run --workspace --locked --allow-dirty --exclude dotcompute-python
fi
echo "check-crates: all good"
