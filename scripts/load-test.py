#!/usr/bin/env python3
"""Load test of a running `s2s serve` (docs/serving.md), python3 standard library only.

    s2s serve --run runs/quickstart --port 8080 &
    python3 scripts/load-test.py --url http://127.0.0.1:8080 --inputs verses.txt \
        --clients 1,8,64 --requests 200 --parameters '{"num_beams": 4}' \
        --s2s target/release/s2s --run runs/quickstart --json load.json

What it does, in order:

(a) Reference pass: every distinct input sentence is sent alone, one request after the other,
    as `{"inputs": "<sentence>", "parameters": <--parameters>}`; each full JSON response is kept
    as that sentence's reference.
(b) For each concurrency level c of --clients: --requests single-sentence requests, cycling
    through the input lines, are sent from c threads (one keep-alive connection each). Every
    request's latency and status are recorded, and every 200 response must equal the reference
    response of its sentence (the parsed JSON: texts and tokens exactly, scores to 1e-5
    relative): the server promises that a sentence's output does not depend on the batch it was
    decoded in. GET /metrics is scraped
    before and after the level; the difference of the cumulative `s2s_batch_size` buckets is
    that level's batch-size histogram (sentences per decoded batch), `_sum / _count` its mean.
(c) With --s2s and --run: one `s2s generate --run DIR --input FILE` process over the same
    distinct sentences, with --parameters as flags, timed from start to exit (model load
    included), for comparison.

A Markdown table goes to stdout (notes and progress to stderr); --json writes every figure.

Bounds: at most --requests requests per level, and nothing new is sent once --max-seconds have
passed since the start (requests in flight then are still waited for, up to --timeout each);
the script says so when the deadline cut a pass short. Only loopback URLs are accepted
(127.0.0.1, localhost, ::1): this is a test of a local server, not a tool to load other hosts.

Exit status: 0 when every request was answered 200 with its reference response; 1 when any
response differed from its reference (a mismatch), was not 200 (an error) or never came (lost:
connection reset, timeout); 2 for bad arguments or a server that refuses the connection; 3 when
nothing went wrong but the test is incomplete: the --max-seconds deadline cut it short (the
figures printed cover only what was sent before it), or the `s2s generate` comparison asked for
could not be timed (it failed, or the deadline had passed).
"""

import argparse
import http.client
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# `parameters` fields of the API that `s2s generate` takes as flags (--num-beams, ...).
GENERATE_FLAGS = {
    "max_new_tokens", "min_new_tokens", "num_beams", "length_penalty", "early_stopping",
    "num_return_sequences", "do_sample", "temperature", "top_k", "top_p", "seed",
    "no_repeat_ngram_size",
}


class Refused(Exception):
    """The server refused the connection (nothing listens at --url)."""


def fail(message, code=2):
    """Prints one sentence to stderr and exits with `code`."""
    print(f"load-test: {message}", file=sys.stderr)
    sys.exit(code)


def note(message):
    print(message, file=sys.stderr, flush=True)


# --- HTTP ------------------------------------------------------------------------------------

