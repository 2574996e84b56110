"""The environment botocore honours, honoured by both transports: HTTPS_PROXY / HTTP_PROXY /
NO_PROXY (CONNECT tunnels for https), AWS_CA_BUNDLE and the config file's ``ca_bundle``; and
IPv6 literal endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials

from notifier.aws import RequestNotSentError, SESv2Client
from notifier.aws.rawhttp import RawHttpTransport
from notifier.aws.transport import HttpTransport

from .servers import http_response, read_http_head

PARAMS: dict[str, Any] = {
    "FromEmailAddress": "notifications@example.com",
    "Destination": {"ToAddresses": ["user-1@example.com"]},
    "Content": {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
}

pytestmark = pytest.mark.parametrize("transport", ["raw", "aiohttp"])


@dataclass
class Pki:
    ca_file: Path
    server_ctx: ssl.SSLContext


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throw-away CA and a server certificate for 127.0.0.1 it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notifier test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("pki")
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "server.pem", d / "server.key")
    return Pki(d / "ca.pem", ctx)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """GIVEN no proxy or CA settings other than those a test sets, and an empty config file."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    (tmp_path / "config").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))


@dataclass
class Seen:
    """What a test server saw: request lines and lower-cased headers, one entry per request."""

    lines: list[bytes] = field(default_factory=list)
    headers: list[dict[bytes, bytes]] = field(default_factory=list)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        line, headers = await read_http_head(reader)
        seen.lines.append(line)
        seen.headers.append(headers)
        writer.write(http_response())
        await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def origin(
    seen: Seen, ctx: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> AsyncIterator[int]:
    """An HTTP(S) server answering every request with a MessageId; yields its port."""
    server = await asyncio.start_server(lambda r, w: _answer(r, w, seen), host, 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def proxy(seen: Seen, *, refuse: bool = False) -> AsyncIterator[int]:
    """An HTTP proxy: CONNECT tunnels (or 407 when ``refuse``), absolute-form requests answered
    directly; yields its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line, *rest = head.split(b"\r\n")
        seen.lines.append(line)
        seen.headers.append(
            {k.strip().lower(): v.strip() for k, _, v in (h.partition(b":") for h in rest if h)}
        )
        if not line.startswith(b"CONNECT "):
            length = int(seen.headers[-1].get(b"content-length", b"0"))
            await reader.readexactly(length)
            writer.write(http_response(b'{"MessageId":"via-proxy"}'))
            await writer.drain()
            writer.close()
            return
        if refuse:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        host, _, port = line.split(b" ")[1].rpartition(b":")
        up_reader, up_writer = await asyncio.open_connection(host.decode(), int(port))
        writers.extend((writer, up_writer))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def handle_tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handle(reader, writer)
        finally:
            tasks.discard(task)

    tasks: set[asyncio.Task[Any]] = set()
    writers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(handle_tracked, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for w in writers:
            w.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def _client(url: str, transport: str) -> SESv2Client:
    return SESv2Client(
        region_name="us-east-1",
        endpoint_url=url,
        credentials=Credentials("a", "b"),
        transport=transport,  # type: ignore[arg-type]
        connect_timeout=5.0,
        read_timeout=5.0,
    )


async def _send(url: str, transport: str) -> str:
    async with _client(url, transport) as client:
        return str((await client.send_email(**PARAMS))["MessageId"])


def test_https_proxy_tunnels_with_the_ca_bundle(
    transport: str, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an HTTPS endpoint whose certificate only AWS_CA_BUNDLE trusts, behind HTTPS_PROXY
    # with credentials
    at_proxy, at_origin = Seen(), Seen()
    monkeypatch.setenv("AWS_CA_BUNDLE", str(pki.ca_file))

    async def scenario() -> str:
        async with origin(at_origin, pki.server_ctx) as port, proxy(at_proxy) as proxy_port:
            monkeypatch.setenv("HTTPS_PROXY", f"http://user:s3cret@127.0.0.1:{proxy_port}")
            result = await _send(f"https://127.0.0.1:{port}", transport)
            assert at_proxy.lines == [f"CONNECT 127.0.0.1:{port} HTTP/1.1".encode()]
            return result

    # WHEN sending
    # THEN the request went through a CONNECT tunnel, with the proxy's Basic credentials, to
    # the origin, verified against the bundle
    assert asyncio.run(scenario()) == "m"
    assert at_proxy.headers[0][b"proxy-authorization"] == b"Basic dXNlcjpzM2NyZXQ="
    assert at_origin.lines == [b"POST /v2/email/outbound-emails HTTP/1.1"]
    assert b"proxy-authorization" not in at_origin.headers[0]


def test_without_the_ca_bundle_tls_fails_as_not_sent(transport: str, pki: Pki) -> None:
    # GIVEN an HTTPS endpoint with a certificate no default CA trusts, and no AWS_CA_BUNDLE
    at_origin = Seen()

    async def scenario() -> str:
        async with origin(at_origin, pki.server_ctx) as port:
            return await _send(f"https://127.0.0.1:{port}", transport)

    # WHEN sending THEN verification fails before the request: not sent, and nothing arrived
    with pytest.raises(RequestNotSentError):
        asyncio.run(scenario())
    assert at_origin.lines == []


def test_unreadable_ca_bundle_is_not_sent(transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN AWS_CA_BUNDLE naming a file that does not exist
    monkeypatch.setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem")
    # WHEN sending to an https endpoint THEN the failure is typed: nothing was sent
    with pytest.raises(RequestNotSentError) as info:
        asyncio.run(_send("https://127.0.0.1:9", transport))
    assert isinstance(info.value.__cause__, OSError)


def test_config_file_ca_bundle_is_honoured(
    transport: str, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the CA bundle named by the shared config file's ca_bundle (no env variable)
    (tmp_path / "config").write_text(f"[default]\nca_bundle = {pki.ca_file}\n")
    at_origin = Seen()

    async def scenario() -> str:
        async with origin(at_origin, pki.server_ctx) as port:
            return await _send(f"https://127.0.0.1:{port}", transport)

    # WHEN sending THEN the endpoint's certificate is trusted
    assert asyncio.run(scenario()) == "m"
    assert len(at_origin.lines) == 1


def test_http_proxy_gets_absolute_form_requests(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a plain-HTTP endpoint and HTTP_PROXY (a bare host:port, as botocore accepts)
    at_proxy = Seen()

    async def scenario() -> str:
        async with proxy(at_proxy) as proxy_port:
            monkeypatch.setenv("HTTP_PROXY", f"127.0.0.1:{proxy_port}")
            return await _send("http://email.example.invalid:8080", transport)

    # WHEN sending THEN the proxy receives the request in absolute form and answers it
    assert asyncio.run(scenario()) == "via-proxy"
    assert at_proxy.lines == [
        b"POST http://email.example.invalid:8080/v2/email/outbound-emails HTTP/1.1"
    ]


def test_no_proxy_bypasses_the_proxy(transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN HTTP_PROXY set, and NO_PROXY naming the endpoint's host
    at_proxy, at_origin = Seen(), Seen()

    async def scenario() -> str:
        async with origin(at_origin) as port, proxy(at_proxy) as proxy_port:
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
            monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
            return await _send(f"http://127.0.0.1:{port}", transport)

    # WHEN sending THEN the request goes straight to the endpoint
    assert asyncio.run(scenario()) == "m"
    assert at_proxy.lines == []
    assert len(at_origin.lines) == 1


def test_proxy_refusing_the_tunnel_is_not_sent(
    transport: str, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a proxy that refuses CONNECT (407)
    at_proxy = Seen()

    async def scenario() -> str:
        async with proxy(at_proxy, refuse=True) as proxy_port:
            monkeypatch.setenv("HTTPS_PROXY", f"http://user:s3cret@127.0.0.1:{proxy_port}")
            return await _send("https://127.0.0.1:9", transport)

    # WHEN sending THEN nothing was sent, and the proxy password is not in the error
    with pytest.raises(RequestNotSentError) as info:
        asyncio.run(scenario())
    assert "s3cret" not in str(info.value)
    assert len(at_proxy.lines) == 1


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_literal_endpoint(transport: str) -> None:
    # GIVEN an endpoint given as an IPv6 literal
    at_origin = Seen()

    async def scenario() -> tuple[str, int]:
        async with origin(at_origin, host="::1") as port:
            url = f"http://[::1]:{port}"
            result = await _send(url, transport)
            # the transport alone (no signed Host header) brackets the literal too
            cls = RawHttpTransport if transport == "raw" else HttpTransport
            bare = cls(url)
            try:
                status, _, _ = await bare.post(url + "/x", {}, b"{}", "Test")
            finally:
                await bare.close()
            return result, status

    # WHEN sending THEN it connects and sends the bracketed Host header
    assert asyncio.run(scenario()) == ("m", 200)
    port = at_origin.headers[0][b"host"].rpartition(b":")[2].decode()
    assert [h[b"host"] for h in at_origin.headers] == [f"[::1]:{port}".encode()] * 2
