#!/usr/bin/env python3
"""Re-labels a saved image for another platform: `docker save` output in, `docker load` input out.

  image-platform.py ARCH [VARIANT] TAG < saved.tar > loadable.tar

The images are `FROM scratch` plus one static binary, so nothing in them depends on the
platform but the config's `architecture` (and `variant`). Docker's legacy builder cannot make
them for another platform: it stamps every intermediate image with its own, then refuses the
`COPY` into one ("was found but does not match the specified platform"), and its cache hands a
build for one platform the image built for another. The images are built for this machine's
platform and re-labelled here; the config's digest, which is the image ID, is recomputed.
"""
import hashlib
import io
import json
import sys
import tarfile

if len(sys.argv) not in (3, 4):
    sys.exit(__doc__)
arch, tag = sys.argv[1], sys.argv[-1]
variant = sys.argv[2] if len(sys.argv) == 4 else None

src = tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()))
manifest = json.load(src.extractfile("manifest.json"))
if len(manifest) != 1:
    sys.exit(f"expected one image in the archive, found {len(manifest)}")
entry = manifest[0]
config = json.load(src.extractfile(entry["Config"]))
config["architecture"] = arch
config.pop("variant", None)
if variant:
    config["variant"] = variant
config_bytes = json.dumps(config, separators=(",", ":")).encode()
config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"

out = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")


def add(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    out.addfile(info, io.BytesIO(data))


add(config_name, config_bytes)
for layer in entry["Layers"]:
    member = src.getmember(layer)
    out.addfile(member, src.extractfile(member))
add("manifest.json", json.dumps([{"Config": config_name, "RepoTags": [tag],
                                  "Layers": entry["Layers"]}]).encode())
out.close()
