#!/usr/bin/env python3
"""An independent client for the node's gRPC server: Python grpcio, no .proto files, no code
generated from them. Everything about the rollup.v1 API (services, methods, message types) is
learnt at run time through server reflection, as a third-party tool (grpcurl, Postman, an
exchange's integration) would do it.

    python3 interop/test_grpc_interop.py 127.0.0.1:50051     (or INTEROP_GRPC_ADDR)

The node must run with --devnet on an empty database. interop/run.sh starts one and runs this.
Prints one line per check and a final `N passed, M failed`; exits non-zero on any failure.
"""

import hashlib
import json
import os
import sys
import traceback

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

TIMEOUT = 10.0  # seconds, every RPC
EXPECTED_SERVICES = {"rollup.v1.Rollup", "rollup.v1.BridgeEvents", "grpc.health.v1.Health"}

# grpcio-reflection ships only the v1alpha messages and stubs. grpc.reflection.v1 uses the same
# messages with the same field numbers (only the package name differs), so the v1 call goes
# through a raw stream with the v1alpha types as (de)serializers.
V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


class Client:
    def __init__(self, addr):
        self.addr = addr
        self.channel = grpc.insecure_channel(addr)
        grpc.channel_ready_future(self.channel).result(timeout=TIMEOUT)
        self.v1alpha = reflection_pb2_grpc.ServerReflectionStub(self.channel).ServerReflectionInfo
        self.v1 = self.channel.stream_stream(
            V1_METHOD,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        self.pool = None  # descriptor pool built from reflection (test_descriptors)

    # --- reflection -------------------------------------------------------------------------

    def reflect(self, requests, v1=False):
        """Sends the requests on one reflection stream; returns the responses, in order."""
        call = self.v1 if v1 else self.v1alpha
        responses = list(call(iter(requests), timeout=TIMEOUT))
        check(len(responses) == len(requests),
              f"{len(requests)} reflection requests got {len(responses)} responses")
        for r in responses:
            if r.HasField("error_response"):
                e = r.error_response
                fail(f"reflection error {e.error_code}: {e.error_message}")
        return responses

    def list_services(self, v1=False):
        req = reflection_pb2.ServerReflectionRequest(host=self.addr, list_services="")
        (resp,) = self.reflect([req], v1=v1)
        check(resp.HasField("list_services_response"),
              f"no list_services_response in {resp.WhichOneof('message_response')}")
        return sorted(s.name for s in resp.list_services_response.service)

    def files_for_symbol(self, symbol, v1=False):
        """Serialized FileDescriptorProtos: the file defining `symbol` and, transitively, every
        file it imports (asked for by name when the server did not send them along)."""
        req = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
        (resp,) = self.reflect([req], v1=v1)
        files = {}
        pending = list(resp.file_descriptor_response.file_descriptor_proto)
        check(pending, f"no file descriptor for {symbol}")
        while pending:
            fdp = descriptor_pb2.FileDescriptorProto.FromString(pending.pop())
            if fdp.name in files:
                continue
            files[fdp.name] = fdp
            for dep in fdp.dependency:
                if dep not in files:
                    req = reflection_pb2.ServerReflectionRequest(file_by_filename=dep)
                    (r,) = self.reflect([req], v1=v1)
                    pending.extend(r.file_descriptor_response.file_descriptor_proto)
        return files

    # --- dynamic calls ----------------------------------------------------------------------

    def method(self, full_service, name):
        """A callable for the method, with message classes built from the reflected descriptors,
        and the request class."""
        check(self.pool is not None, "descriptors not loaded (test_descriptors failed)")
        svc = self.pool.FindServiceByName(full_service)
        m = svc.methods_by_name.get(name)
        check(m is not None, f"{full_service} has no method {name}")
        req_cls = message_factory.GetMessageClass(m.input_type)
        resp_cls = message_factory.GetMessageClass(m.output_type)
        path = f"/{full_service}/{name}"
        kw = dict(request_serializer=req_cls.SerializeToString,
                  response_deserializer=resp_cls.FromString)
        if m.client_streaming and m.server_streaming:
            fn = self.channel.stream_stream(path, **kw)
        elif m.server_streaming:
            fn = self.channel.unary_stream(path, **kw)
        elif m.client_streaming:
            fn = self.channel.stream_unary(path, **kw)
        else:
            fn = self.channel.unary_unary(path, **kw)
        return fn, req_cls, resp_cls

    def expect_error(self, fn, request, code):
        try:
            resp = fn(request, timeout=TIMEOUT)
        except grpc.RpcError as err:
            check(err.code() == code, f"status {err.code()} ({err.details()!r}), want {code}")
            return err
        fail(f"call succeeded ({resp}), want {code}")


def build_pool(files):
    """A fresh descriptor pool holding `files`, each added after the files it imports."""
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name):
        if name in added:
            return
        fdp = files[name]
        for dep in fdp.dependency:
            add(dep)
        pool.Add(fdp)
        added.add(name)

    for name in sorted(files):
        add(name)
    return pool


