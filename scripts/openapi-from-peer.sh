#!/usr/bin/env bash
# Rewrites src/controlplane/openapi/kube-apiserver-v1.20.2.json.gz from a real kube-apiserver
# 1.20.2: its /openapi/v2, cut to the paths the local control plane serves (the resources of
# src/controlplane/resources.rs) and the definitions they reach (schema::trim, the same code the
# check uses), gzipped. The data is upstream's: never edit it by hand; what later Kubernetes
# releases added goes in src/controlplane/openapi/overlay.json.
#
#   scripts/openapi-from-peer.sh            # starts a peer (../shared/peers), stops it after
#   NODE_CONFORMANCE_APISERVER="URL TOKEN" scripts/openapi-from-peer.sh   # uses a running one
#
# PEER_PORT picks the peer's port (it also takes the next two) when one is started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${NODE_CONFORMANCE_APISERVER:-}" ]; then
  peers=${PEERS:-$root/../shared/peers/kubernetes}
  dir=$(mktemp -d)
  trap '"$peers/apiserver.sh" stop "$dir"' EXIT
  NODE_CONFORMANCE_APISERVER=$("$peers/apiserver.sh" start "$dir" "${PEER_PORT:-26443}")
  export NODE_CONFORMANCE_APISERVER
fi
cd "$root"
NODE_CONFORMANCE_WRITE_OPENAPI=1 cargo test --test openapi committed_openapi_data_is_what_the_real_server_serves -- --nocapture
# The written file must now pass the check as it is.
cargo test --test openapi committed_openapi_data_is_what_the_real_server_serves
ls -l src/controlplane/openapi/kube-apiserver-v1.20.2.json.gz
