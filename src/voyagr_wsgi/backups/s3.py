"""The S3 store (boto3): SSE by default, multipart with an explicit TransferConfig, checked after.

Enable with ``S3_BACKUP_ENABLED=true``, ``S3_BUCKET``, optionally ``S3_PREFIX``,
``S3_REGION``, ``S3_ENDPOINT_URL`` (S3-compatible services; add
``S3_CHECKSUM_WHEN_REQUIRED=true`` if the service rejects boto3's default CRC checksums) and
``S3_SSE`` (``AES256`` default, ``aws:kms`` with ``S3_KMS_KEY_ID``, or ``none``: no
``ServerSideEncryption`` parameter is sent, for S3-compatible stores without KMS such as
MinIO's default setup, which refuse it). Credentials come from boto3's own chain
(environment, shared config, instance or task role); none are read here.

Keys: ``<prefix><id>.db.gz`` (the data, with ``x-amz-meta-sha256-gz`` / ``sha256-db``) and
``<prefix><id>.json`` (the manifest, uploaded last). After the upload ``head_object`` must
report the local size, the SHA-256 in the metadata and the requested encryption, otherwise the
object is deleted and the upload reported as failed (the encryption is compared only when one
was asked for: with ``S3_SSE=none`` the store may apply its default, or nothing). The manifest
uploaded to S3 records in ``encryption`` what S3 reported it applied (``head_object``'s
``ServerSideEncryption``: ``AES256`` where AWS encrypts by default, ``none`` when the store
reports nothing). Listing uses the ``list_objects_v2``
paginator (one call stops at 1000 keys); only keys matching the id pattern are considered and
nothing else under the prefix is ever deleted. Deleting removes the manifest first. After
retention, :meth:`S3Store.collect_garbage` removes id-named data objects without a manifest
and aborts multipart uploads, both only once older than a day.
"""

from __future__ import annotations

import builtins
from typing import Any

import boto3
import botocore.exceptions
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from ..errors import BackupError, BackupVerificationError, StorageError
from .config import BackupSettings
from .ids import ID_RE
from .manifest import Manifest
from .store import Listing

__all__ = ["S3Store", "transfer_config"]

_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, Boto3Error, OSError)


def transfer_config(settings: BackupSettings) -> TransferConfig:
    return TransferConfig(
        multipart_threshold=settings.s3_multipart_threshold,
        multipart_chunksize=settings.s3_multipart_chunksize,
        max_concurrency=4,
        use_threads=True,
    )


