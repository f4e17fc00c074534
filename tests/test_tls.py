"""TLS from cert files: the gRPC front door serves over TLS and refuses plaintext."""

from __future__ import annotations

import datetime
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import serve_grpc
from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from knowledge_service.app import Knowledge


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


async def test_grpc_over_tls(core: Knowledge, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = core.settings.model_copy(
        update={"tls_cert_file": cert, "tls_key_file": key, "grpc_host": "127.0.0.1"}
    )
    async with serve_grpc(core, settings) as serving:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        async with grpc.aio.secure_channel(f"localhost:{serving.port}", credentials) as channel:
            count = await pb_grpc.KnowledgeServiceStub(channel).CountDocuments(
                pb.CountDocumentsRequest(namespace="kb")
            )
            assert count.documents == 0
        async with serving.channel() as plain:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await pb_grpc.KnowledgeServiceStub(plain).CountDocuments(
                    pb.CountDocumentsRequest(namespace="kb"), timeout=5
                )
            assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
