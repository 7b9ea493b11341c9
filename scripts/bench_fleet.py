#!/usr/bin/env python3
"""The fleet report over 5,000 nodes.

  bench_fleet.py OURS WORK [NODES] [RUNS]

Makes genuine results by running OURS against the fixture roots (tests/fixtures), then a fleet
of NODES (default 5,000) result dirs from them: varied kernels, distributions, runtimes,
kubelet versions and architectures, failed tests with messages of their own (some naming the
node), durations spread. Then `OURS report` over the fleet RUNS times (default 3), as whole
processes: prints the median wall time (target < 1 s) with the CPU time (user and system) and
the machine's load average beside it, the peak RSS (target < 200 MB, from the
kernel's accounting of the process, wait4) and the size of fleet.html (target < 5 MB), with
fleet.xml's and fleet.json's.
"""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

ours, work = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fixtures = os.path.join(here, "tests", "fixtures")
base_dir = os.path.join(work, "fleet-base")
fleet_dir = os.path.join(work, "fleet")
out_dir = os.path.join(work, "fleet-report")
for d in (base_dir, fleet_dir, out_dir):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)

# The groups that read the node's files: no Docker Engine, kubelet or API server is touched.
focus = r"System Verification|Kubelet|PKI|Static|Zones|runtime endpoint"
bases = []
for name in ["healthy-v2", "old-kernel", "cgroup-v1", "missing-options", "kubeadm-node",
             "unlisted-kernel-rhel8", "no-config", "kubelet-rotation-unset"]:
    root = os.path.join(fixtures, name)
    if not os.path.isdir(root):
        continue
    result = os.path.join(base_dir, name)
    subprocess.run([ours, "run", "--rootfs", root, "--result-dir", result, "--focus", focus,
                    "--test-timeout", "30"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with open(os.path.join(result, "results.json")) as f:
            bases.append(json.load(f))
    except (OSError, ValueError) as e:
        print(f"bench_fleet: no results from {name}: {e}", file=sys.stderr)
if not bases:
    sys.exit("bench_fleet: no genuine results to make a fleet from")

rng = random.Random(42)
kernels = ["6.1.0-18-amd64", "6.1.0-31-amd64", "5.15.0-105-generic", "6.8.0-45-generic",
           "5.14.0-427.el9.x86_64", "4.18.0-553.el8_10.x86_64", "6.6.58-flatcar", "6.1.112-124.190.amzn2023"]
oses = ["Debian GNU/Linux 12 (bookworm)", "Ubuntu 22.04.4 LTS", "Ubuntu 24.04.1 LTS",
        "Red Hat Enterprise Linux 9.4 (Plow)", "Flatcar Container Linux by Kinvolk 3975.2.2", "Amazon Linux 2023"]
runtimes = [{"name": "containerd", "version": "1.7.24"}, {"name": "containerd", "version": "2.0.2"},
            {"name": "cri-o", "version": "1.30.4"}, {"name": "docker", "version": "27.5.1"}, None]
kubelets = ["v1.31.4", "v1.32.1", "v1.33.2", None]
archs = ["amd64"] * 14 + ["arm64"] * 5 + ["arm"]
reasons = [
    "IPv4 forwarding is off (net.ipv4.ip_forward = 0); set it to 1 in /etc/sysctl.d and run sysctl --system",
    "readOnlyPort is 10255 (readOnlyPort in /var/lib/kubelet/config.yaml); set it to 0 (CIS 4.2.4)",
    "swap is on: /swap.img (2097148 KiB); turn it off with swapoff -a, or set failSwapOn: false",
    "the kubelet's healthz at http://127.0.0.1:10248/healthz does not answer: connection refused",
    "cgroup v1 is missing required controllers: pids; found cpu, cpuacct, memory; enable them at boot",
    "certificate /etc/kubernetes/pki/apiserver.crt expires in 12 days (2026-12-12T00:00:00Z); renew it with kubeadm certs renew",
]

# Pretty-printed as the harness writes it.
def write(i, results):
    d = os.path.join(fleet_dir, f"node-{i:05d}")
    os.makedirs(d)
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")

for i in range(count):
    r = json.loads(json.dumps(bases[i % len(bases)]))
    host = f"ip-10-{i // 250}-{i % 250}-{rng.randrange(256)}.ec2.internal"
    r["hostname"] = host
    r["run_id"] = f"{rng.getrandbits(64):016x}"
    r["node"] = {
        "kernel_release": rng.choice(kernels),
        "os": rng.choice(oses),
        "container_runtime": rng.choice(runtimes),
        "kubelet_version": rng.choice(kubelets),
        "architecture": rng.choice(archs),
    }
    tests = r["tests"]
    ran = [t for t in tests if t["verdict"] != "skipped"]
    # Most nodes fail a few tests; one in ten fails many, some with messages naming the node.
    for t in rng.sample(ran, min(len(ran), rng.choice([0, 0, 1, 1, 2, 3, 10]))):
        t["verdict"] = "failed"
        why = rng.choice(reasons)
        if rng.random() < 0.3:
            why = f"on {host}: {why}"
        t["message"] = why
        t["checks"].append({"item": "node", "status": "fail", "detail": why})
    for t in ran:
        t["duration"] = round(t["duration"] * rng.uniform(0.5, 3.0) + rng.expovariate(200), 6)
    c = r["counts"]
    c["passed"] = sum(t["verdict"] == "passed" for t in tests)
    c["failed"] = sum(t["verdict"] == "failed" for t in tests)
    c["skipped"] = sum(t["verdict"] == "skipped" for t in tests)
    write(i, r)

sizes = [os.path.getsize(os.path.join(fleet_dir, d, "results.json")) for d in os.listdir(fleet_dir)]


def run_once():
    start = time.perf_counter()
    p = subprocess.Popen([ours, "report", "--output", out_dir, fleet_dir],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"bench_fleet: report exited {code}: {err}")
    return wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime  # KiB on Linux


# The first run warms the page cache with the inputs, as a second report would find them.
run_once()
results = [run_once() for _ in range(runs)]
walls = [w for w, _, _ in results]
cpus = [c for _, _, c in results]
rss = max(m for _, m, _ in results)
load = os.getloadavg()[0]
mb = lambda path: os.path.getsize(os.path.join(out_dir, path)) / 1e6
print(f"fleet report of {count:,} nodes ({len(bases)} genuine results varied; results.json "
      f"{statistics.median(sizes) / 1e3:.0f} kB median, {sum(sizes) / 1e6:.0f} MB in all), "
      f"{runs} runs: wall median {statistics.median(walls):.2f} s (target < 1 s; CPU time "
      f"{statistics.median(cpus):.2f} s on {os.cpu_count()} CPUs, load average {load:.1f}), "
      f"peak RSS {rss / 1024:.1f} MiB (target < 200 MB), fleet.html {mb('fleet.html'):.2f} MB "
      f"(target < 5 MB); fleet.xml {mb('fleet.xml'):.1f} MB, fleet.json {mb('fleet.json'):.1f} MB")