class S3Store:
    """Backups in an S3 bucket (or an S3-compatible service)."""

    name = "s3"

    def __init__(
        self,
        client: Any,
        *,
        bucket: str,
        prefix: str = "voyagr-backups/",
        sse: str = "AES256",
        kms_key_id: str = "",
        config: TransferConfig | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.sse = sse
        self.kms_key_id = kms_key_id
        self.config = config or TransferConfig()

    @classmethod
    def from_settings(cls, settings: BackupSettings) -> S3Store:
        extra: dict[str, Any] = {}
        if settings.s3_checksum_when_required:
            extra = {
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            }
        client = boto3.client(
            "s3",
            region_name=settings.s3_region or None,
            endpoint_url=settings.s3_endpoint_url or None,
            config=Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                **extra,
            ),
        )
        return cls(
            client,
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            sse=settings.s3_sse,
            kms_key_id=settings.s3_kms_key_id,
            config=transfer_config(settings),
        )

    def _sse_args(self) -> dict[str, str]:
        if self.sse == "none":
            return {}  # S3-compatible stores without KMS refuse the parameter
        args = {"ServerSideEncryption": self.sse}
        if self.sse == "aws:kms" and self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    def list(self) -> Listing:
        names: set[str] = set()
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    names.add(item["Key"][len(self.prefix) :])
        except _ERRORS as exc:
            return Listing((), (f"s3: listing s3://{self.bucket}/{self.prefix} failed: {exc}",))
        found: list[Manifest] = []
        problems: list[str] = []
        for name in sorted(names):
            stem = name[:-5]
            if not name.endswith(".json") or ID_RE.match(stem) is None:
                continue
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"]
                manifest = Manifest.from_json(body.read(), expected_id=stem)
            except (*_ERRORS, BackupError) as exc:
                problems.append(f"s3: {name}: {exc}")
                continue
            if manifest.data_name not in names:
                problems.append(f"s3: {name}: data object {manifest.data_name} is missing")
                continue
            found.append(manifest)
        found.sort(key=lambda m: (m.created_ts, m.id))
        return Listing(tuple(found), tuple(problems))

    def put(self, manifest: Manifest, gz_path: str) -> Manifest:
        key = self.prefix + manifest.data_name
        metadata = {"sha256-gz": manifest.sha256_gz, "sha256-db": manifest.sha256_db}
        try:
            self.client.upload_file(
                gz_path,
                self.bucket,
                key,
                ExtraArgs={**self._sse_args(), "Metadata": metadata},
                Config=self.config,
            )
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except _ERRORS as exc:
            raise StorageError(f"s3: upload of {manifest.id} failed: {exc}") from exc
        problem = self._check_head(head, manifest)
        if problem:
            self._delete_keys(key)
            raise BackupVerificationError(
                f"s3: {manifest.id} failed its check after upload: {problem}"
            )
        stored = manifest.with_(encryption=str(head.get("ServerSideEncryption") or "none"))
        self.write_manifest(stored)
        return stored

    def write_manifest(self, manifest: Manifest) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + manifest.manifest_name,
                Body=manifest.to_json(),
                ContentType="application/json",
                **self._sse_args(),
            )
        except _ERRORS as exc:
            raise StorageError(f"s3: manifest of {manifest.id} failed: {exc}") from exc

    def _check_head(self, head: dict[str, Any], manifest: Manifest) -> str | None:
        if head.get("ContentLength") != manifest.gz_bytes:
            return f"size {head.get('ContentLength')} != {manifest.gz_bytes}"
        if head.get("Metadata", {}).get("sha256-gz") != manifest.sha256_gz:
            return "the sha256 in the object metadata differs"
        if self.sse != "none" and head.get("ServerSideEncryption") != self.sse:
            return f"encryption {head.get('ServerSideEncryption')!r} != {self.sse!r}"
        if self.sse == "aws:kms" and self.kms_key_id not in str(head.get("SSEKMSKeyId", "")):
            return "the object is encrypted with another KMS key"
        return None

    def fetch(self, manifest: Manifest, dest_path: str) -> str:
        try:
            self.client.download_file(
                self.bucket, self.prefix + manifest.data_name, dest_path, Config=self.config
            )
        except _ERRORS as exc:
            raise StorageError(f"s3: download of {manifest.id} failed: {exc}") from exc
        return dest_path

    def delete(self, manifest: Manifest) -> None:
        self._delete_keys(self.prefix + manifest.manifest_name, self.prefix + manifest.data_name)

    def collect_garbage(self, *, now: float, older_than_s: float = 86_400.0) -> builtins.list[str]:
        """Remove what interrupted runs left under the prefix, once older than a day.

        - data objects named like a backup but without a manifest (a crash between the data
          upload and the manifest, or between deleting a manifest and its data);
        - incomplete multipart uploads: a process killed mid-upload leaves its parts behind,
          invisible to listings and billed until a lifecycle rule or an abort removes them;
          s3transfer aborts only from inside a living process.
        """
        removed: builtins.list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            objects = {o["Key"]: o for page in pages for o in page.get("Contents", ())}
            for key, item in objects.items():
                name = key[len(self.prefix) :]
                stem = name[: -len(".db.gz")]
                if not name.endswith(".db.gz") or ID_RE.match(stem) is None:
                    continue
                if f"{self.prefix}{stem}.json" in objects:
                    continue
                if now - item["LastModified"].timestamp() >= older_than_s:
                    self.client.delete_object(Bucket=self.bucket, Key=key)
                    removed.append(key)
            uploads = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in uploads:
                for upload in page.get("Uploads", ()):
                    if now - upload["Initiated"].timestamp() < older_than_s:
                        continue
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed.append(f"{upload['Key']} (multipart upload)")
        except _ERRORS as exc:
            raise StorageError(f"s3: garbage collection failed: {exc}") from exc
        return removed

    def _delete_keys(self, *keys: str) -> None:
        for key in keys:  # in order: the manifest (commit marker) first
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key)
            except _ERRORS as exc:
                raise StorageError(f"s3: delete of {key} failed: {exc}") from exc
