"""Times the Python peer (handler.py) in-process on the events it serves, and checks that its HubSpot
request body equals dealhook's for the same event (written by `cargo bench --bench delivery` to
target/bench/requests/<event>.json).

    python bench.py EVENTS_DIR SECRET_FILE REQUESTS_DIR OUT_JSON
"""

import json
import os
import sys
import time

import handler

# The events the peer serves (the others have no Python counterpart).
EVENTS = ["website-quote", "typeform"]
MAX_SAMPLES = 20_000
MAX_SECONDS = 3.0
WARM_UP = 200


def percentile(sorted_ns, p):
    rank = max(1, min(len(sorted_ns), -(-len(sorted_ns) * p // 100)))
    return sorted_ns[rank - 1]


def main():
    events_dir, secret_file, requests_dir, out = sys.argv[1:5]
    with open(secret_file) as f:
        secrets = json.load(f)
    rows = []
    for name in EVENTS:
        with open(os.path.join(events_dir, name + ".json")) as f:
            text = f.read()
        response = json.loads(handler.handler(text, secrets))
        got = json.loads(response["body"])["request"]["body"]
        with open(os.path.join(requests_dir, name + ".json")) as f:
            want = json.load(f)
        if got != want:
            sys.exit(f"{name}: the peer's request differs from dealhook's:\n  peer:     {json.dumps(got)}\n  dealhook: {json.dumps(want)}")
        for _ in range(WARM_UP):
            handler.handler(text, secrets)
        samples = []
        started = time.perf_counter()
        while len(samples) < MAX_SAMPLES and time.perf_counter() - started < MAX_SECONDS:
            t = time.perf_counter_ns()
            handler.handler(text, secrets)
            samples.append(time.perf_counter_ns() - t)
        samples.sort()
        rows.append(
            {
                "event": name,
                "samples": len(samples),
                "p50_us": percentile(samples, 50) / 1000,
                "p99_us": percentile(samples, 99) / 1000,
            }
        )
    with open(out, "w") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
