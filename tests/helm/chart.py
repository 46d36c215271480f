"""Drives the real Helm engine (Helm v4's Go SDK, bundled by PyPI's helm-python-sdk as
libhelm_c.so) over a chart, for tests/helm/chart.rs.

    python tests/helm/chart.py CHART_DIR < requests.json > results.json

The input is a JSON list of requests, the output a JSON list with one result per request, in
order. A request is an object with "op" and the op's fields:

    {"op": "metadata"}                                  -> {"metadata": {Chart.yaml}}
    {"op": "lint", "values": {...}}                     -> {"messages": [{"severity", "path", "error"}]}
    {"op": "render", "values": {...}, "name": "R", "namespace": "NS"}
        -> {"manifests": {template path: text}, "crds": [{"filename", "data"}]}
    {"op": "validate", "values": {...}}                 -> {"valid": true} or {"valid": false, "error": "..."}
    {"op": "package", "values": {...}, "name": "R", "namespace": "NS"}
        -> {"archive": "meshtrust-V.tgz", "files": [...], "crds": [...], "manifests": {...}}
           (`helm package`, then the archive loaded back and rendered)

A render that Helm refuses gives {"error": "..."} (so a test can expect a refusal); any other
failure exits non-zero with the reason on stderr.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

try:
    import helm_python as helm
except ImportError as e:  # the README test command installs it into .venv
    sys.exit(
        f"{e}: install the Helm engine with `.venv/bin/pip install helm-python-sdk==0.2.2` "
        "(./tests/run-all.sh does), or set MESHTRUST_PYTHON to a Python that has it"
    )


def run(chart_dir: str, chart: Any, request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    values = request.get("values")
    if op == "metadata":
        return {"metadata": chart.metadata}
    if op == "lint":
        report = helm.lint(chart_dir, values, namespace=request.get("namespace"))
        return {"messages": report.get("messages") or [], "errors": report.get("errors") or []}
    if op == "render":
        try:
            manifests = chart.render(
                values,
                name=request["name"],
                namespace=request["namespace"],
                is_install=True,
            )
        except helm.HelmError as e:
            return {"error": str(e)}
        crds = [{"filename": c["filename"], "data": c["data"]} for c in chart.crds]
        return {"manifests": manifests, "crds": crds}
    if op == "package":
        with tempfile.TemporaryDirectory() as out:
            archive = helm.package(chart_dir, destination=out)
            with helm.Chart.load(archive) as packaged:
                return {
                    "archive": os.path.basename(archive),
                    "files": sorted(f["name"] for f in packaged.files),
                    "crds": sorted(c["filename"] for c in packaged.crds),
                    "manifests": packaged.render(
                        values, name=request["name"], namespace=request["namespace"]
                    ),
                }
    if op == "validate":
        try:
            chart.validate_schema(values)
        except helm.HelmValuesError as e:
            return {"valid": False, "error": str(e)}
        return {"valid": True}
    raise SystemExit(f"unknown op {op!r} in request {json.dumps(request)}")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: chart.py CHART_DIR < requests.json")
    chart_dir = sys.argv[1]
    requests = json.load(sys.stdin)
    with helm.Chart.load(chart_dir) as chart:
        results = [run(chart_dir, chart, r) for r in requests]
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
