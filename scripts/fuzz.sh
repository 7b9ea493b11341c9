#!/usr/bin/env bash
# Fuzzes the local control plane's request router and every parser of a node's files with
# cargo-fuzz (libFuzzer), SECONDS per target (default 10), seeded from the repository's own
# fixtures (tests/fixtures, tests/apiserver/corpus) and fuzz/seeds. Prints, per target, the
# inputs run and whether it crashed; exits 1 when any target crashed (a panic, a hang past
# -timeout, or memory past -rss_limit_mb). A crashing input is left in fuzz/artifacts/TARGET/:
# replay it with `fuzz/target/<host>/release/TARGET FILE`.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]       (default: every target)
#
# Stable Rust is enough: with `--sanitizer none` cargo-fuzz passes no -Z flag, only the
# stable -Cpasses=sancov-module and -Cllvm-args coverage options libFuzzer needs. The address
# sanitizer (cargo-fuzz's default) would need nightly, or RUSTC_BOOTSTRAP=1; it finds memory
# errors in unsafe code, and the code fuzzed here is safe Rust, where a bug is a panic, which
# libFuzzer catches without it. Debug assertions and overflow checks are on (cargo-fuzz's
# release build), so an arithmetic overflow is a crash too.
#
# The fuzz crate (fuzz/) is its own workspace, so the main crate's `cargo test` and clippy never
# build it. Its libFuzzer runtime is C++ (built by libfuzzer-sys: needs a C++ compiler), and
# cargo-fuzz's RUSTFLAGS replace .cargo/config.toml's static-linking flags, which libFuzzer
# could not link with anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
shift || true

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz..." >&2
  cargo install --quiet --locked cargo-fuzz
fi

host=$(rustc -vV | sed -n 's/^host: //p')
# 16 codegen units instead of cargo-fuzz's 1: the build (all of the main crate's dependencies,
# optimized and instrumented) takes minutes less on a small machine, the targets run as fast
# within a few percent.
# Its own target directory whatever CARGO_TARGET_DIR says: the instrumented build shares
# nothing with the main crate's.
fuzz_target=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}
build=(--sanitizer none --codegen-units 16 --target "$host" --target-dir "$fuzz_target")
echo "building the fuzz targets..." >&2
cargo fuzz build "${build[@]}" >&2
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

# Seeds: the repository's node fixtures and differential corpus, put in the shapes the targets
# read (a multi-file input joins its files with the line `--8<--`, see fuzz/fuzz_targets/common.rs).
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
python3 - "$seeds" <<'PY'
import glob, json, os, re, sys

out = sys.argv[1]
SEP = b"\n--8<--\n"
fx = "tests/fixtures"


def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def first(pattern):
    found = sorted(glob.glob(pattern, recursive=True))
    return read(found[0]) if found else b""


def copy(target, pattern):
    for p in sorted(glob.glob(pattern, recursive=True)):
        if os.path.isfile(p):
            put(target, re.sub(r"[^\w.-]", "_", os.path.relpath(p, fx)), read(p))


copy("kernel_config", f"{fx}/*/boot/config-*")
copy("kernel_config", f"{fx}/*/proc/config.gz")
for pattern in ("etc/os-release", "proc/swaps", "proc/sys/kernel/osrelease"):
    copy("host_files", f"{fx}/*/{pattern}")
copy("static_pods", f"{fx}/*/etc/kubernetes/manifests/*")
copy("pod_security", f"{fx}/*/etc/kubernetes/manifests/*")
copy("kubeconfig", f"{fx}/*/etc/kubernetes/*.conf")
for d in sorted(glob.glob(f"{fx}/*/")):
    name = os.path.basename(d.rstrip("/"))
    flags = first(f"{d}proc/*/cmdline") or first(f"{d}var/lib/kubelet/kubeadm-flags.env")
    config = first(f"{d}var/lib/kubelet/config.yaml") or first(f"{d}etc/kubelet/config.yaml")
    drop_in = first(f"{d}etc/kubernetes/kubelet.conf.d/**/*.conf")
    if flags or config:
        put("kubelet", name, SEP.join([flags, config, drop_in]))
    pki = sorted(glob.glob("fuzz/seeds/pki/*"))
    conf = first(f"{d}etc/kubernetes/kubelet.conf")
    if conf and pki:
        put("kubeconfig", name + "-with-ca", conf + SEP + read(pki[0]).split(SEP)[0])

