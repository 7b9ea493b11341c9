#!/usr/bin/env python3
"""The kubelet group and the control plane against a real kubelet, as bench.sh prints them.

  bench_kubelet.py OURS KUBELET ENDPOINT PAUSE_IMAGE WORK [PODS]

1. `OURS run --kubelet-binary KUBELET` for the kubelet group (78 tests, run side by side; 11 skip on kubelet 1.20 in the pause image):
   wall time, time waited on the kubelet (the longest test's, and summed over the tests), and
   the harness's own overhead: its CPU seconds (results.json `cpu_seconds`, which do not
   count the kubelet) against the wall time. Targets: under 300 s wall, overhead under 2%.
2. `OURS control-plane --kubelet-binary KUBELET` with PODS (110, the seed's per-node limit)
   pause pods created through it and run by the kubelet: the control plane's resident memory
   once all run, and its peak. Target: under 40 MB.
"""
import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

ours, kubelet, endpoint, pause, work = sys.argv[1:6]
pods = int(sys.argv[6]) if len(sys.argv) > 6 else 110
# The default skip and [Slow]: the back-off cap test waits about 30 minutes by design.
SKIP = r"\[Flaky\]|\[Serial\]|\[Disruptive\]|\[Slow\]"
GROUP = r"\[sig-node\] (Node|MirrorPod|Pod Lifecycle|Pods|PodOSRejection|Hostname of Pod|ContainerLogPath|Deleted pods handling|Pod SIGKILL|Containers|Container Runtime blackbox test|Downward API|ConfigMap|Secrets|Variable Expansion|Kubelet when|Kubelet with|KubeletManagedEtcHosts|\[NodeConformance\] Containers Lifecycle) "


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# 1. The kubelet group.
result = os.path.join(work, "kubelet-result")
begin = time.monotonic()
run = subprocess.run([ours, "run", "--rootfs", "/", "--result-dir", result, "--focus", GROUP, "--skip", SKIP,
                      "--kubelet-binary", kubelet, "--container-runtime-endpoint", endpoint,
                      "--api-server-port", str(free_port())],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
wall = time.monotonic() - begin
try:
    r = json.load(open(os.path.join(result, "results.json")))
except (OSError, ValueError) as e:
    print(f"kubelet group against a real kubelet: no results ({e}); the run said:\n{run.stdout[-3000:]}")
    sys.exit(1)
tests = [t for t in r["tests"] if t["selected"]]
c = r["counts"]
waited = [t.get("waited", 0) or 0 for t in tests]
version = next((ch["detail"] for t in tests for ch in t.get("checks", [])
                if ch["item"] == "kubelet version"), "?")
cpu = r["cpu_seconds"]
print(f"kubelet group against kubelet {version} (started by the harness), {len(tests)} tests side "
      f"by side: {c['passed']} passed, {c['failed']} failed, "
      f"{sum(t['verdict'] == 'skipped' for t in tests)} skipped "
      f"({sum((t.get('message') or '').startswith('needs kubelet v') for t in tests)} newer than "
      f"the kubelet); "
      f"wall {wall:.1f} s (target < 300 s); "
      f"waiting on the kubelet {max(waited):.1f} s in the longest test, {sum(waited):.1f} s summed; "
      f"harness CPU {cpu:.2f} s = {100 * cpu / wall:.2f}% of wall (target < 2%)")
for t in sorted(tests, key=lambda t: -t["duration"])[:3]:
    print(f"  {t['duration']:6.1f} s  {t['name']}")

# 2. The control plane with PODS pods through a real kubelet.
port = free_port()
api = f"https://127.0.0.1:{port}"
cp = subprocess.Popen([ours, "control-plane", "--api-server-port", str(port),
                       "--kubelet-binary", kubelet, "--container-runtime-endpoint", endpoint],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# The admin kubeconfig its first line names: the token and CA of the run (TLS, authenticated).
auth = {}


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(api + path, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {auth['token']}"})
    with urllib.request.urlopen(req, timeout=30, context=auth["ctx"]) as resp:
        return json.load(resp)


def status(field):
    for line in open(f"/proc/{cp.pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


try:
    first = cp.stdout.readline()
    if "admin kubeconfig: " not in first:
        raise RuntimeError(f"control-plane did not start: {first}{cp.stdout.read()}")
    with open(first.split("admin kubeconfig: ", 1)[1].strip()) as f:
        k = json.load(f)
    auth["token"] = k["users"][0]["user"]["token"]
    auth["ctx"] = ssl.create_default_context(cadata=base64.b64decode(
        k["clusters"][0]["cluster"]["certificate-authority-data"]).decode())
    deadline = time.monotonic() + 120
    node = None
    while node is None and time.monotonic() < deadline:
        items = call("GET", "/api/v1/nodes")["items"]
        ready = [n for n in items for cond in n["status"].get("conditions", [])
                 if cond["type"] == "Ready" and cond["status"] == "True"]
        node = ready[0]["metadata"]["name"] if ready else None
        time.sleep(1)
    if node is None:
        raise RuntimeError("the node did not turn Ready within 120 s")
    call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": "bench"}})
    begin = time.monotonic()
    for i in range(pods):
        call("POST", "/api/v1/namespaces/bench/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": pause, "imagePullPolicy": "Never"}]}})
    running = 0
    deadline = time.monotonic() + 900
    while running < pods and time.monotonic() < deadline:
        items = call("GET", "/api/v1/namespaces/bench/pods")["items"]
        running = sum(1 for p in items if p.get("status", {}).get("phase") == "Running")
        time.sleep(2)
    took = time.monotonic() - begin
    rss, hwm = status("VmRSS"), status("VmHWM")
    print(f"control plane with {running} of {pods} pods Running through the kubelet "
          f"(after {took:.0f} s): {rss:.1f} MiB resident, {hwm:.1f} MiB peak "
          f"(includes the harness around it; target < 40 MB)")
finally:
    cp.send_signal(signal.SIGTERM)
    try:
        out, _ = cp.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        cp.kill()
        out, _ = cp.communicate()
    removed = sum(1 for line in out.splitlines() if line.startswith("removed pod sandbox"))
    problems = [line for line in out.splitlines() if "could not" in line]
    print(f"  stopped: {removed} pod sandboxes removed" + (f"; {problems}" if problems else ""))
