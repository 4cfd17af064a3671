"""Serving throughput and latency: the real ``shopmtl serve`` beside in-process ``predict_frame``.

    python benchmarks/serve.py [--run RUN_DIR] [--encoder minilm|tiny] [--rows-per-request 8]

Starts the real server (``shopmtl serve``, its own process, on a free loopback port) and
drives it with 1, 8 and 32 concurrent clients (threads, one keep-alive connection each),
each sending ``--requests`` requests of ``--rows-per-request`` price_bin rows, bounded by
``--seconds`` per level. Before it, in this process and on the same rows of the same run:
``predict_frame`` on one request's rows (the in-process time of one request) and on all the
rows of the 32-client level at once (in-process rows/s). Targets (issue #12): at 32 clients
>= 0.7x the in-process rows/s; at 1 client p50 <= 1.5x the in-process time of one request.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import http.client
import json
import socket
import statistics
import subprocess
import sys
import time

from deploy_common import TASK, add_run_options, ensure_run, machine, test_rows

LEVELS = (1, 8, 32)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(run, port: int, max_wait_ms: float) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shopmtl.core.cli",
            "serve",
            str(run),
            "--task",
            TASK,
            "--port",
            str(port),
            "--max-wait-ms",
            str(max_wait_ms),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("the server did not start within 120 s")


def client(port: int, bodies: list[bytes], deadline: float) -> list[float]:
    """Send ``bodies`` one after another on one connection; each request's latency in seconds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    latencies = []
    for body in bodies:
        if time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        connection.request(
            "POST", f"/v1/predict/{TASK}", body, {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {payload[:300]!r}")
        latencies.append(time.perf_counter() - started)
    connection.close()
    return latencies


def level(
    port: int, clients: int, requests: list[bytes], per_client: int, seconds: float
) -> dict[str, float]:
    shares = [requests[k * per_client : (k + 1) * per_client] for k in range(clients)]
    client(port, requests[:2], time.perf_counter() + 30)  # warm the connection path
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda share: client(port, share, started + seconds), shares))
    wall = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r)
    return {
        "requests": len(latencies),
        "wall_s": wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


def measure_in_process(run, frame, size: int) -> dict[str, float]:
    """``predict_frame`` on one request's rows (p50 of 30) and on every row at once (rows/s)."""
    from shopmtl.core.api import predict_frame

    predict_frame(run, TASK, frame.head(64))  # warm-up
    one = []
    for i in range(30):
        started = time.perf_counter()
        predict_frame(run, TASK, frame.iloc[i * size : (i + 1) * size])
        one.append(time.perf_counter() - started)
    started = time.perf_counter()
    predict_frame(run, TASK, frame)
    return {
        "one_request_p50_ms": 1000 * statistics.median(one),
        "rows_per_s": len(frame) / (time.perf_counter() - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_run_options(parser)
    parser.add_argument("--rows-per-request", type=int, default=8)
    parser.add_argument("--requests", type=int, default=24, help="requests per client at most")
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per level")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="the server's --max-wait-ms")
    args = parser.parse_args()
    run_dir = ensure_run(args)
    size = args.rows_per_request
    frame = test_rows(run_dir, size * args.requests * max(LEVELS))
    bodies = [
        json.dumps({"rows": frame.iloc[i : i + size].to_dict(orient="records")}).encode()
        for i in range(0, len(frame), size)
    ]

    from shopmtl.core import api

    run = api.load_run(run_dir, api.load_plugins(only=[]).tasks)
    # In a worker thread, as the server predicts: on this machine torch ran the same call
    # ~30x slower on the main thread than on a fresh one (see RESULTS.md).
    with concurrent.futures.ThreadPoolExecutor(1) as worker:
        in_process = worker.submit(measure_in_process, run, frame, size).result()

    port = free_port()
    server = start_server(run_dir, port, args.max_wait_ms)
    try:
        results = {c: level(port, c, bodies, args.requests, args.seconds) for c in LEVELS}
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"# serve benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {machine()}; run: {run_dir}; {size} rows per request; server --max-wait-ms {args.max_wait_ms}"
    )
    print(
        f"in-process predict_frame: one request p50 {in_process['one_request_p50_ms']:.1f} ms; "
        f"all {len(frame)} rows at once {in_process['rows_per_s']:.0f} rows/s\n"
    )
    print(
        "| clients | requests | p50 ms | p99 ms | rows/s | rows/s ÷ in-process | p50 ÷ in-process one request |"
    )
    print("|---|---|---|---|---|---|---|")
    for clients, r in results.items():
        rate = r["requests"] * size / r["wall_s"]
        print(
            f"| {clients} | {r['requests']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {rate:.0f} | "
            f"{rate / in_process['rows_per_s']:.2f} | {r['p50_ms'] / in_process['one_request_p50_ms']:.2f} |"
        )


if __name__ == "__main__":
    main()
