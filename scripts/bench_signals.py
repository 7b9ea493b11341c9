#!/usr/bin/env python3
"""Signals at random points, and what the next run leaves: the harness's clean-up under fire.

  bench_signals.py OURS WORK [KUBELET ENDPOINT CTR_ADDRESS]

40 trials: 20 SIGTERM, 10 SIGINT and 10 SIGKILL, shuffled, each sent at a random point of a
run of the Docker group (`Container Runtime`, where a Docker Engine answers) or, given a real
kubelet and a containerd of its own (KUBELET, its CRI ENDPOINT and the containerd's address
for `ctr`), of the kubelet group with `--kubelet-binary`; the two alternate. After a SIGTERM or
SIGINT trial, the run's result dir must hold a valid `junit_01.xml` and `results.json` (and
nothing else of the run's). After every trial, once a next run has started and ended (the
trial's own run for SIGTERM and SIGINT, a short run for SIGKILL, which removes what the killed
one left), nothing may be left: no container or image labelled `node-conformance.run`, no
pod sandbox, container or task in the containerd, no `/var/tmp/node-conformance-*` work dir,
no process of the harness or of its kubelet, no hidden hostPath dir in a static pod dir, no
moved-aside or temporary result file. Targets: 0 leftovers, 40 of 40 trials with valid results
where a result is owed (SIGTERM, SIGINT).
"""
import glob
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

ours, work = sys.argv[1], sys.argv[2]
kubelet = sys.argv[3] if len(sys.argv) > 5 else None
endpoint = sys.argv[4] if kubelet else None
ctr_address = sys.argv[5] if kubelet else None
rng = random.Random(int(os.environ.get("BENCH_SEED", "20261130")))


def docker_answers():
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


groups = []
if docker_answers():
    # (name, argv after `run`)
    groups.append(("Docker group", ["--focus", "Container Runtime"]))
if kubelet:
    groups.append(("kubelet group",
                   ["--focus", r"\[sig-node\] (Node|MirrorPod|Pod Lifecycle|Pods|PodOSRejection|Hostname of Pod|ContainerLogPath|Deleted pods handling|Pod SIGKILL|Containers|Container Runtime blackbox test|Downward API|ConfigMap|Secrets|Variable Expansion|Kubelet when|Kubelet with|KubeletManagedEtcHosts|\[NodeConformance\] Containers Lifecycle) ",
                    "--skip", r"\[Flaky\]|\[Serial\]|\[Disruptive\]|\[Slow\]",
                    "--kubelet-binary", kubelet, "--container-runtime-endpoint", endpoint]))
if not groups:
    print("signal trials: neither a Docker Engine nor a real kubelet here: skipped")
    sys.exit(0)


