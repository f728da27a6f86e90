#!/usr/bin/env bash
# Checks that p2pdoctor installs the two ways the README promises:
#   cargo install --path .    (the binary; man pages via `p2pdoctor man`)
#   a Debian package          (packaging/deb.sh: binary, man pages, completions)
# Run by .ci/run; needs cargo-deb and dpkg-deb. Nothing is installed on the
# machine: both go into temporary directories.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "packaging/check.sh: $*" >&2; exit 1; }

# cargo install, sharing target/ so it reuses the release build.
cargo install --quiet --locked --path . --root "$tmp/cargo" --target-dir target
"$tmp/cargo/bin/p2pdoctor" --version | grep -q '^p2pdoctor ' || fail "cargo install: --version"

bash packaging/deb.sh >/dev/null
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
deb=$(ls target/debian/p2pdoctor_"$version"-*_*.deb)
contents=$(dpkg-deb -c "$deb")
for path in usr/bin/p2pdoctor \
    usr/share/man/man1/p2pdoctor.1.gz usr/share/man/man1/p2pdoctor-check.1.gz \
    usr/share/bash-completion/completions/p2pdoctor \
    usr/share/zsh/vendor-completions/_p2pdoctor \
    usr/share/fish/vendor_completions.d/p2pdoctor.fish; do
    grep -q " ./$path\$" <<<"$contents" || fail "$deb lacks $path"
done
# One man page per command, as the binary lists them.
pages=$(grep -c '/man1/p2pdoctor.*\.1\.gz$' <<<"$contents")
commands=$("$tmp/cargo/bin/p2pdoctor" man --dir "$tmp/pages" && ls "$tmp/pages" | wc -l)
[ "$pages" -eq "$commands" ] || fail "$deb has $pages man pages, the binary writes $commands"

dpkg-deb -x "$deb" "$tmp/root"
"$tmp/root/usr/bin/p2pdoctor" --version | grep -q '^p2pdoctor ' || fail "the packaged binary does not run"
zcat "$tmp/root/usr/share/man/man1/p2pdoctor-check.1.gz" | grep -q '^\.TH p2pdoctor-check 1' \
    || fail "the packaged check page is not a man page"
bash -n "$tmp/root/usr/share/bash-completion/completions/p2pdoctor" || fail "bash completion does not parse"
dpkg-deb -f "$deb" Package Version Depends
echo "packaging/check.sh: cargo install and $deb both work"