class Connection(http.client.HTTPConnection):
    """An HTTP/1.1 keep-alive connection with Nagle's algorithm off, as HTTP clients do."""

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Server:
    """Where the server listens; opens connections to it."""

    def __init__(self, url, timeout):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http":
            fail(f"--url must start with http:// (got {url!r}); s2s serve speaks plain HTTP")
        if parts.hostname not in LOOPBACK:
            fail(f"--url must name a loopback host (127.0.0.1, localhost or [::1]), "
                 f"not {parts.hostname!r}: this script only loads a local server")
        try:
            self.port = parts.port or 80
        except ValueError:
            fail(f"--url has an invalid port: {url!r}")
        self.host = parts.hostname
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.url = url

    def connect(self):
        return Connection(self.host, self.port, timeout=self.timeout)

    def request(self, method, path, body=None, conn=None):
        """One request; returns (status, body bytes). On a new connection unless `conn` is given.

        Raises Refused when nothing listens, and OSError / http.client.HTTPException when the
        connection breaks or times out before the answer.
        """
        own = conn is None
        conn = conn or self.connect()
        headers = {"content-type": "application/json"} if body is not None else {}
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except ConnectionRefusedError as e:
            raise Refused(str(e)) from e
        finally:
            if own:
                conn.close()

    def get(self, path):
        """GET `path`; exits 2 with one sentence when the server refuses the connection."""
        try:
            return self.request("GET", path)
        except Refused:
            fail(f"cannot connect to {self.url}: the connection was refused "
                 f"(is `s2s serve` running and listening there?)")
        except (OSError, http.client.HTTPException) as e:
            fail(f"GET {path} got no answer from {self.url}: {type(e).__name__}: {e}", 1)

    def metrics(self):
        """The cumulative `s2s_batch_size` histogram from GET /metrics: ({le: count}, sum, count)."""
        status, body = self.get("/metrics")
        if status != 200:
            fail(f"GET /metrics answered {status}: {body[:200]!r}", 1)
        buckets, total, count = {}, 0.0, 0
        for line in body.decode("utf-8", "replace").splitlines():
            if line.startswith("s2s_batch_size_bucket{"):
                labels, _, value = line.rpartition(" ")
                le = labels.split('le="', 1)[1].split('"', 1)[0]
                buckets[le] = int(float(value))
            elif line.startswith("s2s_batch_size_sum"):
                total = float(line.split()[-1])
            elif line.startswith("s2s_batch_size_count"):
                count = int(float(line.split()[-1]))
        return buckets, total, count


# Scores may move in their last float digits with the batch a sentence was decoded in (other
# lengths pad differently), as tests/serve.rs allows; texts and tokens must be equal.
RELATIVE_TOLERANCE = 1e-5


def same(got, want):
    """Equal parsed JSON values: numbers to RELATIVE_TOLERANCE, everything else exactly."""
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if number(got) and number(want):
        return abs(got - want) <= RELATIVE_TOLERANCE * max(1.0, abs(got), abs(want))
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    return got == want


def first_difference(got, want, path="response"):
    """Where two parsed JSON values first differ, in one line: `path: got X, reference Y`."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in list(want) + [k for k in got if k not in want]:
            if key not in got or key not in want:
                return f"{path}.{key}: {'missing' if key not in got else 'not in the reference'}"
            if not same(got[key], want[key]):
                return first_difference(got[key], want[key], f"{path}.{key}")
    elif isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return f"{path}: {len(got)} items, reference {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            if not same(g, w):
                return first_difference(g, w, f"{path}[{i}]")
    text = lambda v: json.dumps(v, ensure_ascii=False)[:120]  # noqa: E731
    return f"{path}: got {text(got)}, reference {text(want)}"


def generate_body(sentence, parameters):
    return json.dumps({"inputs": sentence, "parameters": parameters}).encode("utf-8")


# --- Figures ---------------------------------------------------------------------------------

def percentile(values, q):
    """The q-th percentile (0-100) of `values`, linear between closest ranks; None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def le_key(le):
    return float("inf") if le == "+Inf" else float(le)


