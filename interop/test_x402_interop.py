#!/usr/bin/env python3
"""x402 interoperability: the official resource-server middleware (npm @x402/express, pinned in
interop/x402/package.json) protects a route and asks the rollup node's facilitator to verify and
settle; our Rust client (`rollup fetch`, the SDK's X402Payer) pays it.

    python3 interop/test_x402_interop.py GRPC_ADDR HTTP_ADDR RUST_BIN_DIR API_PORT

The node must run with --devnet. interop/run.sh starts one, installs the npm packages and runs
this. Prints one line per check and a final `N passed, M failed`; exits non-zero on any failure.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

GRPC, HTTP, BIN, API_PORT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
HERE = os.path.dirname(os.path.abspath(__file__))
PRICE = 1000
TIMEOUT = 30


def rollup(*args, check=True):
    """Runs the `rollup` wallet with --json; returns (exit code, last JSON line or None, stderr)."""
    p = subprocess.run(
        [os.path.join(BIN, "rollup"), "--endpoint", f"http://{GRPC}", "--json", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if check and p.returncode != 0:
        raise AssertionError(f"rollup {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    return p.returncode, (json.loads(lines[-1]) if lines else None), p.stderr


def http_get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def header(headers, name):
    for k, v in headers.items():
        if k.lower() == name:
            return json.loads(base64.b64decode(v))
    return None


def balance(index):
    return rollup("balance", "--account", str(index))[1]["balance"]


def main():
    work = tempfile.mkdtemp(prefix="x402-interop-")
    results = []

    def check(name, fn):
        try:
            fn()
            results.append(True)
            print(f"ok   {name}", flush=True)
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            results.append(False)
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()

    # Two agents: a payer with funds, a payee that runs the paid API.
    keys = {}
    for who in ("payer", "payee"):
        path = os.path.join(work, f"{who}.json")
        rollup("keygen", "--out", path)
        keys[who] = rollup("register", "--key", path)[1]["index"]
    rollup("faucet", "--account", str(keys["payer"]), "--amount", "10000")
    payer_key = os.path.join(work, "payer.json")

    with urllib.request.urlopen(f"http://{HTTP}/x402/supported", timeout=TIMEOUT) as r:
        kind = json.load(r)["kinds"][0]
    env = dict(
        os.environ,
        FACILITATOR_URL=f"http://{HTTP}/x402",
        NETWORK=kind["network"],
        ASSET=kind["extra"]["asset"],
        PAY_TO=str(keys["payee"]),
        PRICE=str(PRICE),
        PORT=str(API_PORT),
    )
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen(
        ["node", os.path.join(HERE, "x402", "server.mjs")], env=env, stdout=log, stderr=log
    )
    api = f"http://127.0.0.1:{API_PORT}"
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            if server.poll() is not None:
                raise SystemExit(f"x402 interop: the npm server exited: {open(log.name).read()}")
            try:
                if http_get(f"{api}/free")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("x402 interop: the npm server did not start")
            time.sleep(0.2)

        def unpaid_is_402_with_our_terms():
            status, headers, _ = http_get(f"{api}/weather")
            assert status == 402, status
            required = header(headers, "payment-required")
            assert required["x402Version"] == 2, required
            [terms] = required["accepts"]
            assert terms["scheme"] == "exact" and terms["network"] == kind["network"], terms
            assert terms["payTo"] == str(keys["payee"]) and terms["amount"] == str(PRICE), terms

        def rust_client_pays_through_the_official_middleware():
            before = balance(keys["payer"])
            _, out, _ = rollup("fetch", f"{api}/weather", "--key", payer_key, "--max-amount", "1000")
            assert out["status"] == 200, out
            assert json.loads(out["body"])["weather"] == "sunny", out
            s = out["settlement"]
            assert s["success"] and s["network"] == kind["network"], s
            assert s["transaction"].startswith("0x") and len(s["transaction"]) == 66, s
            # The settled transaction is on the rollup, and moved exactly the price.
            with urllib.request.urlopen(f"http://{HTTP}/v1/txs/{s['transaction']}") as r:
                tx = json.load(r)["tx"]
            assert tx["to"] == keys["payee"] and tx["amount"] == PRICE, tx
            assert balance(keys["payer"]) == before - PRICE
            assert balance(keys["payee"]) == PRICE

        def over_the_cap_is_not_paid():
            before = balance(keys["payer"])
            code, _, err = rollup(
                "fetch", f"{api}/weather", "--key", payer_key, "--max-amount", "999", check=False
            )
            assert code != 0 and "per-payment cap" in err, (code, err)
            assert balance(keys["payer"]) == before

        def a_forged_payment_is_refused_by_our_facilitator():
            # Mallory's key claiming the payer's account: `rollup fetch` signs a real transfer
            # from the payer with the wrong key. The official middleware asks our /verify,
            # which refuses it with the signature reason; the route is not served and nothing
            # moves.
            mallory = os.path.join(work, "mallory.json")
            rollup("keygen", "--out", mallory)
            with open(mallory) as f:
                forged = json.load(f)
            forged["account_index"] = keys["payer"]
            with open(mallory, "w") as f:
                json.dump(forged, f)
            before = balance(keys["payer"])
            code, _, err = rollup(
                "fetch", f"{api}/weather", "--key", mallory, "--max-amount", "1000", check=False
            )
            assert code != 0, code
            assert "invalid_exact_rollup_payload_signature" in err, err
            assert balance(keys["payer"]) == before

        check("x402: unpaid request gets 402 with the rollup's exact terms", unpaid_is_402_with_our_terms)
        check(
            "x402: rollup fetch pays through @x402/express and our /verify + /settle",
            rust_client_pays_through_the_official_middleware,
        )
        check("x402: a price over --max-amount is not paid", over_the_cap_is_not_paid)
        check("x402: a forged payment is refused and moves nothing", a_forged_payment_is_refused_by_our_facilitator)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        if not all(results):
            print(open(log.name).read(), file=sys.stderr)

    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
