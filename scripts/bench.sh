#!/usr/bin/env bash
# 1. System verification against kubeadm's own validators (the peer), in one run, as whole
#    processes: the peer in `remote` mode (OS, kernel, cgroups) and
#    `node-conformance run --focus 'System Verification'` against /. Prints both medians, their
#    ratio, our peak RSS, and both tools' verdicts side by side.
# 2. The best-practice group (kubelet, PKI, static pods) on a kubeadm-like root with a full
#    PKI and ten add-on static pods: median wall time and peak RSS.
# 3. Where a Docker Engine answers: the amd64 image's size; the full default suite inside
#    `docker run --memory=64m --cpus=0.5` with the harness's peak RSS; and one runtime
#    conformance case done by the harness (create, start, wait, logs, remove) against
#    `docker run --rm` of the same image doing the same, in one run.
# 4. The fleet report over 5,000 nodes (scripts/bench_fleet.py).
# 5. Where root and ../shared/peers/kubernetes are: the kubelet group against a real kubelet the
#    harness starts, and the control plane's memory with 110 pods through it
#    (scripts/bench_kubelet.py); then 40 signal trials at random points of the kubelet and
#    Docker groups (scripts/bench_signals.py; BENCH_SIGNALS=0 skips them).
#
#   scripts/bench.sh [RUNS]        (default 100 runs each)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/static.env"
runs=${1:-100}
shared=${SHARED_DIR:-$here/../shared}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
command -v etcd >/dev/null || need+=(etcd-server)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "building node-conformance (release, static)..." >&2
target=$(rustc -vV | sed -n 's/^host: //p')
(cd "$here" && RUSTFLAGS="$STATIC_RUSTFLAGS" cargo build --quiet --release --locked --target "$target")
ours="$here/target/$target/release/node-conformance"
echo "building the peer (k8s.io/system-validators)..." >&2
peer=$("$shared/peers/system-validators/build.sh" "$work/peer" | tail -n 1)

ours_cmd="$ours run --rootfs / --result-dir $work/result --focus 'System Verification'"
peer_cmd="$peer remote"
hyperfine -N --style none --warmup 10 --runs "$runs" -i --export-json "$work/times.json" \
  -n peer "$peer_cmd" -n node-conformance "$ours_cmd" >/dev/null 2>&1

rss_max=0
for _ in $(seq 20); do
  rss=$(/usr/bin/time -f %M sh -c "$ours_cmd >/dev/null" 2>&1 | tail -n 1)
  [ "$rss" -gt "$rss_max" ] && rss_max=$rss
done

"$peer" remote >"$work/peer.txt" 2>/dev/null || true
eval "$ours_cmd" >/dev/null || true

python3 - "$work/times.json" "$work/peer.txt" "$work/result/results.json" "$rss_max" <<'PY'
import json, re, statistics, sys
times, peer_txt, ours_json, rss = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
res = {r["command"]: r for r in json.load(open(times))["results"]}
med = {k: statistics.median(v["times"]) * 1000 for k, v in res.items()}
print(f"runs: {len(res['peer']['times'])} each, as whole processes")
print(f"peer (system-validators remote) median: {med['peer']:.2f} ms")
print(f"node-conformance median:                {med['node-conformance']:.2f} ms")
ratio = med['node-conformance'] / med['peer']
print(f"ratio ours/peer: {ratio:.2f} (target <= 0.50)")
print(f"node-conformance peak RSS: {rss / 1024:.1f} MiB (target <= 15 MiB)")

# The peer colours each verdict: green good, yellow warn, red bad.
colour = {"32": "ok", "33": "warn", "31": "fail"}
peer = {}
for line in open(peer_txt, encoding="utf-8", errors="replace"):
    m = re.match(r"\x1b\[0;37m(\S+)\x1b\[0m: \x1b\[0;(\d+)m(.*)\x1b\[0m", line)
    if m:
        peer[m.group(1)] = (colour.get(m.group(2), "?"), m.group(3))
ours = {}
for t in json.load(open(ours_json))["tests"]:
    for c in t["checks"]:
        if c["status"] != "info":
            ours[c["item"]] = (c["status"], c["detail"])
both = [k for k in peer if k in ours]
agree = sum(peer[k][0] == ours[k][0] for k in both)
print()
print(f"{'item':40} {'peer':6} {'ours':6}")
for k in both:
    mark = "" if peer[k][0] == ours[k][0] else "   <-- differs"
    print(f"{k:40} {peer[k][0]:6} {ours[k][0]:6}{mark}")
only_peer = sorted(set(peer) - set(ours))
if only_peer:
    print("checked by the peer only:", ", ".join(only_peer))
print(f"verdicts: {len(both)} compared, {agree} agree, {len(both) - agree} differ")
PY

