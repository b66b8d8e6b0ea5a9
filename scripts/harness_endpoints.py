#!/usr/bin/env python3
"""List every endpoint of the INSTALLED harness-open-api Python client as a TSV.

Reads the generated `harness_open_api.api.*` modules (importlib + inspect): each operation's
`*_with_http_info` method calls `self.api_client.call_api('<path>', '<METHOD>', ...)`; the path and
method are taken from that call, the operation from the method name, the tag from the module.

Usage (one command; see data/harness-api/README.md):
    python scripts/harness_endpoints.py [--out data/harness-api/endpoints.tsv]
Also copies the package's licence to data/harness-api/LICENSE-harness-open-api.
"""
import argparse
import importlib
import importlib.metadata
import inspect
import pkgutil
import re
import sys
from pathlib import Path

CALL = re.compile(r"call_api\(\s*'([^']*)'\s*,\s*'([A-Z]+)'")
PARAMS = re.compile(r"all_params\s*=\s*\[([^\]]*)\]")


def endpoints():
    api = importlib.import_module("harness_open_api.api")
    rows = set()
    for info in pkgutil.iter_modules(api.__path__):
        module = importlib.import_module(f"harness_open_api.api.{info.name}")
        tag = info.name[:-4] if info.name.endswith("_api") else info.name
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            for name, fn in inspect.getmembers(cls, inspect.isfunction):
                if not name.endswith("_with_http_info"):
                    continue
                src = inspect.getsource(fn)
                m = CALL.search(src)
                if not m:
                    sys.exit(f"no call_api in {module.__name__}.{name}")
                path, method = m.group(1), m.group(2)
                rows.add((method, path, name[: -len("_with_http_info")], tag))
    return sorted(rows)


def main():
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(root / "data/harness-api/endpoints.tsv"))
    args = ap.parse_args()
    version = importlib.metadata.version("harness-open-api")
    rows = endpoints()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as f:
        f.write(f"# harness-open-api {version}: every operation of harness_open_api/api/*.py\n")
        f.write("method\tpath\toperation\ttag\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    dist = importlib.metadata.distribution("harness-open-api")
    lic = [p for p in (dist.files or []) if "LICENSE" in p.name.upper()]
    if lic:
        text = Path(dist.locate_file(lic[0])).read_text(encoding="utf-8")
        (out.parent / "LICENSE-harness-open-api").write_text(
            f"harness-open-api {version} (PyPI), licence as shipped in its dist-info:\n\n{text}",
            encoding="utf-8",
        )
    pairs = {(r[0], r[1]) for r in rows}
    print(f"{len(rows)} operations, {len(pairs)} (method, path) pairs -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