def enum_number(pool, enum_full_name, value_name):
    return pool.FindEnumTypeByName(enum_full_name).values_by_name[value_name].number


def reason_code(err):
    for key, value in err.trailing_metadata() or ():
        if key == "reason-code":
            return value
    return None


def metadata(err, key):
    for k, value in err.trailing_metadata() or ():
        if k == key:
            return value
    return None


def work_hash(chain_id, rollup, pubkey, nonce):
    """The registration proof of work's hash (docs/API.md, "Registration"), written from the
    document alone: an independent implementation of rollup_proto::work."""
    return hashlib.sha256(b"rollup/registration-work/v1" + chain_id.to_bytes(8, "little") + rollup
                          + pubkey + nonce.to_bytes(8, "little")).digest()


def leading_zero_bits(digest):
    return 256 - int.from_bytes(digest, "big").bit_length()


def solve_work(chain_id, rollup, pubkey, bits):
    nonce = 0
    while leading_zero_bits(work_hash(chain_id, rollup, pubkey, nonce)) < bits:
        nonce += 1
    return nonce


def starts_with_reason_code(details):
    """The reason code (`CODE: ...`, docs/API.md) that `details` starts with, else None."""
    code = (details or "").split(":", 1)[0]
    if code and code.replace("_", "").isalpha() and code.isupper():
        return code
    return None


# --- the checks -----------------------------------------------------------------------------

def test_list_v1alpha(c):
    names = c.list_services()
    print(f"    v1alpha lists: {', '.join(names)}")
    missing = EXPECTED_SERVICES - set(names)
    check(not missing, f"v1alpha list lacks {sorted(missing)}")


def test_list_v1(c):
    names = c.list_services(v1=True)
    print(f"    v1 lists: {', '.join(names)}")
    missing = EXPECTED_SERVICES - set(names)
    check(not missing, f"v1 list lacks {sorted(missing)}")
    # Both versions describe the same API (each may also list its own reflection service).
    app = lambda ns: {n for n in ns if not n.startswith("grpc.reflection.")}
    alpha = app(c.list_services())
    check(app(names) == alpha, f"v1 lists {sorted(app(names))}, v1alpha {sorted(alpha)}")


def test_descriptors(c):
    files = c.files_for_symbol("rollup.v1.Rollup")
    print(f"    files: {', '.join(sorted(files))}")
    c.pool = build_pool(files)
    rollup = c.pool.FindServiceByName("rollup.v1.Rollup")
    methods = {m.name for m in rollup.methods}
    for want in ("Submit", "PaymentStream", "GetStatus", "GetReceipt", "GetAccount",
                 "WatchReceipts", "Faucet"):
        check(want in methods, f"rollup.v1.Rollup lacks {want} (has {sorted(methods)})")
    ps = rollup.methods_by_name["PaymentStream"]
    check(ps.client_streaming and ps.server_streaming, "PaymentStream is not bidirectional")
    watch = c.pool.FindServiceByName("rollup.v1.BridgeEvents").methods_by_name.get("Watch")
    check(watch is not None and watch.server_streaming and not watch.client_streaming,
          "rollup.v1.BridgeEvents.Watch is not a server stream")
    # The v1 service hands out the same descriptors.
    v1_files = c.files_for_symbol("rollup.v1.Rollup", v1=True)
    check({n: f.SerializeToString() for n, f in v1_files.items()}
          == {n: f.SerializeToString() for n, f in files.items()},
          "v1 and v1alpha reflection return different descriptors")


