"""S3's error codes, statuses and default messages, as one exception type the store raises and the app renders.

The table follows the S3 error code list (docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList).
The store raises ``S3Error`` directly, so in-process callers (the local SageMaker) and HTTP clients see the same code
and message for the same mistake.
"""

from __future__ import annotations

# code -> (HTTP status, S3's default message)
_CODES: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "BadDigest": (400, "The Content-MD5 you specified did not match what we received."),
    "BucketAlreadyOwnedByYou": (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed object size."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed object size."),
    "IllegalLocationConstraintException": (
        400,
        "The unspecified location constraint is incompatible for the region specific endpoint this request was "
        "sent to.",
    ),
    "IncompleteBody": (400, "You did not provide the number of bytes specified by the Content-Length HTTP header"),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidLocationConstraint": (400, "The specified location-constraint is not valid"),
    "InvalidPart": (
        400,
        "One or more of the specified parts could not be found.  The part may not have been uploaded, "
        "or the specified entity tag may not match the part's entity tag.",
    ),
    "InvalidPartOrder": (
        400,
        "The list of parts was not in ascending order. Parts must be ordered by part number.",
    ),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidURI": (400, "Couldn't parse the specified URI."),
    "KeyTooLongError": (400, "Your key is too long"),
    "MalformedXML": (
        400,
        "The XML you provided was not well-formed or did not validate against our published schema",
    ),
    "MaxMessageLengthExceeded": (400, "Your request was too big."),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted "
        "or completed.",
    ),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented"),
    "NotModified": (304, "Not Modified"),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not match what was computed."),
}


class S3Error(Exception):
    """An S3 error: the code, the HTTP status, the message and the extra elements S3 puts in ``<Error>``.

    Args:
        code: the S3 error code (``NoSuchKey``, ``InvalidArgument``...).
        message: the message; S3's default message for the code when omitted.
        status: the HTTP status; the code's status when omitted.
        **fields: extra ``<Error>`` children in order (``Key``, ``BucketName``, ``UploadId``, ``Condition``...).
    """

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None, **fields: object) -> None:
        default_status, default_message = _CODES.get(code, (400, code))
        self.code = code
        self.message = message if message is not None else default_message
        self.status = status if status is not None else default_status
        self.fields: dict[str, str] = {name: str(value) for name, value in fields.items() if value is not None}
        super().__init__(f"{code}: {self.message}")


def no_such_bucket(bucket: str) -> S3Error:
    """404 ``NoSuchBucket`` naming the bucket, as S3 words it."""
    return S3Error("NoSuchBucket", BucketName=bucket)


def no_such_key(key: str) -> S3Error:
    """404 ``NoSuchKey`` naming the key, as S3 words it."""
    return S3Error("NoSuchKey", Key=key)


def no_such_upload(upload_id: str) -> S3Error:
    """404 ``NoSuchUpload`` naming the upload id."""
    return S3Error("NoSuchUpload", UploadId=upload_id)


def invalid_argument(message: str, name: str | None = None, value: str | None = None) -> S3Error:
    """400 ``InvalidArgument`` with S3's ``ArgumentName``/``ArgumentValue`` elements when they are known."""
    return S3Error("InvalidArgument", message, ArgumentName=name, ArgumentValue=value)
