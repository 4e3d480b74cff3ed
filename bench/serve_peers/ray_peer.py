"""The Ray Serve peer: the same model and brute-force cosine behind Ray Serve with
``@serve.batch``. What a team picks next.

Ray opens many ports and may bind non-loopback addresses, so this script is meant to run
inside a network namespace of its own with only loopback up (``bench/serve.py`` starts it
with ``unshare -rn --pid --fork``). It starts Ray, records ``ss -ltn`` and checks that
nothing listens outside 127.0.0.0/8, runs ``bench/loadgen.py`` against the peer, prints
one JSON object (the load generator's result plus the listener check) as its last stdout
line, and shuts Ray down.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_catalog, load_model, top_k  # noqa: E402


def build_app(artifacts: str, max_batch_size: int, batch_wait_s: float) -> Any:
    import numpy as np
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    @serve.deployment(max_ongoing_requests=1000)
    class Search:
        def __init__(self) -> None:
            self.model = load_model()
            self.emb, self.ids, self.titles = load_catalog(Path(artifacts))

        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=batch_wait_s)
        async def encode(self, queries: list[str]) -> list[Any]:
            vecs = np.asarray(self.model.encode(queries, normalize_embeddings=True), dtype=np.float32)
            return list(vecs)

        async def __call__(self, request: Request) -> JSONResponse:
            if request.url.path.endswith("/readyz"):
                return JSONResponse({"status": "ready"})
            q = request.query_params.get("q", "")
            k = int(request.query_params.get("k", "10"))
            if not q.strip() or not 1 <= k <= 100:
                return JSONResponse({"error": "bad request"}, status_code=400)
            vec = await self.encode(q)
            hits = top_k(self.emb, vec, k)
            return JSONResponse(
                {"query": q, "results": [{"id": self.ids[i], "title": self.titles[i], "score": s} for i, s in hits]}
            )

    return Search.bind()  # type: ignore[attr-defined]


def listeners() -> dict[str, Any]:
    """``ss -ltn`` inside the namespace: listeners on a non-loopback address, wildcard listeners,
    and the namespace's interfaces (only ``lo``: a wildcard listener is then reachable over
    loopback only)."""
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    outside, wildcard = [], []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 4:
            continue
        addr = cols[3].rsplit(":", 1)[0].strip("[]").split("%")[0]
        if addr in ("*", "0.0.0.0", "::"):
            wildcard.append(cols[3])
            continue
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            outside.append(cols[3])
            continue
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
            outside.append(cols[3])
    links = subprocess.run(["ip", "-o", "link", "show", "up"], capture_output=True, text=True, check=True).stdout
    interfaces = sorted({line.split(":")[1].strip() for line in links.splitlines() if ":" in line})
    return {
        "ss_ltn": out.strip().splitlines(),
        "outside_loopback": outside,
        "wildcard": wildcard,
        "interfaces_up": interfaces,
        "only_loopback": not outside and interfaces == ["lo"],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--max-batch-size", type=int, default=32)
    ap.add_argument("--batch-wait-s", type=float, default=0.005)
    ap.add_argument("--ready-timeout-s", type=float, default=300)
    ap.add_argument("--temp-dir", help="Ray's session folder")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:split])
    loadgen_args = argv[split + 1 :]
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False, _temp_dir=args.temp_dir)
    result: dict[str, Any] = {}
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        serve.run(build_app(args.artifacts, args.max_batch_size, args.batch_wait_s), route_prefix="/")
        deadline = time.monotonic() + args.ready_timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/readyz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the Ray Serve peer did not become ready")
            time.sleep(0.5)
        checked = listeners()
        print("\n".join(checked["ss_ltn"]), file=sys.stderr)
        loadgen = Path(__file__).resolve().parent.parent / "loadgen.py"
        cmd = [sys.executable, str(loadgen), "--port", str(args.port), "--json", *loadgen_args]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["listeners"] = checked
    finally:
        serve.shutdown()  # type: ignore[no-untyped-call]
        ray.shutdown()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
