#!/usr/bin/env bash
# Builds the per-architecture images node-conformance-<arch>:<version> (the harness) and
# node-conformance-workload-<arch>:<version> (the test workload, images/workload), and on
# request a manifest list node-conformance:<version> in a registry.
#
#   scripts/build-images.sh [ARCH...]                  ARCH: amd64 arm64 arm (default: all)
#   scripts/build-images.sh --manifest REGISTRY [ARCH...]
#
# Each binary is built static (glibc, crt-static) with cargo. amd64 builds on this machine
# with nothing but cargo and docker; arm64 and arm need their Rust target and a cross linker,
# and are skipped, saying what is missing, when those are absent. A manifest list lives in a
# registry: --manifest pushes the per-arch images to REGISTRY and creates the list there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
. "$here/scripts/static.env"

registry=""
if [ "${1:-}" = "--manifest" ]; then
  registry=${2:?--manifest needs a registry, e.g. registry.example.com/node-conformance}
  shift 2
fi
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64 arm)

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
host=$(rustc -vV | sed -n 's/^host: //p')

target_of() {
  case $1 in
    amd64) echo x86_64-unknown-linux-gnu ;;
    arm64) echo aarch64-unknown-linux-gnu ;;
    arm) echo armv7-unknown-linux-gnueabihf ;;
    *) return 1 ;;
  esac
}
linker_of() {
  case $1 in
    aarch64-unknown-linux-gnu) echo aarch64-linux-gnu-gcc ;;
    armv7-unknown-linux-gnueabihf) echo arm-linux-gnueabihf-gcc ;;
  esac
}
package_of() {
  case $1 in
    aarch64-linux-gnu-gcc) echo gcc-aarch64-linux-gnu ;;
    arm-linux-gnueabihf-gcc) echo gcc-arm-linux-gnueabihf ;;
  esac
}

# The images hold a static binary and nothing else, so they are built for this machine's platform
# and, for another architecture, re-labelled (scripts/image-platform.py): Docker's legacy
# builder cannot build `FROM scratch` images for another platform (it stamps the steps with its
# own and then refuses the COPY), and its cache hands one platform's build another's image.
engine_arch=$(docker version -f '{{.Server.Arch}}' 2>/dev/null || echo amd64)
build_for() { # ARCH DOCKERFILE TAG CONTEXT
  local arch=$1 file=$2 tag=$3 context=$4
  if [ "$arch" = "$engine_arch" ]; then
    docker build --quiet -f "$file" --build-arg VERSION="$version" \
      --build-arg REVISION="$revision" -t "$tag" "$context" >/dev/null
    return
  fi
  local staged="node-conformance-staging-$$:$arch" variant=()
  [ "$arch" = arm ] && variant=(v7)
  docker build --quiet -f "$file" --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" -t "$staged" "$context" >/dev/null
  docker save "$staged" | python3 "$here/scripts/image-platform.py" "$arch" "${variant[@]}" "$tag" \
    | docker load >/dev/null
  docker rmi "$staged" >/dev/null
}

built=()
for arch in "${arches[@]}"; do
  target=$(target_of "$arch") || { echo "unknown architecture $arch (amd64, arm64, arm)" >&2; exit 2; }
  env_linker=()
  if [ "$target" != "$host" ]; then
    missing=()
    if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$target/lib" ]; then
      missing+=("the Rust target $target (rustup target add $target)")
    fi
    linker=$(linker_of "$target")
    if ! command -v "$linker" >/dev/null; then
      missing+=("the linker $linker (apt-get install $(package_of "$linker"))")
    fi
    if [ ${#missing[@]} -gt 0 ]; then
      printf '%s: skipped: missing %s\n' "$arch" "$(IFS=';'; echo "${missing[*]}" | sed 's/;/ and /g')" >&2
      continue
    fi
    var=CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_LINKER
    env_linker=("$var=$linker")
  fi
  echo "$arch: building the static binary for $target" >&2
  env "${env_linker[@]}" RUSTFLAGS="$STATIC_RUSTFLAGS" \
    NODE_CONFORMANCE_REVISION="$revision" \
    cargo build --quiet --release --locked --target "$target"
  context=$(mktemp -d)
  cp "target/$target/release/node-conformance" "$context/node-conformance"
  image="node-conformance-$arch:$version"
  workload="node-conformance-workload-$arch:$version"
  # A rebuild takes the tags from the previous images; those are removed, not left dangling.
  previous=$(docker image inspect -f '{{.Id}}' "$image" "$workload" 2>/dev/null || true)
  echo "$arch: building $image" >&2
  build_for "$arch" "Dockerfile.$arch" "$image" "$context"
  build_for "$arch" images/workload/Dockerfile "$workload" "$context"
  rm -rf "$context"
  current=$(docker image inspect -f '{{.Id}}' "$image" "$workload")
  for id in $previous; do
    # Still in use by a container, or still current: docker keeps it.
    grep -qx "$id" <<<"$current" || docker rmi "$id" >/dev/null 2>&1 || true
  done
  echo "$image"
  echo "$workload"
  built+=("$arch")
done

if [ -n "$registry" ]; then
  [ ${#built[@]} -gt 0 ] || { echo "no image was built; no manifest list to make" >&2; exit 1; }
  refs=()
  for arch in "${built[@]}"; do
    ref="$registry/node-conformance-$arch:$version"
    docker tag "node-conformance-$arch:$version" "$ref"
    docker push "$ref" >/dev/null
    refs+=("$ref")
  done
  list="$registry/node-conformance:$version"
  docker manifest create --amend "$list" "${refs[@]}" >/dev/null
  for arch in "${built[@]}"; do
    case $arch in arm) variant=(--variant v7) ;; *) variant=() ;; esac
    docker manifest annotate "$list" "$registry/node-conformance-$arch:$version" --os linux --arch "$arch" "${variant[@]}"
  done
  docker manifest push "$list" >/dev/null
  echo "$list"
fi
