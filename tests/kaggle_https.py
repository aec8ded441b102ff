"""A fake Kaggle API over real HTTPS on 127.0.0.1, for running the unmodified ``kaggle`` client.

kaggle 2.2.5 always talks to ``https://api.kaggle.com`` (and to the storage host its answers
name), but honours ``HTTPS_PROXY`` and ``REQUESTS_CA_BUNDLE``. :class:`Proxy` answers
``CONNECT`` for any host by tunnelling to :class:`FakeKaggle`, a threaded HTTPS server whose
certificate (for api.kaggle.com, www.kaggle.com, storage.googleapis.com) is signed by a CA
made by :func:`make_pki` at test time. Each endpoint follows a ``plan``: a list of
behaviours used one per request, the last one repeating.
"""

from __future__ import annotations

import datetime
import http.server
import io
import json
import select
import socket
import socketserver
import ssl
import struct
import threading
import zipfile
from pathlib import Path

STORAGE = "https://storage.googleapis.com"
HOSTS = ("api.kaggle.com", "www.kaggle.com", "storage.googleapis.com")


def make_pki(folder: Path, hosts: tuple[str, ...] = HOSTS) -> dict[str, Path]:
    """A test CA and a leaf certificate for ``hosts`` signed by it: {ca, cert, key} PEM paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def build(subject, issuer, public_key, signing_key, extensions):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build(
        name("pipeline test CA"),
        name("pipeline test CA"),
        ca_key.public_key(),
        ca_key,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            ),
            (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
        ],
    )
    leaf = build(
        name(hosts[0]),
        ca.subject,
        leaf_key.public_key(),
        ca_key,
        [
            (x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), False),
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
        ],
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"ca": folder / "ca.pem", "cert": folder / "leaf.pem", "key": folder / "leaf.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def zip_bytes(members: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return buffer.getvalue()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeKaggle, context: ssl.SSLContext):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake, self.context = fake, context

    def finish_request(self, request, client_address):
        request.settimeout(30)
        if self.fake.tls_hang:  # accept the connection, never start TLS
            self.fake.stop.wait(60)
            return
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:  # e.g. the client does not trust the CA
            self.fake.tls_errors.append(str(exc))
            return
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        pass  # a client that hangs up mid-request is part of the tests


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self._serve()

    def do_GET(self):
        self._serve()

    def do_PUT(self):
        self._serve()

    def _serve(self):
        fake: FakeKaggle = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        endpoint = (
            path.rsplit("/", 1)[-1]
            if path.startswith("/v1/")
            else "storage"
            if path.startswith("/data/")
            else "upload"
            if path.startswith("/upload/")
            else path
        )
        fake.calls.append((self.command, endpoint, self.headers.get("Authorization"), body))
        action = fake.next_action(endpoint)
        if action == "hang":  # accept, read the request, never answer
            fake.stop.wait(60)
            self.close_connection = True
            return
        if action == "reset":  # RST instead of an answer
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        status, headers = (
            (action, {}) if isinstance(action, int) else action if isinstance(action, tuple) else (200, {})
        )
        if status != 200:
            return self._send(
                status,
                json.dumps({"code": status, "message": f"fake {status}"}).encode(),
                {"Content-Type": "application/json", **headers},
            )
        if endpoint == "DownloadDataFiles":
            competition = json.loads(body or b"{}").get("competitionName", "x")
            return self._send(302, b"", {"Location": f"{STORAGE}/data/{competition}.zip?sig=s"})
        if endpoint == "storage":
            return self._storage(fake, action)
        answers = {
            "StartSubmissionUpload": {"token": "blob-token", "createUrl": f"{STORAGE}/upload/1"},
            "CreateSubmission": {"message": "Successfully submitted", "ref": 7},
            "ListSubmissions": None,  # the next of submission_states, below
            "IntrospectToken": {"active": True, "username": "someone"},
        }  # KAGGLE_API_TOKEN
        if endpoint == "upload":
            return self._send(200, b"", {})
        if endpoint not in answers:
            return self._send(404, b"{}", {"Content-Type": "application/json"})
        if endpoint == "ListSubmissions":
            answers[endpoint] = {"submissions": [fake.next_submission()]}
        self._send(200, json.dumps(answers[endpoint]).encode(), {"Content-Type": "application/json"})

    def _storage(self, fake, action):
        data = fake.archive
        if action == "truncate":  # announce the whole archive, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/zip")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if action == "trickle":  # one byte every fake.trickle_every seconds: never idle long
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.flush()
            for byte in data:
                if fake.stop.wait(fake.trickle_every):
                    break
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:  # the client hung up
                    break
            self.close_connection = True
            return
        if action == "stall":  # headers, then nothing
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.flush()
            fake.stop.wait(60)
            self.close_connection = True
            return
        self._send(200, data, {"Content-Type": "application/zip"})

    def _send(self, status: int, data: bytes, headers: dict):
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeKaggle:
    """The fake API and storage host. ``plan[endpoint]``: behaviours, one per request, the
    last repeating; a behaviour is "ok", an HTTP status, ``(status, headers)``, "hang",
    "reset", or for "storage" also "truncate", "stall" and "trickle" (a byte every
    ``trickle_every`` seconds). ``submission_states``: changes
    to ``submission`` that ListSubmissions shows, one per request, the last repeating. ``calls``: (method, endpoint,
    Authorization header, body) per request. ``tls_hang``: accept connections, never start TLS."""

    def __init__(self, pki: dict[str, Path], archive: bytes):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki["cert"], pki["key"])
        self.archive, self.plan, self.calls, self.tls_errors = archive, {}, [], []
        self.tls_hang = False
        self.submission = {
            "ref": 7,
            "date": "2024-05-01T12:00:00Z",
            "description": "tfidf+lr",
            "fileName": "ensemble.csv",
            "publicScore": "0.98123",
            "privateScore": "",
            "status": "COMPLETE",
        }
        self.submission_states: list[dict] = []
        self.trickle_every = 0.2
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.server = _Server(self, context)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_action(self, endpoint: str):
        with self._lock:
            steps = self.plan.get(endpoint) or ["ok"]
            return steps.pop(0) if len(steps) > 1 else steps[0]

    def next_submission(self) -> dict:
        """``submission`` updated by the next of ``submission_states`` (the last repeating)."""
        with self._lock:
            states = self.submission_states
            update = (states.pop(0) if len(states) > 1 else states[0]) if states else {}
        return {**self.submission, **update}

    def count(self, endpoint: str) -> int:
        return sum(1 for call in self.calls if call[1] == endpoint)

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


class _ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self):
        proxy: Proxy = self.server.proxy
        client = self.request
        client.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        proxy.received += head
        request_line = head.split(b"\r\n", 1)[0].decode("latin1")
        proxy.connects.append(request_line)
        if proxy.hang:  # read the CONNECT, never answer it
            proxy.stop.wait(60)
            return
        if not request_line.startswith("CONNECT "):
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        upstream = socket.create_connection(("127.0.0.1", proxy.target_port), timeout=30)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        rest = head.split(b"\r\n\r\n", 1)[1]
        if rest:
            upstream.sendall(rest)
        with upstream:
            sockets = [client, upstream]
            while not proxy.stopped:
                readable, _, _ = select.select(sockets, [], [], 0.5)
                for sock in readable:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    if sock is client:
                        proxy.received += data
                    try:
                        (upstream if sock is client else client).sendall(data)
                    except OSError:
                        return


class Proxy:
    """An HTTP proxy on 127.0.0.1 that tunnels every CONNECT to ``target_port``; ``received``
    holds every byte the client sent it (what a network observer would see). ``hang``: read
    each CONNECT and never answer it."""

    def __init__(self, target_port: int):
        self.target_port, self.received, self.connects, self.stopped = target_port, bytearray(), [], False
        self.hang, self.stop = False, threading.Event()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ProxyHandler)
        self.server.daemon_threads = True
        self.server.proxy = self
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.stopped = True
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