# The differential corpus: each file's steps as requests, in the router target's format.
try:
    import yaml
except ImportError:
    yaml = None
    print("no PyYAML: the router starts from fuzz/seeds/router only", file=sys.stderr)
ns_create = b'POST /api/v1/namespaces\napplication/json\n\n{"metadata":{"name":"fuzz"}}'


def subst(s):
    s = s.replace("$ns", "fuzz").replace("$u", "u1")
    return re.sub(r"\$[A-Za-z_]\w*", "1", s)


for path in sorted(glob.glob("tests/apiserver/corpus/*.yaml")) if yaml else []:
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    reqs = []
    for step in doc.get("steps", []):
        method = next((m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "WATCH") if m in step), None)
        if method is None:
            continue
        target = subst(step[method])
        if method == "WATCH":
            method = "GET"
            target += ("&" if "?" in target else "?") + "watch=1"
            if "timeoutSeconds" not in target:
                target += "&timeoutSeconds=1"
        ctype = step.get("type", "")
        if "raw" in step:
            body = subst(step["raw"])
        elif "body" in step:
            if ctype == "application/yaml":
                body = subst(yaml.safe_dump(step["body"]))
            else:
                body = subst(json.dumps(step["body"]))
            ctype = ctype or ("application/strategic-merge-patch+json" if method == "PATCH" else "application/json")
        else:
            body = ""
        reqs.append(f"{method} {target}\n{ctype}\n{step.get('accept', '')}\n{body}".encode())
    base = os.path.splitext(os.path.basename(path))[0]
    # The router takes up to 12 requests an input: the namespace and 11 steps.
    for i in range(0, len(reqs), 11):
        put("router", f"{base}-{i // 11}", SEP.join([ns_create] + reqs[i:i + 11]))
for i, r in enumerate(json.load(open(f"{fx}/tables/requests.json"))):
    accept = {"table": "application/json;as=Table;v=v1;g=meta.k8s.io",
              "table-v1beta1": "application/json;as=Table;v=v1beta1;g=meta.k8s.io"}.get(r.get("accept"), "")
    put("router", f"table-{i}", ns_create + SEP + f"GET {r['path'].replace('{ns}', 'fuzz')}\n\n{accept}\n".encode())
PY

bin="$fuzz_target/$host/release"
status=0
printf '%-14s %12s  %s\n' target runs result
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "$seeds/$t"
  [ -d "fuzz/seeds/$t" ] && cp -r "fuzz/seeds/$t/." "$seeds/$t/"
  log="$seeds/$t.log"
  rc=0
  # The first directory is the corpus libFuzzer grows (kept between runs, not committed); the
  # seeds are read only.
  "$bin/$t" "fuzz/corpus/$t" "$seeds/$t" -max_total_time="$secs" -timeout=20 \
    -rss_limit_mb=2048 -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="CRASHED (exit $rc): $(grep -m1 -oE "(Test unit written to|panicked at) .*" "$log" || true)"
    status=1
  fi
  printf '%-14s %12s  %s\n' "$t" "${runs:-?}" "$result"
  if [ "$rc" -ne 0 ]; then
    grep -E "panicked at|^thread|Test unit written" "$log" | head -n 5 >&2 || true
  fi
  # The router counts its 500s; they are answers, not crashes, but worth reading.
  grep -E "^router: " "$log" | tail -n 1 >&2 || true
done
exit "$status"