# The best-practice group (kubelet, PKI, static pods) on a kubeadm-like root: the fixture, a
# full PKI made with rcgen, and ten add-on static pods beside the fixture's five.
(cd "$here" && cargo run --quiet --locked --example kubeadm_root -- "$work/kubeadm-root" >/dev/null)
bp_cmd="$ours run --rootfs $work/kubeadm-root --result-dir $work/bp --focus NodeBestPractice"
hyperfine -N --style none --warmup 5 --runs "$runs" -i --export-json "$work/bp.json" -n best-practices "$bp_cmd" >/dev/null 2>&1
bp_rss=0
for _ in $(seq 20); do
  rss=$(/usr/bin/time -f %M sh -c "$bp_cmd >/dev/null" 2>&1 | tail -n 1)
  [ "$rss" -gt "$bp_rss" ] && bp_rss=$rss
done
eval "$bp_cmd" >/dev/null || true
python3 - "$work/bp.json" "$bp_rss" "$work/bp/results.json" <<'PYBP'
import json, statistics, sys
med = statistics.median(json.load(open(sys.argv[1]))["results"][0]["times"]) * 1000
c = json.load(open(sys.argv[3]))["counts"]
print()
print(f"best-practice group on the kubeadm-like root (full PKI, 15 static pods): median {med:.2f} ms "
      f"(target <= 10 ms), peak RSS {int(sys.argv[2]) / 1024:.1f} MiB (target <= 10 MiB); "
      f"{c['passed']} passed, {c['failed']} failed")
PYBP

# Upstream's Pod Security fixtures through the library, in a release build: every one must
# agree, and evaluating all of them must take under 0.5 s.
if [ -d "$here/../shared/peers/pod-security-admission/testdata" ]; then
  echo
  (cd "$here" && cargo test --quiet --release --locked --test pod_security_fixtures -- --nocapture 2>&1) \
    | sed -n 's/^Pod Security fixtures: \(.*\)$/Pod Security fixtures (release build): \1 (target <= 500 ms)/p'
fi

# The local control plane against etcd alone: start to ready, 1,000 creates seen by a watcher,
# memory with 5,000 pods.
echo
python3 "$here/scripts/bench_controlplane.py" "$ours" "$(command -v etcd)" 10

# The kubelet group against the kubelet double, one test at a time: the run's wall time less
# the time its tests spent waiting on the (double) kubelet is the harness's own overhead.
(cd "$here" && cargo build --quiet --locked --example kubelet-double)
double="$here/target/$target/debug/examples/kubelet-double"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
node_root="$work/double-root"; manifests="$node_root/etc/kubernetes/manifests"
mkdir -p "$node_root/etc/kubernetes" "$node_root/var/lib/kubelet" "$manifests"
echo bench-node >"$node_root/etc/hostname"
printf 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncontentType: application/json\nstaticPodPath: /etc/kubernetes/manifests\n' \
  >"$node_root/var/lib/kubelet/config.yaml"
# As a user attaches a kubelet: the credentials kubelet-config makes (root only), the control
# plane over TLS; as another user, plain HTTP.
if [ "$(id -u)" = 0 ]; then
  "$ours" kubelet-config --rootfs "$node_root" --api-server-port "$port" >/dev/null
  cp "$node_root/var/lib/node-conformance/attach/kubelet.kubeconfig" "$node_root/etc/kubernetes/kubelet.conf"
  to_api=(--kubeconfig "$node_root/var/lib/node-conformance/attach/kubelet.kubeconfig"); insecure=()
else
  "$ours" kubelet-config --insecure-http --api-server-port "$port" | sed '/^---/,$d' >"$node_root/etc/kubernetes/kubelet.conf"
  to_api=(--server "http://127.0.0.1:$port"); insecure=(--insecure-http)
fi
"$double" "${to_api[@]}" --node-name bench-node --pod-manifest-path "$manifests" \
  --workload-binary "$ours" --sync-ms 50 --heartbeat-ms 500 2>"$work/double.log" &
double_pid=$!
begin=$(date +%s%N)
"$ours" run --rootfs "$node_root" --result-dir "$work/kubelet" --pod-manifest-path /etc/kubernetes/manifests \
  "${insecure[@]}" --api-server-port "$port" --pod-image node-conformance-workload:bench --parallelism 1 \
  --focus '\[sig-node\] (Node|MirrorPod|Pod Lifecycle|Container Runtime blackbox test) ' >"$work/kubelet.log" 2>&1 || true
end=$(date +%s%N)
kill "$double_pid"; wait "$double_pid" 2>/dev/null || true
python3 - "$work/kubelet/results.json" "$begin" "$end" <<'PYK'
import json, sys
r = json.load(open(sys.argv[1]))
wall = (int(sys.argv[3]) - int(sys.argv[2])) / 1e9
tests = [t for t in r["tests"] if t["selected"]]
waited = sum(t.get("waited", 0) for t in tests)
c = r["counts"]
print(f"kubelet group against the kubelet double, one test at a time: {len(tests)} tests, "
      f"{c['passed']} passed, {c['failed']} failed; wall {wall:.2f}s, waiting on the kubelet "
      f"{waited:.2f}s, harness overhead {(wall - waited) * 1000:.0f} ms (target < 100 ms)")
PYK

# A node root of hostile files (over-cap sparse files, a gzip bomb, FIFOs, devices, YAML bombs,
# a static pod directory of the largest manifests the caps allow): the run must end, and its
# peak RSS stay under 64 MB.
echo
python3 "$here/scripts/bench_hostile.py" "$ours" "$work" || true

