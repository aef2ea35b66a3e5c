"""The local S3's WSGI app: S3's REST-XML protocol over an ``ObjectStore``, answering boto3 and awscli as S3 does.

Addressing (userguide/VirtualHosting.html): path style ``http://127.0.0.1:PORT/bucket/key``, and virtual-hosted
style when the Host is ``<bucket>.<endpoint host>`` for a known endpoint host (``localhost``, ``s3.amazonaws.com``...)
or, for any other dotted name that is not an IP address, ``<bucket>.<anything>``. botocore uses path style for an
IP endpoint and for ``localhost``, unless told ``addressing_style="virtual"``.

The bucket and key are taken from the raw request URI (``REQUEST_URI``), split on ``/`` before percent-decoding, so
``%2F`` can never turn into a path separator on the way to the store, and then validated (``keys.py``) before any
handler runs. SigV4 is not checked here: the edge layer in front verifies signatures before requests reach this app.

Operations: ListBuckets; CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation, GetBucketVersioning,
ListObjects, ListObjectsV2, DeleteObjects, ListMultipartUploads; GetObject, HeadObject, PutObject, CopyObject,
DeleteObject, CreateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload, AbortMultipartUpload,
ListParts. Any other S3 subresource (``?acl``, ``?tagging``, ``?versions``...) answers 501 ``NotImplemented``, as
does GetObject by ``partNumber``; buckets are never versioned (only ``versionId=null`` is accepted); ACL, SSE and
storage-class headers are accepted and ignored, except that the storage class is stored and echoed.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from werkzeug.wrappers import Request

from local_aws.constants import ACCOUNT_ID, REGION, URL_SUFFIX
from local_aws.s3 import bucket_ops, multipart_ops, object_ops
from local_aws.s3.errors import S3Error
from local_aws.s3.keys import validate_bucket, validate_key
from local_aws.s3.responses import Call, S3Response, error_response, new_request_id, s3_error_renderer
from local_aws.s3.store import ObjectStore

__all__ = ["S3Api", "s3_error_renderer"]

LOGGER = logging.getLogger("local_aws.s3")
Handler = Callable[[Call], S3Response]

# Hosts that are the endpoint itself: ``<bucket>.<one of these>`` is virtual-hosted style, the bare host path style.
DEFAULT_ENDPOINT_HOSTS = (
    "localhost",
    f"s3.{URL_SUFFIX}",
    f"s3.{REGION}.{URL_SUFFIX}",
    f"s3.dualstack.{REGION}.{URL_SUFFIX}",
    "s3.localhost.localstack.cloud",
    "localhost.localstack.cloud",
    "host.docker.internal",
)
# S3's subresources (botocore/auth.py ``HmacV1Auth.QSAOfInterest`` plus newer ones): any not handled below is 501.
SUBRESOURCES = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "attributes",
        "cors",
        "delete",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "location",
        "logging",
        "metadataConfiguration",
        "metadataTable",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "partNumber",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "session",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)
_ROUTES: dict[tuple[str, str, str], Handler] = {
    # (level, method, subresource) -> handler; "" is the operation without a subresource.
    ("service", "GET", ""): bucket_ops.list_buckets,
    ("bucket", "GET", ""): bucket_ops.list_objects,
    ("bucket", "GET", "location"): bucket_ops.get_bucket_location,
    ("bucket", "GET", "versioning"): bucket_ops.get_bucket_versioning,
    ("bucket", "GET", "uploads"): bucket_ops.list_multipart_uploads,
    ("bucket", "HEAD", ""): bucket_ops.head_bucket,
    ("bucket", "PUT", ""): bucket_ops.create_bucket,
    ("bucket", "DELETE", ""): bucket_ops.delete_bucket,
    ("bucket", "POST", "delete"): bucket_ops.delete_objects,
    ("object", "GET", ""): object_ops.get_object,
    ("object", "GET", "versionId"): object_ops.get_object,
    ("object", "GET", "uploadId"): multipart_ops.list_parts,
    ("object", "HEAD", ""): object_ops.get_object,
    ("object", "HEAD", "versionId"): object_ops.get_object,
    ("object", "PUT", ""): object_ops.put_object,
    ("object", "PUT", "uploadId"): multipart_ops.upload_part,
    ("object", "DELETE", ""): object_ops.delete_object,
    ("object", "DELETE", "versionId"): object_ops.delete_object,
    ("object", "DELETE", "uploadId"): multipart_ops.abort_multipart_upload,
    ("object", "POST", "uploads"): multipart_ops.create_multipart_upload,
    ("object", "POST", "uploadId"): multipart_ops.complete_multipart_upload,
}
_RESOURCE_TYPES = {"service": "SERVICE", "bucket": "BUCKET", "object": "OBJECT"}


def _decode(raw: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI") from None


def _raw_path(environ: dict[str, Any]) -> str:
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if raw:
        # An absolute-form request target (``GET http://host/path``) carries the path after the authority.
        return urlsplit(raw).path if "://" in raw.split("?", 1)[0] else raw.split("?", 1)[0]
    # Servers without a raw URI: PATH_INFO is already decoded (latin-1 per PEP 3333); re-quote it as UTF-8.
    return quote(environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace"), safe="/")


def _subresource(args: dict[str, str]) -> str:
    present = [name for name in args if name in SUBRESOURCES]
    if "uploadId" in present:
        return "uploadId"  # UploadPart carries partNumber too
    # The route key: one name as it is, several joined in a stable order (no route takes several).
    return "+".join(sorted(present))


class S3Api:
    """The S3 REST-XML API over an ``ObjectStore``, as a WSGI application.

    Args:
        store: the storage.
        endpoint_hosts: hosts that address the service itself, for virtual-hosted style (``<bucket>.<host>``).
    """

    def __init__(self, store: ObjectStore, *, endpoint_hosts: Iterable[str] = DEFAULT_ENDPOINT_HOSTS) -> None:
        self.store = store
        # Longest first, so ``s3.us-east-1.amazonaws.com`` wins over ``s3.amazonaws.com`` style overlaps.
        self.endpoint_hosts = sorted({h.lower() for h in endpoint_hosts}, key=len, reverse=True)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve one request."""
        request = Request(environ)
        request_id, host_id = new_request_id()
        try:
            response = self._dispatch(request, request_id)
        except S3Error as exc:
            response = error_response(exc, request_id, host_id, head=request.method == "HEAD")
        except Exception:
            LOGGER.exception("s3: %s %s failed", request.method, environ.get("REQUEST_URI", request.path))
            response = error_response(S3Error("InternalError"), request_id, host_id, head=request.method == "HEAD")
        response.headers["x-amz-request-id"] = request_id
        response.headers["x-amz-id-2"] = host_id
        response.headers["Server"] = "AmazonS3"
        return response(environ, start_response)

    def _bucket_from_host(self, host: str) -> str | None:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower().rstrip(".")
        try:
            ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            return None
        for endpoint in self.endpoint_hosts:
            if name == endpoint:
                return None
            if name.endswith("." + endpoint):
                return name[: -len(endpoint) - 1]
        return name.split(".", 1)[0] if "." in name else None

    def address(self, request: Request) -> tuple[str | None, str | None]:
        """``(bucket, key)`` of a request (either may be None), percent-decoded after splitting the raw path."""
        path = _raw_path(request.environ)
        if not path.startswith("/"):
            raise S3Error("InvalidURI")
        virtual = self._bucket_from_host(request.host)
        if virtual is not None:
            rest = path[1:]
            return virtual, (_decode(rest) if rest else None)
        bucket_raw, sep, key_raw = path[1:].partition("/")
        if not bucket_raw:
            return None, None
        return _decode(bucket_raw), (_decode(key_raw) if sep and key_raw else None)

    def _dispatch(self, request: Request, request_id: str) -> S3Response:
        bucket, key = self.address(request)
        query = request.environ.get("QUERY_STRING", "")
        args: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            args.setdefault(name, value)
        level = "service" if bucket is None else "bucket" if key is None else "object"
        if bucket is not None:
            validate_bucket(bucket)
        if key is not None:
            validate_key(key)
        method = request.method.upper()
        subresource = _subresource(args)
        # Every request may assert the bucket owner; another account's id is 403, as S3 answers it.
        owner = request.headers.get("x-amz-expected-bucket-owner")
        if owner is not None and owner != ACCOUNT_ID and bucket is not None:
            raise S3Error("AccessDenied")
        handler = _ROUTES.get((level, method, subresource))
        if handler is None:
            if any(lvl == level and m == method for lvl, m, _ in _ROUTES) and subresource:
                raise S3Error(
                    "NotImplemented",
                    f"The local S3 does not implement {method} ?{subresource} on a {level}.",
                    Header=subresource,
                )
            raise S3Error("MethodNotAllowed", Method=method, ResourceType=_RESOURCE_TYPES[level])
        if level == "object" and subresource == "uploadId" and method == "PUT" and "partNumber" not in args:
            raise S3Error("InvalidRequest", "A part number is required to upload a part.")
        return handler(Call(request, self.store, bucket, key, args, request_id))
