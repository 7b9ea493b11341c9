#!/usr/bin/env python3
"""A node root of hostile files, and the harness's peak memory against it.

  bench_hostile.py OURS WORK

Every file the harness reads is made as bad as a node can make it: over its cap (sparse, so
the root costs no disk), a gzip bomb as /proc/config.gz, FIFOs and devices where files should
be, YAML that expands (anchors) or nests deeply, a static pod directory full of the largest
manifests the cap allows, garbage certificates. `OURS run --rootfs ROOT` must end (no hang),
and results.json's peak RSS must stay under 64 MB (target).
"""
import gzip
import json
import os
import subprocess
import sys
import time

ours, work = sys.argv[1], sys.argv[2]
root = os.path.join(work, "hostile-root")
MIB = 1 << 20


def path(p):
    full = os.path.join(root, p.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    return full


def sparse(p, size):
    with open(path(p), "wb") as f:
        f.truncate(size)


def text(p, body):
    with open(path(p), "w") as f:
        f.write(body)


def fifo(p):
    os.mkfifo(path(p))


release = os.uname().release
sparse("/etc/os-release", 2 << 30)
text("/etc/hostname", "hostile\n")
# 4.7 MB of gzip that expands to 4.7 GB of zeros.
with open(path("/proc/config.gz"), "wb") as f:
    with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9) as g:
        chunk = b"\0" * (16 * MIB)
        for _ in range(300):
            g.write(chunk)
fifo(f"/boot/config-{release}")
os.symlink("/dev/zero", path("/proc/swaps"))
fifo("/proc/cgroups")
os.makedirs(path("/proc/sys/net/ipv4"), exist_ok=True)
sparse("/proc/sys/net/ipv4/ip_forward", 2 << 30)
# A kubelet process whose command line is 4 MiB of flags, and whose config is a YAML bomb.
os.makedirs(path("/proc/4242"), exist_ok=True)
text("/proc/4242/comm", "kubelet\n")
with open(path("/proc/4242/cmdline"), "wb") as f:
    f.write(b"kubelet\0--config=/var/lib/kubelet/config.yaml\0--kubeconfig=/etc/kubernetes/kubelet.conf\0")
    f.write(b"--v=2\0" * (700_000))
bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
for i in range(1, 12):
    bomb.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
text("/var/lib/kubelet/config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n" + "\n".join(bomb) + "\n")
# A kubeconfig nested 100,000 levels deep.
text("/etc/kubernetes/kubelet.conf", "clusters: " + "[" * 100_000 + "]" * 100_000 + "\n")
text("/var/lib/kubelet/kubeadm-flags.env", "KUBELET_KUBEADM_ARGS=\"" + "--x=y " * 2_000_000 + "\"\n")
# Static pod manifests as costly as the reader lets them be: four just under the 20,000-node
# budget of a manifest (3,990 containers each: the directory's 30,000-node budget ends in the
# second), an alias bomb, then fifty over the 1 MiB cap.
for n in range(4):
    with open(path(f"/etc/kubernetes/manifests/dense{n}.json"), "w") as f:
        f.write('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"d%d"},"spec":{"containers":[' % n)
        f.write(",".join('{"name":"c%d","image":"i"}' % i for i in range(3990)))
        f.write("]}}")
text("/etc/kubernetes/manifests/alias-bomb.yaml",
     "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n"
     "  - &c {name: c, image: i, securityContext: {privileged: true}}\n" + "  - *c\n" * 100_000)
container = '{"name":"c%d","image":"i"},'
for n in range(50):
    with open(path(f"/etc/kubernetes/manifests/pod{n}.json"), "w") as f:
        f.write('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p%d"},"spec":{"containers":[' % n)
        body = "".join(container % i for i in range(300_000))
        f.write(body[: 15 * MIB].rsplit("},", 1)[0] + "}")
        f.write("]}}")
for crt in ["ca", "apiserver", "apiserver-kubelet-client", "front-proxy-ca", "etcd/ca"]:
    text(f"/etc/kubernetes/pki/{crt}.crt", "-----BEGIN CERTIFICATE-----\n" + "QUFB" * 200_000 + "\n-----END CERTIFICATE-----\n")
    sparse(f"/etc/kubernetes/pki/{crt}.key", 2 << 30)
os.symlink("/dev/zero", path("/etc/containerd/config.toml"))

result = os.path.join(work, "hostile-result")
begin = time.monotonic()
run = subprocess.run([ours, "run", "--rootfs", root, "--result-dir", result,
                      "--skip", r"Container Runtime|\[sig-node\] (Node|MirrorPod|Pod Lifecycle) "],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
took = time.monotonic() - begin
try:
    r = json.load(open(os.path.join(result, "results.json")))
except (OSError, ValueError) as e:
    print(f"hostile root: no results ({e}), exit {run.returncode}:\n{run.stdout[-2000:]}")
    sys.exit(1)
c = r["counts"]
print(f"hostile root: exit {run.returncode} in {took:.1f} s; {c['passed']} passed, {c['failed']} "
      f"failed, {c['skipped']} skipped; peak RSS {r['peak_rss_kib'] / 1024:.1f} MiB (target < 64 MB)")
