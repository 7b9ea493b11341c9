#!/usr/bin/env bash
# Builds a real kubeadm (Kubernetes 1.20.2, the newest Kubernetes source in Debian 12's package
# archive: source package "kubernetes") the same way ../shared/peers/kubernetes/build.sh builds
# the kubelet and the control plane, so that the PKI tests are checked on certificates, kubeconfigs
# and manifests kubeadm itself writes. Prints the directory holding the binary. Cached outside the
# checkout: a second call returns at once.
#
#   dir=$(scripts/peer-kubeadm.sh)   # then $dir/kubeadm
#
# Needs root (apt-get) and network access to Debian's archive. Takes about 5 minutes on 2 cores
# the first time. Go's build cache is kept in $GOCACHE (default
# /var/cache/node-conformance-peers/go-build) and the source is unpacked at the same path every
# time (Go's cache keys name a package's directory), so a rebuild compiles only what changed.
# OUT overrides the directory the binary is cached in.
set -euo pipefail
VERSION=1.20.2
PEERS=/var/cache/node-conformance-peers
OUT=${OUT:-$PEERS/kubeadm-$VERSION}
GOCACHE=${GOCACHE:-$PEERS/go-build}
if [ -x "$OUT/kubeadm" ]; then echo "$OUT"; exit 0; fi
mkdir -p "$PEERS"
# One build at a time: they share the source path. The one that waited finds the binary.
exec 9>"$PEERS/kubeadm-$VERSION.lock"
flock 9
if [ -x "$OUT/kubeadm" ]; then echo "$OUT"; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
work=$PEERS/kubeadm-$VERSION.build
log=$(mktemp)
trap 'rm -rf "$log" "$work"' EXIT
{
  # Source packages need a deb-src entry for the same archive the machine already uses.
  if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes'; then
    cat > /etc/apt/sources.list.d/node-conformance-src.sources <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -qq
  fi
  # golang-go is Go 1.19; reflect2 1.0.1 (vendored by Kubernetes 1.20) faults on Go >= 1.18,
  # so Debian's reflect2 1.0.2 replaces it.
  apt-get install -y -qq golang-go rsync golang-github-modern-go-reflect2-dev
  rm -rf "$work"
  mkdir -p "$work"
  cd "$work"
  apt-get source --download-only "kubernetes=1.20.5+really$VERSION-1.1+deb12u1" || apt-get source --download-only kubernetes
  tar xzf kubernetes_*.orig.tar.gz
  cd "kubernetes-$VERSION"
  rm -rf vendor/github.com/modern-go/reflect2
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2
  rm -f vendor/github.com/modern-go/reflect2/go.mod
  mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes
  # hack/lib/golang.sh sets GOCACHE to _output/local/go/cache, inside this throw-away tree:
  # pointed at a cache that outlives it, a rebuild compiles only what changed.
  mkdir -p "$GOCACHE" _output/local/go
  ln -sfn "$GOCACHE" _output/local/go/cache
  GOPATH=$PWD/.go CGO_ENABLED=0 HOME=$work make WHAT=cmd/kubeadm
  mkdir -p "$OUT"
  # Copied under a temporary name and renamed, so a build stopped half-way never leaves a
  # truncated binary that the cache check above would take for a finished one.
  cp _output/bin/kubeadm "$OUT/.kubeadm.tmp"
  mv "$OUT/.kubeadm.tmp" "$OUT/kubeadm"
} >"$log" 2>&1 || { cat "$log" >&2; echo "building kubeadm $VERSION failed" >&2; exit 1; }
echo "$OUT"