def timed(args, result):
    begin = time.monotonic()
    subprocess.run([ours, "run", "--rootfs", "/", "--result-dir", result,
                    "--api-server-port", str(free_port())] + args,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - begin


# Each group's own length, from one run without a signal: the signals fall anywhere in it,
# its clean-up included.
groups = [(name, args, timed(args, os.path.join(work, f"signal-length-{i}")))
          for i, (name, args) in enumerate(groups)]
print("  runs without a signal: " + ", ".join(f"{n} {t:.1f} s" for n, _, t in groups))


def lines(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    return [l for l in out.stdout.splitlines() if l.strip()]


def leftovers():
    """Everything of the harness's on this machine, as readable strings."""
    left = []
    if docker_answers():
        left += [f"docker container {c}" for c in
                 lines(["docker", "ps", "-aq", "--filter", "label=node-conformance.run"])]
        left += [f"docker image {i}" for i in
                 lines(["docker", "images", "-q", "--filter", "label=node-conformance.run"])]
    if ctr_address:
        for what in ["containers", "tasks"]:
            left += [f"containerd {what[:-1]} {c}" for c in
                     lines(["ctr", "-a", ctr_address, "-n", "k8s.io", what, "ls", "-q"])]
    left += [f"work dir {d}" for d in glob.glob("/var/tmp/node-conformance-*")]
    for d in ["/etc/kubernetes/manifests"]:
        left += [f"static pod dir entry {p}" for p in glob.glob(os.path.join(d, ".node-conformance-*"))]
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        text = b" ".join(cmd).decode(errors="replace")
        if cmd and (cmd[0].decode(errors="replace") == ours or "/var/tmp/node-conformance-" in text):
            left.append(f"process {pid}: {text[:120]}")
    return left


def valid_results(result):
    """Why the result dir does not hold one valid run's results, or None."""
    try:
        r = json.load(open(os.path.join(result, "results.json")))
        ET.parse(os.path.join(result, "junit_01.xml"))
    except (OSError, ValueError, ET.ParseError) as e:
        return f"no valid results: {e}"
    if r["counts"]["tests"] != len(r["tests"]):
        return "counts disagree with the tests"
    extra = [n for n in os.listdir(result)
             if n not in ("results.json", "junit_01.xml", "kubelet.log")]
    return f"more files than the results: {extra}" if extra else None


kinds = [signal.SIGTERM] * 20 + [signal.SIGINT] * 10 + [signal.SIGKILL] * 10
rng.shuffle(kinds)
failures = []
owed = valid = 0
answers = []
begin = time.monotonic()
for n, sig in enumerate(kinds):
    name, args, latest = groups[n % len(groups)]
    result = os.path.join(work, f"signal-trial-{n}")
    at = rng.uniform(0.0, latest)
    run = subprocess.Popen([ours, "run", "--rootfs", "/", "--result-dir", result,
                            "--api-server-port", str(free_port())] + args,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run.wait(timeout=at)
        ended = "had ended"
    except subprocess.TimeoutExpired:
        run.send_signal(sig)
        ended = "running"
    sent, sent_wall = time.monotonic(), time.time()
    try:
        run.wait(timeout=120)
    except subprocess.TimeoutExpired:
        run.kill()
        run.wait()
        failures.append(f"trial {n} ({name}, {sig.name} at {at:.1f} s): not ended 120 s after the signal")
    took = time.monotonic() - sent
    if sig != signal.SIGKILL:
        owed += 1
        why = valid_results(result)
        if why:
            failures.append(f"trial {n} ({name}, {sig.name} at {at:.1f} s, {ended}): {why}")
        else:
            valid += 1
        if not why and ended == "running":
            # Answered within a second: the results are written before the clean-up.
            answer = os.path.getmtime(os.path.join(result, "results.json")) - sent_wall
            answers.append(answer)
            if answer > 1.0:
                failures.append(f"trial {n} ({name}, {sig.name} at {at:.1f} s): results written "
                                f"{answer:.1f} s after the signal")
    else:
        # The next run removes what the killed one left; a short one is enough.
        subprocess.run([ours, "run", "--rootfs", "/", "--result-dir", result + "-next",
                        "--focus", "System Verification the operating system"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    left = leftovers()
    if left:
        failures.append(f"trial {n} ({name}, {sig.name} at {at:.1f} s, {ended}): left {left}")
        # Cleared so the next trial is judged on its own.
        subprocess.run([ours, "run", "--rootfs", "/", "--result-dir", result + "-clear",
                        "--focus", "System Verification the operating system"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    print(f"  trial {n:2}: {name}, {sig.name} at {at:5.1f} s ({ended}), ended {took:.1f} s after; "
          f"{'left ' + str(len(left)) if left else 'nothing left'}", flush=True)

print(f"signal trials ({', '.join(g[0] for g in groups)}): 20 SIGTERM, 10 SIGINT, 10 SIGKILL in "
      f"{time.monotonic() - begin:.0f} s; valid results {valid} of {owed} owed; "
      f"results written at most {max(answers, default=0):.2f} s after a signal (target 1 s); "
      f"{sum(1 for f in failures if ' left ' in f)} trials left something (target 0)")
for f in failures:
    print(f"  {f}")
sys.exit(1 if failures else 0)