# The fleet report over 5,000 nodes' results, made from genuine runs on the fixture roots and
# varied: wall time, peak RSS, the page's size.
echo
python3 "$here/scripts/bench_fleet.py" "$ours" "$work" 5000 || true

# The kubelet group and the control plane against a real kubelet (1.20.2 from Debian's source,
# cached; on a containerd of its own), where this machine can give it one (root, the peers).
if [ "$(id -u)" = 0 ] && [ -f "$shared/peers/kubernetes/node-env.sh" ]; then
  echo
  kdir=$(bash "$shared/peers/kubernetes/build.sh")
  endpoint=$(bash "$shared/peers/kubernetes/node-env.sh" start "$work/node-env" | tail -n 1)
  python3 "$here/scripts/bench_kubelet.py" "$ours" "$kdir/kubelet" "$endpoint" \
    k8s.gcr.io/pause:3.2 "$work" 110 || true
  # Signals at random points of the Docker and kubelet groups (about 25 minutes; BENCH_SIGNALS=0
  # skips them): valid results after SIGTERM and SIGINT, nothing left after the next run.
  if [ "${BENCH_SIGNALS:-1}" != 0 ]; then
    echo
    python3 "$here/scripts/bench_signals.py" "$ours" "$work" "$kdir/kubelet" "$endpoint" \
      "$work/node-env/containerd.sock" || true
  fi
  bash "$shared/peers/kubernetes/node-env.sh" stop "$work/node-env"
else
  echo
  echo "no real kubelet here (needs root and ../shared/peers/kubernetes): its benchmark skipped"
fi

# With BENCH_FUZZ=1: every fuzz target for 10 minutes (over an hour in all), its runs and
# whether it crashed. Before the Docker part, which ends the script where Docker is absent.
if [ "${BENCH_FUZZ:-}" = 1 ]; then
  bash "$here/scripts/fuzz.sh" 600 || echo "fuzzing: a target crashed (above)"
fi

if ! docker info >/dev/null 2>&1; then
  echo
  echo "no Docker Engine answers: image and runtime benchmarks skipped"
  exit 0
fi

echo
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/Cargo.toml" | head -n 1)
image="node-conformance-amd64:$version"
"$here/scripts/build-images.sh" amd64 >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$image")
python3 -c "print(f'image {\"$image\"}: {$size / 1e6:.1f} MB (target <= 20 MB)')"

# The machine may refuse --privileged ("unable to apply caps"); then the closest it allows.
caps=(--privileged)
probe=$(docker run --rm --privileged --entrypoint /node-conformance "$image" version 2>&1 || true)
if grep -q "unable to apply caps" <<<"$probe"; then
  caps=(--cap-add=ALL --cap-drop=SYS_RESOURCE --security-opt seccomp=unconfined
        --security-opt apparmor=unconfined --pid=host)
fi
mkdir -p "$work/contained"
status=0
docker run --rm "${caps[@]}" --net=host --memory=64m --cpus=0.5 \
  -v /:/rootfs:ro -v "$work/contained:/var/result" "$image" >"$work/contained.log" 2>&1 || status=$?
python3 - "$work/contained/results.json" "$status" <<'PY2'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["counts"]
print(f"full default suite in docker run --memory=64m --cpus=0.5: exit {sys.argv[2]}, "
      f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped in {r['duration']:.2f}s")
print(f"harness peak RSS there: {r['peak_rss_kib'] / 1024:.1f} MiB (target <= 30 MiB)")
PY2

# One runtime case, ours against the docker CLI, with the same image and the same work.
workload="node-conformance-workload-amd64:$version"
cases=${CASES:-20}
: >"$work/ours.txt"
for _ in $(seq "$cases"); do
  # The image is loaded inside the first container test; the second one is timed.
  "$ours" run --rootfs / --result-dir "$work/case" --parallelism 1 --workload-binary "$ours" \
    --focus 'Container Runtime Docker (stdout and stderr|environment variables)' >/dev/null || true
  python3 -c "
import json
for t in json.load(open('$work/case/results.json'))['tests']:
    if 'environment variables arrive' in t['name']: print(t['duration'])" >>"$work/ours.txt"
done
hyperfine -N --style none --warmup 2 --runs "$cases" -i --export-json "$work/cli.json" \
  -n docker-cli "docker run --rm --network none -e NC_PLAIN=1 -e NC_SPACES=a $workload --print-env NC_PLAIN --print-env NC_SPACES" >/dev/null 2>&1
python3 - "$work/ours.txt" "$work/cli.json" <<'PY3'
import json, statistics, sys
ours = statistics.median(float(x) for x in open(sys.argv[1]) if x.strip()) * 1000
cli = statistics.median(json.load(open(sys.argv[2]))["results"][0]["times"]) * 1000
print(f"one runtime case (create, start, wait, logs, remove): harness median {ours:.0f} ms, "
      f"docker run --rm median {cli:.0f} ms, ratio {ours / cli:.2f} (target <= 1.00)")
PY3
