#!/usr/bin/env bash
# Builds the image of another architecture (default arm64) and runs its system verification on
# this machine under emulation (Debian's qemu-user-static through binfmt_misc), as a node of
# that architecture would run it: `docker run --platform linux/ARCH -v /:/rootfs:ro`. Checks
# that the JUnit file it writes holds the System Verification tests, none of them errored, and
# that results.json names ARCH as the node's architecture (what the harness, emulated, saw).
#
#   scripts/check-image-emulated.sh [ARCH]      exit 0: checked; 1: failed; 3: skipped
#
# Skipped (exit 3, saying what is missing) where the Rust target for ARCH is not installed;
# installs the cross linker and qemu-user-static from Debian's packages when missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:-arm64}
case $arch in
  arm64) target=aarch64-unknown-linux-gnu; qemu=qemu-aarch64; packages=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
  arm) target=armv7-unknown-linux-gnueabihf; qemu=qemu-arm; packages=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross) ;;
  *) echo "check-image-emulated.sh: unknown architecture $arch (arm64, arm)" >&2; exit 2 ;;
esac
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$target/lib" ]; then
  echo "SKIPPED: the $arch image under emulation: the Rust target $target is not installed (rustup target add $target)" >&2
  exit 3
fi
missing=()
for p in "${packages[@]}" qemu-user-static binfmt-support; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# binfmt_misc, where the machine has not mounted it, and the handler enabled with its
# interpreter held open (flag F), so a container's process finds it.
[ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable "$qemu" >/dev/null 2>&1 || true
if ! grep -q '^enabled' "/proc/sys/fs/binfmt_misc/$qemu" 2>/dev/null; then
  echo "SKIPPED: the $arch image under emulation: no binfmt_misc handler for $qemu on this machine" >&2
  exit 3
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/Cargo.toml" | head -n 1)
image="node-conformance-$arch:$version"
bash "$here/scripts/build-images.sh" "$arch" >/dev/null
result=$(mktemp -d)
trap 'rm -rf "$result"' EXIT
status=0
docker run --rm --platform "linux/$arch" -v /:/rootfs:ro -v "$result:/var/result" \
  -e FOCUS='System Verification' "$image" >"$result/console.txt" 2>&1 || status=$?
if [ "$status" -gt 1 ]; then
  echo "the $arch image exited $status under emulation:" >&2
  cat "$result/console.txt" >&2
  exit 1
fi
python3 - "$result" "$arch" <<'PY'
import json, sys, xml.etree.ElementTree as ET
result, arch = sys.argv[1], sys.argv[2]
suite = ET.parse(f"{result}/junit_01.xml").getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
cases = [c for c in suite.iter("testcase") if "System Verification" in c.get("name", "")
         and c.find("skipped") is None]
errors = [c.get("name") for c in cases if c.find("error") is not None]
node = json.load(open(f"{result}/results.json")).get("node", {})
failed = [c.get("name") for c in cases if c.find("failure") is not None]
print(f"the {arch} image under emulation: {len(cases)} System Verification tests ran "
      f"({len(failed)} failed on this machine, as natively), node architecture "
      f"{node.get('architecture')}")
if not cases or errors or node.get("architecture") != arch:
    sys.exit(f"not as expected: {len(cases)} tests, errors {errors}, architecture {node.get('architecture')}")
PY
docker rmi "$image" "node-conformance-workload-$arch:$version" >/dev/null 2>&1 || true