def test_get_status(c):
    fn, req_cls, _ = c.method("rollup.v1.Rollup", "GetStatus")
    status = fn(req_cls(), timeout=TIMEOUT)
    print(f"    chain_id={status.chain_id} devnet={status.devnet} head_block={status.head_block}"
          f" rollup_address=0x{status.rollup_address.hex()}")
    check(status.devnet is True, "GetStatus: devnet is not true")
    check(status.chain_id != 0, "GetStatus: chain_id is not set")
    check(len(status.rollup_address) == 20,
          f"GetStatus: rollup_address has {len(status.rollup_address)} bytes, want 20")
    check(status.now > 1_600_000_000, f"GetStatus: now={status.now} is not a unix time")


def test_health(c):
    stub = health_pb2_grpc.HealthStub(c.channel)
    for service in ("", "rollup.v1.Rollup"):
        resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        check(resp.status == health_pb2.HealthCheckResponse.SERVING,
              f"Health/Check({service!r}) = "
              f"{health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)}, want SERVING")
    err = c.expect_error(stub.Check, health_pb2.HealthCheckRequest(service="no.such.Service"),
                         grpc.StatusCode.NOT_FOUND)
    print(f"    unknown service: {err.code().name}")


def test_submit_garbage(c):
    fn, req_cls, _ = c.method("rollup.v1.Rollup", "Submit")
    err = c.expect_error(fn, req_cls(raw=b"\xffnot a transaction"),
                         grpc.StatusCode.INVALID_ARGUMENT)
    print(f"    garbage raw: {err.code().name} {err.details()!r}")
    check(err.details().startswith("MALFORMED"), f"details {err.details()!r} do not start with MALFORMED")
    check(reason_code(err) == "MALFORMED", f"reason-code metadata {reason_code(err)!r}, want MALFORMED")


def test_submit_empty(c):
    fn, req_cls, _ = c.method("rollup.v1.Rollup", "Submit")
    err = c.expect_error(fn, req_cls(), grpc.StatusCode.INVALID_ARGUMENT)
    print(f"    empty request: {err.code().name} {err.details()!r}")
    code = starts_with_reason_code(err.details())
    check(code, f"details {err.details()!r} do not start with a reason code")
    check(reason_code(err) == code, f"reason-code metadata {reason_code(err)!r}, details {code!r}")


def test_stream_garbage(c):
    # On PaymentStream a bad message gives a rejected receipt and the stream goes on.
    fn, req_cls, _ = c.method("rollup.v1.Rollup", "PaymentStream")
    rejected = enum_number(c.pool, "rollup.v1.TxStatus", "TX_STATUS_REJECTED")
    receipts = list(fn(iter([req_cls(raw=b"\x01"), req_cls(raw=b"\xff" * 9)]), timeout=TIMEOUT))
    check(len(receipts) == 2, f"2 requests got {len(receipts)} receipts")
    for r in receipts:
        check(r.status == rejected, f"receipt status {r.status}, want TX_STATUS_REJECTED")
        check(r.reason_code == "MALFORMED", f"receipt reason_code {r.reason_code!r}, want MALFORMED")
    print(f"    receipts: {[r.reason_code for r in receipts]}")