def histogram_difference(before, after):
    """The batches of one level, per bucket: [(label, le, batches)], not cumulative.

    `before` and `after` are /metrics scrapes; the buckets are cumulative counts of batches of
    at most `le` sentences, so a bucket's own count is its cumulative count less the previous
    bucket's, and the level's is the difference between the two scrapes.
    """
    (b_buckets, b_sum, b_count), (a_buckets, a_sum, a_count) = before, after
    rows, previous_le, previous_cumulative = [], None, 0
    for le in sorted(a_buckets, key=le_key):
        cumulative = a_buckets[le] - b_buckets.get(le, 0)
        upper = le_key(le)
        if previous_le is None:
            label = f"≤{upper:g}" if upper > 1 else f"{upper:g}"
        elif upper == float("inf"):
            label = f">{previous_le:g}"
        elif upper == previous_le + 1:
            label = f"{upper:g}"
        else:
            label = f"{previous_le + 1:g}–{upper:g}"
        rows.append({"bucket": label, "le": le, "batches": cumulative - previous_cumulative})
        previous_le, previous_cumulative = upper, cumulative
    batches = a_count - b_count
    sentences = a_sum - b_sum
    sentences = int(sentences) if float(sentences).is_integer() else sentences
    return {
        "buckets": rows,
        "batches": batches,
        "sentences": sentences,
        "mean": sentences / batches if batches else None,
    }


def histogram_text(histogram):
    parts = [f"{r['bucket']}: {r['batches']}" for r in histogram["buckets"] if r["batches"]]
    return ", ".join(parts) if parts else "–"


# --- The passes ------------------------------------------------------------------------------

def reference_pass(server, distinct, parameters, deadline):
    """(a): each distinct sentence alone, in turn; returns ({sentence: response}, figures)."""
    references, latencies, errors = {}, [], []
    conn = server.connect()
    try:
        conn.connect()  # the first request's latency is then the request's alone
    except ConnectionRefusedError:
        fail(f"cannot connect to {server.url}: the connection was refused "
             f"(is `s2s serve` running and listening there?)")
    except OSError:
        conn.close()
    started = time.monotonic()
    for sentence in distinct:
        if time.monotonic() > deadline:
            break
        sent = time.monotonic()
        try:
            status, body = server.request("POST", "/generate", generate_body(sentence, parameters),
                                          conn)
        except Refused:
            fail(f"cannot connect to {server.url}: the connection was refused "
                 f"(is `s2s serve` running and listening there?)")
        except (OSError, http.client.HTTPException) as e:
            fail(f"the reference request for {sentence!r} got no answer: {e}", 1)
        latencies.append(time.monotonic() - sent)
        text = body[:300].decode("utf-8", "replace")
        if status != 200:
            errors.append(f"{status} for {sentence!r}: {text}")
            conn.close()
            conn = server.connect()
            continue
        try:
            references[sentence] = json.loads(body)
        except ValueError:
            errors.append(f"200 but not JSON for {sentence!r}: {text}")
    wall = time.monotonic() - started
    conn.close()
    return references, {
        "requests": len(latencies),
        "of": len(distinct),
        "errors": errors,
        "wall_s": wall,
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "requests_per_s": len(latencies) / wall if wall > 0 else None,
    }


def ms(seconds):
    return None if seconds is None else seconds * 1000.0


