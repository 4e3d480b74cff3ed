"""TLS is one setting away: a real uvicorn server started with the options ``shoprec serve``
derives from the settings answers over HTTPS with a self-signed certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoprec.cli import uvicorn_options
from shoprec.errors import ConfigError
from shoprec.http.app import create_app
from shoprec.settings import Settings


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_serve_over_tls_with_a_certificate_file(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    settings = Settings.load(
        environ={}, data_dir=tmp_path, port=0, ssl_certfile=cert_file, ssl_keyfile=key_file, log_level="warning"
    )
    options = uvicorn_options(settings)
    assert options["ssl_certfile"] == str(cert_file) and options["ssl_keyfile"] == str(key_file)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), lifespan="on", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)  # waiting on a real thread's start
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        trust = ssl.create_default_context(cafile=str(cert_file))
        with httpx.Client(verify=trust, timeout=10) as client:
            r = client.get(f"https://127.0.0.1:{port}/healthz")
            assert r.status_code == 200 and r.json()["status"] == "ok"
        with httpx.Client(timeout=10) as untrusting, pytest.raises(httpx.ConnectError):
            untrusting.get(f"https://127.0.0.1:{port}/healthz")  # the system CAs do not know this cert
        with httpx.Client(timeout=10) as plain, pytest.raises(httpx.HTTPError):
            plain.get(f"http://127.0.0.1:{port}/healthz")  # no plain HTTP on the TLS port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_tls_settings_go_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ssl_certfile and ssl_keyfile"):
        Settings.load(environ={}, ssl_certfile=tmp_path / "cert.pem")
