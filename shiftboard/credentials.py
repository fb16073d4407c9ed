"""Generated secrets of the embedded stack: S3 credentials, the admin and evaluator API tokens, the token key.

Settings win when they give a value (``SHIFTBOARD_S3_ACCESS_KEY``, ``SHIFTBOARD_ADMIN_TOKEN``, ...);
otherwise the values are generated at first start and kept in ``<state_dir>/secrets`` with mode
0600, so that the CLI on the same machine finds them and nothing secret ever lives in the repository.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from shiftboard.settings import Settings


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def s3_credentials_file(settings: Settings) -> Path:
    return settings.secrets_dir / "s3.json"


def admin_token_file(settings: Settings) -> Path:
    return settings.secrets_dir / "admin-token"


def s3_credentials(settings: Settings, *, create: bool = False) -> S3Credentials | None:
    """The S3 credentials: from settings, else from the state directory (generated if ``create``)."""
    if settings.s3_access_key and settings.s3_secret_key:
        return S3Credentials(settings.s3_access_key.get_secret_value(), settings.s3_secret_key.get_secret_value())
    path = s3_credentials_file(settings)
    if path.exists():
        data = json.loads(path.read_text())
        return S3Credentials(data["access_key"], data["secret_key"])
    if not create:
        return None
    creds = S3Credentials("sb" + secrets.token_hex(9), secrets.token_urlsafe(30))
    _write_private(path, json.dumps({"access_key": creds.access_key, "secret_key": creds.secret_key}))
    return creds


def admin_token(settings: Settings, *, create: bool = False) -> str | None:
    """The admin API token: from settings, else from the state directory (generated if ``create``)."""
    return _generated(admin_token_file(settings), settings.admin_token.get_secret_value(), create=create,
                      prefix="sbt_")


def client_token(settings: Settings) -> str | None:
    """The token the CLI sends: ``SHIFTBOARD_TOKEN``, else the local admin token when readable."""
    if settings.token:
        return settings.token.get_secret_value()
    try:
        return admin_token(settings)
    except OSError:
        return None


def evaluator_token_file(settings: Settings) -> Path:
    return settings.secrets_dir / "evaluator-token"


def evaluator_token(settings: Settings, *, create: bool = False) -> str | None:
    """The evaluator API token (the worker's): from settings, else from the state directory (generated
    if ``create``). The gateway registers it with the ``evaluator`` role at every start."""
    return _generated(evaluator_token_file(settings), settings.evaluator_token.get_secret_value(), create=create,
                      prefix="sbt_")


def token_key_file(settings: Settings) -> Path:
    return settings.secrets_dir / "token-key"


def token_key(settings: Settings, *, create: bool = False) -> bytes | None:
    """The gateway's key for hashing API tokens (HMAC-SHA256), generated at first start if ``create``.

    Losing it invalidates every stored token except the gateway's own (registered again at start).
    """
    path = token_key_file(settings)
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    if not create:
        return None
    key = secrets.token_bytes(32)
    _write_private(path, key.hex() + "\n")
    return key


# ------------------------------------------------------------------ internal services of the stack

def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700: state, logs and secrets stay the owner's."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _generated(path: Path, given: str, *, create: bool, prefix: str = "") -> str | None:
    """``given`` when set, else the secret kept in ``path`` (generated there if ``create``)."""
    if given:
        return given
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    value = prefix + secrets.token_urlsafe(32)
    _write_private(path, value + "\n")
    return value


def triton_key_file(settings: Settings) -> Path:
    return settings.secrets_dir / "triton-key"


def triton_key(settings: Settings, *, create: bool = False) -> str | None:
    """The key Triton requires on every gRPC call (``SHIFTBOARD_TRITON_API_KEY``, else generated)."""
    return _generated(triton_key_file(settings), settings.triton_api_key.get_secret_value(), create=create)


def prefect_auth_file(settings: Settings) -> Path:
    return settings.secrets_dir / "prefect-auth"


def prefect_auth_string(settings: Settings, *, create: bool = False) -> str | None:
    """The Prefect API's auth string (``SHIFTBOARD_PREFECT_AUTH_STRING``, else generated)."""
    return _generated(prefect_auth_file(settings), settings.prefect_auth_string.get_secret_value(), create=create)


def seaweedfs_jwt_file(settings: Settings) -> Path:
    return settings.secrets_dir / "seaweedfs-jwt.json"


#: The JWT signing keys of the embedded SeaweedFS: security.toml sections, one key each.
SEAWEEDFS_JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")


def seaweedfs_jwt_keys(settings: Settings, *, create: bool = False) -> dict[str, str] | None:
    """The embedded SeaweedFS's JWT signing keys by security.toml section (generated if ``create``)."""
    path = seaweedfs_jwt_file(settings)
    if path.exists():
        keys = json.loads(path.read_text())
        if isinstance(keys, dict) and all(isinstance(keys.get(s), str) for s in SEAWEEDFS_JWT_SECTIONS):
            return {s: keys[s] for s in SEAWEEDFS_JWT_SECTIONS}
    if not create:
        return None
    keys = {section: secrets.token_urlsafe(32) for section in SEAWEEDFS_JWT_SECTIONS}
    _write_private(path, json.dumps(keys))
    return keys


@dataclass(frozen=True)
class TlsFiles:
    """The stack's mutual-TLS files: its CA certificate, and one certificate and key for every service.

    Every service of the embedded stack runs as the same user and reads the same secrets directory,
    so one certificate (server and client use) serves them all; the CA's key is discarded once it
    has signed it, so nobody can issue another certificate the services would accept.
    """

    ca: Path
    cert: Path
    key: Path


#: The name every certificate of the stack is issued for; clients check the server against it.
TLS_SERVER_NAME = "shiftboard-stack"
TLS_DAYS = 3650


def tls_dir(settings: Settings) -> Path:
    return settings.secrets_dir / "tls"


def stack_tls(settings: Settings, *, create: bool = False) -> TlsFiles | None:
    """The stack's TLS files in ``<secrets>/tls`` (a new CA and certificate if ``create``), else None."""
    folder = tls_dir(settings)
    files = TlsFiles(folder / "ca.crt", folder / "stack.crt", folder / "stack.key")
    if all(p.is_file() for p in (files.ca, files.cert, files.key)):
        return files
    if not create:
        return None
    ca_pem, cert_pem, key_pem = _issue_certificates()
    private_dir(settings.secrets_dir)
    private_dir(folder)
    _write_private(files.key, key_pem)
    _write_private(files.cert, cert_pem)
    _write_private(files.ca, ca_pem)  # written last: its presence says the set is complete
    return files


def _issue_certificates() -> tuple[str, str, str]:
    """(CA certificate, certificate, key) as PEM: a fresh P-256 CA that signs one certificate."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    valid = {"not_valid_before": now - datetime.timedelta(minutes=5),
             "not_valid_after": now + datetime.timedelta(days=TLS_DAYS)}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shiftboard stack CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(valid["not_valid_before"]).not_valid_after(valid["not_valid_after"])
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(TLS_SERVER_NAME), x509.DNSName("localhost"),
             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TLS_SERVER_NAME)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(valid["not_valid_before"]).not_valid_after(valid["not_valid_after"])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca.public_bytes(pem).decode(), cert.public_bytes(pem).decode(), key_pem.decode()