def level_pass(server, lines, references, parameters, clients, requests, deadline):
    """(b) for one concurrency level: `requests` requests from `clients` threads."""
    lock = threading.Lock()
    state = {"next": 0, "not_sent": 0}
    results = []  # (latency_s, status or None, outcome) per request answered or lost
    examples = []  # the first few problems, for the report
    start = threading.Barrier(clients + 1)

    def take():
        """The next request's index, or None when the level is done or the deadline passed."""
        with lock:
            if state["next"] >= requests:
                return None
            if time.monotonic() > deadline:
                state["not_sent"] = requests - state["next"]
                state["next"] = requests
                return None
            index = state["next"]
            state["next"] += 1
            return index

    def record(latency, status, outcome, example=None):
        with lock:
            results.append((latency, status, outcome))
            if example and len(examples) < 5:
                examples.append(example)

    def client():
        conn = server.connect()
        try:
            conn.connect()  # before the clock starts; on failure, the first request retries
        except OSError:
            conn.close()
        start.wait()
        while (index := take()) is not None:
            sentence = lines[index % len(lines)]
            body = generate_body(sentence, parameters)
            sent = time.monotonic()
            try:
                status, answer = server.request("POST", "/generate", body, conn)
            except Exception as e:  # noqa: BLE001 - whatever broke, this request got no answer
                record(None, None, "lost", f"no answer for {sentence!r}: {type(e).__name__}: {e}")
                conn.close()
                conn = server.connect()
                continue
            latency = time.monotonic() - sent
            if status != 200:
                text = answer[:300].decode("utf-8", "replace")
                record(latency, status, "error", f"{status} for {sentence!r}: {text}")
                continue
            try:
                parsed = json.loads(answer)
            except ValueError:
                parsed = None
            if same(parsed, references[sentence]):
                record(latency, status, "ok")
            else:
                record(latency, status, "mismatch", f"mismatch for {sentence!r}: "
                       + first_difference(parsed, references[sentence]))
        conn.close()

    before = server.metrics()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    after = server.metrics()

    answered = [latency for latency, status, _ in results if status is not None]
    ok = sum(1 for *_, outcome in results if outcome == "ok")
    count = lambda outcome: sum(1 for *_, o in results if o == outcome)  # noqa: E731
    statuses = {}
    for _, status, outcome in results:
        if outcome == "error":
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "clients": clients,
        "requests": requests,
        "sent": len(results),
        "not_sent_deadline": state["not_sent"],
        "ok": ok,
        "mismatches": count("mismatch"),
        "errors": count("error"),
        "error_statuses": statuses,
        "lost": count("lost"),
        "wall_s": wall,
        "p50_ms": ms(percentile(answered, 50)),
        "p99_ms": ms(percentile(answered, 99)),
        "requests_per_s": len(answered) / wall if wall > 0 else None,
        "sentences_per_s": ok / wall if wall > 0 else None,
        "batch_size": histogram_difference(before, after),
        "examples": examples,
    }


def generate_flags(parameters):
    """--parameters as `s2s generate` flags (`num_beams` → `--num-beams 4`), and the fields skipped."""
    flags, skipped = [], []
    for name, value in parameters.items():
        if name not in GENERATE_FLAGS:
            skipped.append(name)
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        flags += ["--" + name.replace("_", "-"), str(value)]
    return flags, skipped


