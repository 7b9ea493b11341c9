#!/usr/bin/env python3
"""Writes the Go field table the local control plane encodes objects with.

    scripts/gotypes.py KUBERNETES_SOURCE_DIR > src/controlplane/gotypes.json

kube-apiserver decodes a request body into Go structs and encodes them again: unknown fields
are dropped, a field without `omitempty` is always written (its zero value when unset: "", 0,
false, null, or the zero struct), and `omitempty` drops empty values but never a struct (so an
unset metav1.Time is written as null). That depends on each field's Go type and json tag, which
only the Go source says; the OpenAPI document does not. This reads the tags from the API types
of the kinds the control plane serves (core/v1, coordination/v1, storage/v1, node/v1, meta/v1)
in a Kubernetes source tree (k8s.io/kubernetes, or its staging/src/k8s.io/api and apimachinery).

Output: {"source": ..., "types": {"core.Pod": [[json name, type, omitempty], ...], ...},
"named": {"core.ResourceList": type, ...}}. A type is one of "string", "int", "float", "bool",
"bytes", "time", "microtime", "quantity", "intorstring", "raw", "any", "*T" (a pointer), "[]T",
"map[]T" (string keys), or a struct name such as "core.Container"; a field named "" is an
inline (embedded) struct.
"""
import json
import os
import re
import sys

PACKAGES = {
    "core": "staging/src/k8s.io/api/core/v1",
    "coordination": "staging/src/k8s.io/api/coordination/v1",
    "storage": "staging/src/k8s.io/api/storage/v1",
    "node": "staging/src/k8s.io/api/node/v1",
    "meta": "staging/src/k8s.io/apimachinery/pkg/apis/meta/v1",
}
IMPORTS = {"metav1": "meta", "v1": "core", "corev1": "core", "apiv1": "core"}
SPECIAL = {
    "meta.Time": "time",
    "meta.MicroTime": "microtime",
    "meta.Duration": "string",
    "meta.FieldsV1": "raw",
    "resource.Quantity": "quantity",
    "intstr.IntOrString": "intorstring",
    "runtime.RawExtension": "raw",
    "runtime.Object": "raw",
    "types.UID": "string",
    "types.NodeName": "string",
}
BASIC = {
    "string": "string",
    "bool": "bool",
    "int": "int",
    "int32": "int",
    "int64": "int",
    "uint": "int",
    "uint32": "int",
    "uint64": "int",
    "float32": "float",
    "float64": "float",
    "byte": "int",
    "interface{}": "any",
}

STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.S | re.M)
NAMED = re.compile(r"^type (\w+) ([^\s{=][^\n{]*)$", re.M)
FIELD = re.compile(r"^\t(?:(\w+)\s+)?([\w.*\[\]{}]+)\s+`([^`]*)`", re.M)


def strip_comments(text):
    return re.sub(r"^\s*//.*$", "", text, flags=re.M)


def main():
    root = sys.argv[1]
    types, named = {}, {}
    for pkg, rel in PACKAGES.items():
        d = os.path.join(root, rel)
        for name in sorted(os.listdir(d)):
            if not name.endswith(".go") or name.endswith("_test.go") or name.startswith("zz_") or name.startswith("generated"):
                continue
            text = strip_comments(open(os.path.join(d, name)).read())
            for m in NAMED.finditer(text):
                named[f"{pkg}.{m.group(1)}"] = m.group(2).strip()
            for m in STRUCT.finditer(text):
                fields = []
                for f in FIELD.finditer(m.group(2)):
                    fname, ftype, tag = f.groups()
                    j = re.search(r'json:"([^"]*)"', tag)
                    if not j:
                        continue
                    parts = j.group(1).split(",")
                    if parts[0] == "-":
                        continue
                    inline = "inline" in parts[1:]
                    fields.append([("" if inline else parts[0]), (pkg, ftype), "omitempty" in parts[1:]])
                types[f"{pkg}.{m.group(1)}"] = fields

    def resolve(pkg, expr, depth=0):
        if expr.startswith("*"):
            return "*" + resolve(pkg, expr[1:], depth)
        if expr == "[]byte":
            return "bytes"
        if expr.startswith("[]"):
            return "[]" + resolve(pkg, expr[2:], depth)
        if expr.startswith("map["):
            close = expr.index("]")
            return "map[]" + resolve(pkg, expr[close + 1:], depth)
        if expr in BASIC:
            return BASIC[expr]
        if "." in expr:
            alias, name = expr.split(".", 1)
            q = f"{IMPORTS.get(alias, alias)}.{name}"
        else:
            q = f"{pkg}.{expr}"
        if q in SPECIAL:
            return SPECIAL[q]
        if q in types:
            return q
        if q in named and depth < 8:
            target = named[q]
            return resolve(q.split(".")[0], target, depth + 1)
        return "any"

    out = {}
    for t, fields in types.items():
        out[t] = [[name, resolve(pkg, expr), omit] for name, (pkg, expr), omit in fields]
    # Only what the served kinds reach, so the table stays small.
    roots = ["core.Namespace", "core.Node", "core.Pod", "core.Event", "core.ConfigMap", "core.Secret",
             "core.Service", "core.Endpoints", "core.ServiceAccount", "coordination.Lease",
             "storage.CSINode", "storage.CSIDriver", "node.RuntimeClass", "meta.DeleteOptions",
             "meta.Status"]
    keep, todo = set(), list(roots)
    while todo:
        t = todo.pop()
        if t in keep or t not in out:
            continue
        keep.add(t)
        for _, ty, _ in out[t]:
            base = ty.lstrip("*")
            while base.startswith("[]") or base.startswith("map[]"):
                base = base[2:] if base.startswith("[]") else base[5:]
                base = base.lstrip("*")
            if base in out:
                todo.append(base)
    source = os.environ.get("KUBERNETES_VERSION", "unknown")
    json.dump({"source": f"Kubernetes {source} Go API types (k8s.io/api, k8s.io/apimachinery)",
               "types": {t: out[t] for t in sorted(keep)}}, sys.stdout, indent=None, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
