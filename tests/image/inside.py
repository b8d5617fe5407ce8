"""What the image holds, seen from inside it: run by the image's own Python (standard library
only) as ``python inside.py MODE [ALLOWED...]``, printing one JSON object.

MODE ``user`` (run as the image's user): who it runs as, and every path it may write outside
the ALLOWED directories. MODE ``contents`` (run as root, to see every file): build tools,
package caches, build secrets, and files holding a certificate of the bundle at $CA_BUNDLE
that no package of the image ships (the build's corporate CA).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
from base64 import urlsafe_b64encode
from collections.abc import Iterator
from pathlib import Path

#: Pseudo-filesystems and this script's own mount: not the image's contents.
SKIPPED = ("/proc", "/sys", "/dev", "/check")
#: Compilers, binutils (the build stage strips with them) and installers.
TOOLS = (
    *("gcc", "cc", "c++", "g++", "clang", "make"),
    *("ld", "as", "strip", "objcopy", "readelf", "ar"),
    *("pip", "pip3"),
)
CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


def walk(skip: tuple[str, ...]) -> Iterator[Path]:
    """Every directory and file under /, symlinks not followed, ``skip`` trees left out."""
    for top, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip]
        for name in (*dirs, *files):
            path = Path(top, name)
            if not path.is_symlink():
                yield path


def user(allowed: tuple[str, ...]) -> dict[str, object]:
    skip = (*SKIPPED, *allowed)
    writable = [str(p) for p in walk(skip) if os.access(p, os.W_OK)]
    if os.access("/", os.W_OK):
        writable.insert(0, "/")
    return {"uid": os.getuid(), "gid": os.getgid(), "writable": writable}


def certificates(data: bytes) -> set[bytes]:
    return {b"".join(body.split()) for body in CERTIFICATE.findall(data)}


def shipped_certificates() -> set[bytes]:
    """Certificates in files exactly as their package shipped them: Debian's (checked against
    dpkg's md5sums) and the wheels' (checked against their RECORD). A bundle the build changed
    (a CA appended to certifi's, say) fails its check, so its certificates are not counted."""
    shipped: list[tuple[Path, str, str]] = []  # path, algorithm, expected digest
    for sums in Path("/var/lib/dpkg/info").glob("*.md5sums"):
        for line in sums.read_text().splitlines():
            digest, _, name = line.partition("  ")
            shipped.append((Path("/", name), "md5", digest))
    for record in Path(sys.prefix).glob("lib/python3*/site-packages/*.dist-info/RECORD"):
        for name, digest, _ in csv.reader(record.read_text().splitlines()):
            if digest.startswith("sha256="):
                shipped.append((record.parents[1] / name, "sha256", digest[len("sha256=") :]))
    found: set[bytes] = set()
    for path, algorithm, expected in shipped:
        if path.suffix not in (".crt", ".pem") or not path.is_file():
            continue
        data = path.read_bytes()
        digest = hashlib.new(algorithm, data).digest()
        readable = digest.hex() if algorithm == "md5" else urlsafe_b64encode(digest).decode()
        if readable.rstrip("=") == expected:
            found |= certificates(data)
    return found


def contents(allowed: tuple[str, ...]) -> dict[str, object]:
    bundle = os.environ.get("CA_BUNDLE", "")
    trusted = shipped_certificates()
    added = certificates(Path(bundle).read_bytes()) - trusted if bundle else set()
    holding = [
        str(path)
        for path in (walk((*SKIPPED, *allowed)) if added else ())
        if path.is_file()
        and path.stat().st_size < 16 << 20
        and certificates(path.read_bytes()) & added
    ]
    lists = Path("/var/lib/apt/lists")
    caches = [
        str(p)
        for p in (
            *(lists.iterdir() if lists.is_dir() else ()),
            *Path("/var/cache/apt").glob("**/*.deb"),
            *Path("/var/cache/apt").glob("*.bin"),
            Path("/root/.cache"),
            Path("/root/.pip"),
        )
        if p.exists() and p.name not in ("lock", "partial", "auxfiles")
    ]
    return {
        "tools": [t for t in TOOLS if shutil.which(t)],
        "pip_importable": importlib.util.find_spec("pip") is not None,
        "caches": caches,
        "secrets": sorted(str(p) for p in Path("/run/secrets").glob("*")),
        "added_certificates": len(added),
        "holding_the_ca": holding,
    }


if __name__ == "__main__":
    mode, *allowed_roots = sys.argv[1:]
    report = user if mode == "user" else contents
    print(json.dumps(report(tuple(allowed_roots))))