def test_registration_work(c):
    # A Register needs a proof of work (SubmitRequest.work_nonce) of the bits the status names.
    # The key and a well-formed signature come from the protocol vectors (docs/vectors); the
    # signature is for another deployment, so with valid work the node goes on to verify it
    # and answers BAD_SIGNATURE: the work was accepted, by an implementation of its own.
    status_fn, status_req, _ = c.method("rollup.v1.Rollup", "GetStatus")
    status = status_fn(status_req(), timeout=TIMEOUT)
    bits = status.registration_work_bits
    check(bits > 0, f"GetStatus: registration_work_bits = {bits}; interop/run.sh asks for 16")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "docs", "vectors", "state-v1.json")) as f:
        reg = json.load(f)["transactions"]["register"]["fields"]
    pubkey = bytes.fromhex(reg["pubkey"][2:])
    fn, req_cls, _ = c.method("rollup.v1.Rollup", "Submit")
    register_cls = message_factory.GetMessageClass(c.pool.FindMessageTypeByName("rollup.v1.Register"))

    def request(nonce):
        return req_cls(register=register_cls(public_key=pubkey, valid_until=status.now + 600,
                                             signature=bytes.fromhex(reg["signature"][2:])),
                       work_nonce=nonce)

    without = next(n for n in range(1000)
                   if leading_zero_bits(work_hash(status.chain_id, status.rollup_address, pubkey, n))
                   < bits)
    err = c.expect_error(fn, request(without), grpc.StatusCode.RESOURCE_EXHAUSTED)
    print(f"    without work: {err.code().name} {err.details()!r}")
    check(metadata(err, "limit") == "REGISTRATION_WORK_REQUIRED",
          f"limit metadata {metadata(err, 'limit')!r}, want REGISTRATION_WORK_REQUIRED")
    check(reason_code(err) == "RESOURCE_EXHAUSTED", f"reason-code metadata {reason_code(err)!r}")
    nonce = solve_work(status.chain_id, status.rollup_address, pubkey, bits)
    receipt = fn(request(nonce), timeout=TIMEOUT)
    print(f"    with work (nonce {nonce}, {bits} bits): {receipt.reason_code}")
    check(receipt.reason_code == "BAD_SIGNATURE",
          f"with valid work the node verifies the signature (BAD_SIGNATURE), got "
          f"{receipt.reason_code!r}: {receipt.message!r}")


def test_get_receipt_short_id(c):
    fn, req_cls, _ = c.method("rollup.v1.Rollup", "GetReceipt")
    err = c.expect_error(fn, req_cls(tx_id=b"\x01\x02\x03"), grpc.StatusCode.INVALID_ARGUMENT)
    print(f"    3-byte id: {err.code().name} {err.details()!r}")
    check(starts_with_reason_code(err.details()),
          f"details {err.details()!r} do not start with a reason code")


def test_get_receipt_unknown(c):
    fn, req_cls, _ = c.method("rollup.v1.Rollup", "GetReceipt")
    err = c.expect_error(fn, req_cls(tx_id=b"\x00" * 32), grpc.StatusCode.NOT_FOUND)
    print(f"    unknown id: {err.code().name} {err.details()!r}")
    check(err.details().startswith("UNKNOWN_TRANSACTION"),
          f"details {err.details()!r} do not start with UNKNOWN_TRANSACTION")


def test_get_account_unknown(c):
    fn, req_cls, _ = c.method("rollup.v1.Rollup", "GetAccount")
    err = c.expect_error(fn, req_cls(index=0xFFFFFFFF), grpc.StatusCode.NOT_FOUND)
    print(f"    unknown account: {err.code().name} {err.details()!r}")
    check(err.details().startswith("UNKNOWN_ACCOUNT"),
          f"details {err.details()!r} do not start with UNKNOWN_ACCOUNT")


TESTS = [
    test_list_v1alpha,
    test_list_v1,
    test_descriptors,
    test_get_status,
    test_health,
    test_submit_garbage,
    test_submit_empty,
    test_stream_garbage,
    test_registration_work,
    test_get_receipt_short_id,
    test_get_receipt_unknown,
    test_get_account_unknown,
]


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("INTEROP_GRPC_ADDR", "127.0.0.1:50051")
    print(f"gRPC interop against {addr} (grpcio {grpc.__version__})")
    try:
        client = Client(addr)
    except grpc.FutureTimeoutError:
        print(f"FAIL connect: no gRPC server on {addr} within {TIMEOUT} s")
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    for test in TESTS:
        try:
            test(client)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAIL {test.__name__}: {exc}")
            if not isinstance(exc, AssertionError):
                traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"ok   {test.__name__}")
    client.channel.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
