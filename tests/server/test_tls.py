"""TLS on a real server (issue 15): a client with the CA connects, a plain-text one does not, and client
certificates are required when the server names a client CA. Certificates are made by the ``openssl`` CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from clients import SsaldClient, Unauthenticated, Unavailable
from clients.cli import main
from server.options import Security
from tests.server.helpers import running_server

TOKEN = "tls-token-3c7d9e1f20"
TIMEOUT = 10.0


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _signed(name: str, subject: str, extensions: str, cwd: Path) -> None:
    """``name.key`` and ``name.crt``: an EC key and a one-day certificate signed by ``ca``."""
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key",
             "-subj", subject, "-out", f"{name}.csr", cwd=cwd)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by it."""
    out = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=ssald test CA", cwd=out)  # fmt: skip
    _signed("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\n", out)
    _signed("client", "/CN=astronomer", "extendedKeyUsage=clientAuth\n", out)
    return out


@pytest.fixture(scope="module")
def tls_server(db, pki):
    security = Security(token=TOKEN, auth="all", tls_cert=pki / "server.crt", tls_key=pki / "server.key")
    with running_server(db[0], security=security) as address:
        yield address


@pytest.fixture(scope="module")
def mtls_server(db, pki):
    security = Security(tls_cert=pki / "server.crt", tls_key=pki / "server.key", tls_client_ca=pki / "ca.crt")
    with running_server(db[0], security=security) as address:
        yield address


def test_a_client_with_the_ca_and_token_connects(tls_server, pki) -> None:
    with SsaldClient(tls_server, timeout=TIMEOUT, token=TOKEN, ca_file=pki / "ca.crt") as client:
        assert client.stats()["n_objects"] == 50
    with SsaldClient(tls_server, timeout=TIMEOUT, ca_file=pki / "ca.crt") as client, pytest.raises(Unauthenticated):
        client.stats()


def test_a_plain_text_client_cannot_talk_to_a_tls_server(tls_server) -> None:
    with SsaldClient(tls_server, timeout=TIMEOUT, token=TOKEN) as client, pytest.raises(Unavailable):
        client.stats()


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_server, pki) -> None:
    with SsaldClient(tls_server, timeout=TIMEOUT, token=TOKEN, ca_file=pki / "client.crt") as client:
        with pytest.raises(Unavailable):
            client.stats()


def test_client_certificates_are_required_with_a_client_ca(mtls_server, pki) -> None:
    with SsaldClient(mtls_server, timeout=TIMEOUT, ca_file=pki / "ca.crt") as client, pytest.raises(Unavailable):
        client.stats()
    certificate = {"client_cert": pki / "client.crt", "client_key": pki / "client.key"}
    with SsaldClient(mtls_server, timeout=TIMEOUT, ca_file=pki / "ca.crt", **certificate) as client:
        assert client.stats()["n_objects"] == 50


def test_the_command_line_takes_the_token_file_and_ca_file(tls_server, pki, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("SSALD_TOKEN", raising=False)
    monkeypatch.delenv("SSALD_TOKEN_FILE", raising=False)
    (tmp_path / "token").write_text(TOKEN + "\n")
    argv = ["anomalies", "--server", tls_server, "--ca-file", str(pki / "ca.crt"), "-n", "3"]
    assert main([*argv, "--token-file", str(tmp_path / "token")]) == 0
    assert capsys.readouterr().out.startswith("rank")  # the table (empty: this table has no density scores)

    assert main(argv) == 1
    assert "ssald anomalies: UNAUTHENTICATED: Anomalies needs a bearer token" in capsys.readouterr().err

    monkeypatch.setenv("SSALD_TOKEN", TOKEN)
    assert main(argv) == 0
    capsys.readouterr()

    assert main([*argv, "--token-file", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert "cannot read the token file" in err and "missing" in err and TOKEN not in err