def generate_pass(binary, run, distinct, references, parameters, extra, deadline):
    """(c): one `s2s generate` process over the distinct sentences, timed with its model load."""
    flags, skipped = generate_flags(parameters)
    with tempfile.TemporaryDirectory(prefix="s2s-load-test-") as folder:
        path = os.path.join(folder, "inputs.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(s + "\n" for s in distinct))
        command = [binary, "generate", "--run", run, "--input", path, "--format", "jsonl",
                   *flags, *extra]
        budget = deadline - time.monotonic()
        if budget <= 0:
            return {"command": command, "skipped": "the --max-seconds deadline had passed"}
        note("$ " + shlex.join(command))
        started = time.monotonic()
        try:
            done = subprocess.run(command, capture_output=True, timeout=budget, check=False)
        except OSError as e:
            return {"command": command, "skipped": f"--s2s {binary!r} cannot be run: {e}"}
        except subprocess.TimeoutExpired:
            return {"command": command,
                    "skipped": f"stopped at the --max-seconds deadline after {budget:.0f} s"}
        wall = time.monotonic() - started
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return {"command": command, "wall_s": wall, "exit_code": done.returncode,
                "skipped": "s2s generate failed: " + (stderr[-1] if stderr else "no message")}
    # Informative only: how many best outputs equal the server's reference text (sampling
    # draws from the position in the file, so it differs from single requests by design).
    same = 0
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
            text = row["hypotheses"][0]["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            continue
        reference = references.get(row.get("source"))
        if reference is not None and reference.get("generated_text") == text:
            same += 1
    return {
        "command": command,
        "wall_s": wall,
        "sentences": len(distinct),
        "sentences_per_s": len(distinct) / wall if wall > 0 else None,
        "includes_model_load": True,
        "skipped_parameters": skipped,
        "same_text_as_server": same,
    }


# --- Report ----------------------------------------------------------------------------------

def fmt(value, digits=1):
    return "–" if value is None else f"{value:.{digits}f}"


def table(reference, levels, generate):
    rows = [
        "| clients | requests | p50 ms | p99 ms | requests/s | sentences/s | mean batch "
        "| batch sizes (sentences: batches) | mismatches | errors | lost |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
        f"| 1 (reference, sequential) | {reference['requests']}"
        + ("" if reference["requests"] == reference["of"] else f" of {reference['of']}")
        + f" | {fmt(reference['p50_ms'])} "
        f"| {fmt(reference['p99_ms'])} | {fmt(reference['requests_per_s'])} "
        f"| {fmt(reference['requests_per_s'])} | – | – | – | {len(reference['errors'])} | 0 |",
    ]
    for level in levels:
        sent = str(level["sent"])
        if level["not_sent_deadline"]:
            sent += f" of {level['requests']}"
        rows.append(
            f"| {level['clients']} | {sent} | {fmt(level['p50_ms'])} | {fmt(level['p99_ms'])} "
            f"| {fmt(level['requests_per_s'])} | {fmt(level['sentences_per_s'])} "
            f"| {fmt(level['batch_size']['mean'], 2)} | {histogram_text(level['batch_size'])} "
            f"| {level['mismatches']} | {level['errors']} | {level['lost']} |")
    text = "\n".join(rows)
    if generate and "sentences_per_s" in generate:
        text += (f"\n\n`s2s generate` (one process, {generate['sentences']} distinct sentences): "
                 f"{fmt(generate['sentences_per_s'])} sentences/s over {generate['wall_s']:.2f} s "
                 f"of wall time, model load included; {generate['same_text_as_server']} of "
                 f"{generate['sentences']} best outputs have the server's text.")
    elif generate:
        text += f"\n\n`s2s generate`: not timed ({generate['skipped']})."
    return text


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 all answered and equal to the reference; 1 mismatches, errors or "
               "lost requests; 2 bad arguments or connection refused; 3 incomplete (cut short by "
               "--max-seconds, or the s2s generate comparison failed).")
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8080 "
                        "(loopback only)")
    parser.add_argument("--inputs", required=True, metavar="FILE",
                        help="sentences, one per line (blank lines skipped)")
    parser.add_argument("--clients", default="1,8,64",
                        help="concurrency levels, comma-separated (default 1,8,64)")
    parser.add_argument("--requests", type=int, default=200, metavar="N",
                        help="requests per concurrency level (default 200)")
    parser.add_argument("--parameters", default="{}", metavar="JSON",
                        help="the `parameters` object sent with every request (default {})")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="overall deadline: nothing new is sent after it (default 600)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for one answer before counting it lost (default 120)")
    parser.add_argument("--s2s", metavar="BIN", help="also time `BIN generate` (needs --run)")
    parser.add_argument("--run", metavar="DIR", help="the run for `BIN generate --run DIR`")
    parser.add_argument("--generate-args", default="", metavar="ARGS",
                        help="more flags for `s2s generate`, e.g. '--backend ndarray'")
    parser.add_argument("--json", metavar="OUT", help="write every figure to this JSON file")
    args = parser.parse_args()
    deadline = time.monotonic() + args.max_seconds

    try:
        levels = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        fail(f"--clients must be comma-separated whole numbers, not {args.clients!r}")
    if not levels or min(levels) < 1 or max(levels) > 1024:
        fail("--clients must list levels between 1 and 1024")
    if args.requests < 1 or args.requests > 1_000_000:
        fail("--requests must be between 1 and 1000000")
    if args.max_seconds <= 0 or args.timeout <= 0:
        fail("--max-seconds and --timeout must be positive")
    if bool(args.s2s) != bool(args.run):
        fail("--s2s and --run go together")
    if args.s2s and not (os.path.isfile(args.s2s) and os.access(args.s2s, os.X_OK)):
        fail(f"--s2s {args.s2s!r} is not an executable file")
    if args.run and not os.path.isdir(args.run):
        fail(f"--run {args.run!r} is not a directory")
    try:
        parameters = json.loads(args.parameters)
    except ValueError as e:
        fail(f"--parameters is not JSON: {e}")
    if not isinstance(parameters, dict):
        fail("--parameters must be a JSON object, e.g. '{\"num_beams\": 4}'")
    try:
        with open(args.inputs, encoding="utf-8") as f:
            lines = [line.rstrip("\r\n") for line in f]
    except OSError as e:
        fail(f"cannot read --inputs: {e}")
    lines = [line for line in lines if line.strip()]
    if not lines:
        fail(f"--inputs {args.inputs} holds no sentence")
    distinct = list(dict.fromkeys(lines))
    server = Server(args.url, args.timeout)

    status, body = server.get("/health")
    if status != 200:
        fail(f"GET /health answered {status}: {body[:200]!r}", 1)
    note(f"reference pass: {len(distinct)} distinct sentences, one request each")
    references, reference = reference_pass(server, distinct, parameters, deadline)
    deadline_hit = reference["requests"] < len(distinct)
    results = []
    if reference["errors"]:
        note("the reference pass failed, so no level is run:")
        for error in reference["errors"][:5]:
            note("  " + error)
    elif deadline_hit:
        note(f"the --max-seconds deadline passed during the reference pass "
             f"({reference['requests']} of {len(distinct)} sentences); no level is run")
    else:
        for clients in levels:
            if time.monotonic() > deadline:
                deadline_hit = True
                note(f"the --max-seconds deadline ({args.max_seconds:g} s) passed: "
                     f"no more levels are run")
                break
            note(f"level: {clients} clients, {args.requests} requests")
            level = level_pass(server, lines, references, parameters, clients, args.requests,
                               deadline)
            results.append(level)
            if level["not_sent_deadline"]:
                deadline_hit = True
                note(f"the --max-seconds deadline ({args.max_seconds:g} s) passed during the "
                     f"{clients}-client level: {level['not_sent_deadline']} requests not sent")
            for example in level["examples"]:
                note("  " + example)

    generate = None
    if args.s2s and not reference["errors"]:
        generate = generate_pass(args.s2s, args.run, distinct, references, parameters,
                                 shlex.split(args.generate_args), deadline)
        if generate.get("skipped_parameters"):
            note("not passed to s2s generate (no such flag): "
                 + ", ".join(generate["skipped_parameters"]))

    print(table(reference, results, generate))
    failed = bool(reference["errors"]) or any(
        level["mismatches"] or level["errors"] or level["lost"] for level in results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({
                "url": args.url,
                "parameters": parameters,
                "inputs": {"file": args.inputs, "lines": len(lines), "distinct": len(distinct)},
                "requests_per_level": args.requests,
                "reference": reference,
                "levels": results,
                "generate": generate,
                "deadline_hit": deadline_hit,
                "failed": failed,
            }, f, indent=2, ensure_ascii=False)
            f.write("\n")
    if deadline_hit:
        print(f"\nThe --max-seconds deadline ({args.max_seconds:g} s) cut the test short: "
              f"the figures cover only the requests sent before it.")
    if failed:
        total = lambda key: sum(level[key] for level in results)  # noqa: E731
        print(f"\nFAILED: {total('mismatches')} mismatches, "
              f"{total('errors') + len(reference['errors'])} errors, {total('lost')} lost "
              f"requests.")
        sys.exit(1)
    if deadline_hit or (generate is not None and "skipped" in generate):
        sys.exit(3)


if __name__ == "__main__":
    main()
