"""AWS's own authentication errors, rendered in the wire shape of the protocol of the service that was addressed.

Sources for codes, statuses and messages (observed answers beat the docs where they disagree; what has no source is
marked UNCONFIRMED where it is chosen):

* JSON protocols (Coral: SageMaker, Step Functions, Logs, ...): status 400 for every auth error. Observed:
  ``{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}``
  with ``400 Bad Request`` (aws/aws-sdk-php#2444, Cognito; aws/amazon-sagemaker-operator-for-k8s#99, SageMaker
  "status code: 400"); ``InvalidSignatureException`` "Signature expired: 20170111T204052Z is now earlier than
  20170111T225449Z (20170111T230949Z - 15 min.)" status 400 (upmc-enterprises/registry-creds#24, ECR JSON 1.1);
  ``IncompleteSignatureException`` ... "not a valid key=value pair (missing equal-sign) in Authorization header"
  status 400 (iann0036/cloud9-sync#10).
* Query protocols (STS, IAM, SNS, CloudFormation): ``InvalidClientTokenId`` 403 (hashicorp/terraform-provider-aws
  #13695, aws-azure-login#251 with the raw ``<ErrorResponse>`` body); ``SignatureDoesNotMatch`` "Signature expired:
  ... (... - 15 min.)" and "Signature not yet current: ... is still later than ... (... + 15 min.)" 403
  (aws/aws-cli#6676, QT-DevOps/DevOpsIssues#989); ``MissingAuthenticationToken`` "Request is missing Authentication
  Token" 403 (cert-manager/aws-privateca-issuer#40); ``IncompleteSignature`` "Authorization header requires
  'Signature' parameter. ..." 400 (brendanhay/amazonka#316, SES).
* S3: codes and messages of the S3 API reference "Error responses" list; RequestTimeTooSkewed/Request has expired
  element layouts as S3 answers them; ``AccessDenied`` "There were headers present in the request which were not
  signed" + ``<HeadersNotSigned>`` 403 (coda/packs-sdk#3093); ``AuthorizationQueryParametersError`` texts as LocalStack
  (``localstack/services/s3/presigned_url.py``) and MinIO reproduce them.
* API Gateway execute-api (IAM auth): every auth error 403 with ``{"message"}`` and ``x-amzn-ErrorType``; the
  signature mismatch message carries the canonical string and string-to-sign (mhart/aws4#33,
  amzn/selling-partner-api-models#113); "Missing Authentication Token" (gateway response MISSING_AUTHENTICATION_TOKEN).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Literal
from xml.sax.saxutils import escape

from local_aws.auth.services import Protocol, protocol_for
from local_aws.constants import REGION

AuthErrorKind = Literal[
    "missing",
    "unknown_key",
    "bad_signature",
    "skewed",
    "expired",
    "malformed",
    "bad_token",
    "wrong_region",
    "expired_token",
]
# Finer cause inside a kind, for the protocols (S3 above all) whose code depends on it.
Reason = Literal[
    "",
    "unsupported_scheme",  # Authorization is not AWS4-HMAC-SHA256 (SigV2, Bearer, garbage)
    "incomplete",  # a required component/parameter is missing or unparsable
    "bad_credential",  # the credential scope is not AKID/yyyymmdd/region/service/aws4_request
    "bad_date",  # no usable X-Amz-Date/Date
    "date_mismatch",  # scope date != date of X-Amz-Date
    "headers_not_signed",  # host (or, for S3, an x-amz-* header) is not among the signed headers
    "missing_content_sha256",  # S3 header auth without x-amz-content-sha256
    "bad_content_sha256",  # x-amz-content-sha256 is neither a hash nor a known keyword
    "content_sha256_mismatch",  # the body's SHA-256 differs from a (correctly signed) x-amz-content-sha256
    "mixed_auth",  # Authorization header and presigned query parameters together
    "bad_expires",  # X-Amz-Expires missing/not a number/out of 1..604800
    "bad_algorithm",  # X-Amz-Algorithm is not AWS4-HMAC-SHA256
    "wrong_service",  # the scope names another service than the endpoint serves
]

MSG_INVALID_TOKEN = "The security token included in the request is invalid."
MSG_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key "
    "and signing method. Consult the service documentation for details."
)
MSG_MISSING = "Missing Authentication Token"
# Temporary credentials past their expiry (observed: "An error occurred (ExpiredTokenException) when calling the ...
# operation: The security token included in the request is expired"); S3 lists ExpiredToken, "The provided token has
# expired.", 400 (S3 API reference, Error responses).
MSG_EXPIRED_TOKEN = "The security token included in the request is expired"
MSG_HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
# Texts the verifier raises and S3's renderer repeats word for word.
MSG_MIXED_AUTH = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string "
    "parameter or the Authorization header should be specified"
)
MSG_UNSUPPORTED_MECHANISM = (
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
)
MSG_HEADERS_NOT_SIGNED = "There were headers present in the request which were not signed"
MSG_MISSING_CONTENT_SHA256 = "Missing required header for this request: x-amz-content-sha256"
MSG_CONTENT_SHA256_MISMATCH = "The provided 'x-amz-content-sha256' header does not match what was computed."
# The brief's example for query APIs is the JSON text; STS actually says this (cert-manager/aws-privateca-issuer#40).
_MSG_MISSING_QUERY = "Request is missing Authentication Token"
_CREDENTIAL_SHAPE = 'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'


class AuthError(Exception):
    """A request failed authentication; ``render_auth_error`` turns it into AWS's answer.

    Attributes:
        kind: The failed check (one of ``AuthErrorKind``).
        message: The JSON/query/API Gateway message (S3 words most errors its own way).
        reason: Finer cause, see ``Reason``.
        access_key_id: The key id the request named, when it could be read.
        presigned: The request used query-string (presigned URL) auth.
        facts: Values some shapes echo: ``region``, ``request_time``, ``server_time``, ``expires``,
            ``x_amz_expires``, ``string_to_sign``, ``canonical_request``, ``signature_provided``,
            ``headers_not_signed``, ``client_sha256``, ``computed_sha256``, ``argument_value``, ``service``.
    """

    def __init__(
        self,
        kind: AuthErrorKind,
        message: str,
        *,
        reason: Reason = "",
        access_key_id: str | None = None,
        presigned: bool = False,
        facts: Mapping[str, str] | None = None,
    ) -> None:
        """Record the failure; see the class attributes."""
        super().__init__(message)
        self.kind: AuthErrorKind = kind
        self.message = message
        self.reason: Reason = reason
        self.access_key_id = access_key_id
        self.presigned = presigned
        self.facts: dict[str, str] = dict(facts or {})

    def __repr__(self) -> str:
        return f"AuthError({self.kind!r}, {self.message!r}, reason={self.reason!r})"


Rendered = tuple[int, list[tuple[str, str]], bytes]

# (kind, reason) -> (JSON/API Gateway code, query code); reason "" is the kind's default.
_CODES: Mapping[tuple[str, str], tuple[str, str]] = {
    ("missing", ""): ("MissingAuthenticationTokenException", "MissingAuthenticationToken"),
    ("unknown_key", ""): ("UnrecognizedClientException", "InvalidClientTokenId"),
    ("bad_token", ""): ("UnrecognizedClientException", "InvalidClientTokenId"),
    ("expired_token", ""): ("ExpiredTokenException", "ExpiredToken"),
    ("bad_signature", ""): ("InvalidSignatureException", "SignatureDoesNotMatch"),
    ("skewed", ""): ("InvalidSignatureException", "SignatureDoesNotMatch"),
    # UNCONFIRMED for JSON; query: "RequestExpired" is the Common Errors entry for an expired presigned URL.
    ("expired", ""): ("InvalidSignatureException", "RequestExpired"),
    # UNCONFIRMED codes; the message "Credential should be scoped to a valid region, not 'x'. " is observed
    # (aws/aws-sdk-php#493 for IAM, joona/aws-es-curl#15), InvalidSignatureException in aws/aws-sdk-js-v3#5576.
    ("wrong_region", ""): ("InvalidSignatureException", "SignatureDoesNotMatch"),
    ("malformed", ""): ("IncompleteSignatureException", "IncompleteSignature"),
    # UNCONFIRMED: a date mismatch / wrong service is a scope the signature cannot match.
    ("malformed", "date_mismatch"): ("InvalidSignatureException", "SignatureDoesNotMatch"),
    ("malformed", "wrong_service"): ("InvalidSignatureException", "SignatureDoesNotMatch"),
}
# Query-protocol statuses (observed 403 for token/signature/missing, 400 for IncompleteSignature/RequestExpired).
_QUERY_STATUS = {"IncompleteSignature": 400, "RequestExpired": 400}


def _codes(error: AuthError) -> tuple[str, str]:
    return _CODES.get((error.kind, error.reason)) or _CODES[(error.kind, "")]


def render_auth_error(error: AuthError, service: str, *, request_id: str | None = None) -> Rendered:
    """AWS's answer to a request that failed authentication, in the addressed service's protocol.

    Args:
        error: What failed.
        service: The signing name from the credential scope (``Caller``-style: ``s3``, ``states``, ``sagemaker``,
            ``execute-api``...), a botocore name (``sagemaker-runtime``), or ``guess_service``'s best guess.
        request_id: The request id to report (a fresh UUID when omitted).

    Returns:
        ``(status, headers, body)``. For S3 HEAD requests the edge must drop the body (HTTP semantics; botocore then
        reads the code from the status).
    """
    rid = request_id or str(uuid.uuid4())
    proto = protocol_for(service)
    if proto.family == "s3":
        return _render_s3(error, rid)
    json_code, query_code = _codes(error)
    if proto.family == "query":
        return _render_query(error, query_code, proto, rid)
    message = MSG_MISSING if error.kind == "missing" else error.message
    if proto.family in ("execute-api", "rest-json"):
        # API Gateway, and rest-json services (Lambda: 403 UnrecognizedClientException, iann0036/iamlive#58), answer
        # 403 with {"message"} and the code in x-amzn-ErrorType, which botocore's rest-json parser reads.
        if proto.family == "execute-api" and error.kind == "bad_signature" and "canonical_request" in error.facts:
            # API Gateway spells out what it computed (mhart/aws4#33).
            message = (
                f"{MSG_SIGNATURE}\n\nThe Canonical String for this request should have been\n"
                f"'{error.facts['canonical_request']}'\n\nThe String-to-Sign should have been\n"
                f"'{error.facts['string_to_sign']}'\n"
            )
        return 403, _json_headers("application/json", json_code, rid), json.dumps({"message": message}).encode()
    headers = _json_headers(f"application/x-amz-json-{proto.json_version}", json_code, rid)
    if proto.query_compatible:
        # UNCONFIRMED for auth errors: a query-compatible JSON service names the legacy query code here, which
        # botocore reports as the error code, so clients see the same code as over the query protocol.
        headers.append(("x-amzn-query-error", f"{query_code};Sender"))
    return 400, headers, json.dumps({"__type": json_code, "message": message}).encode()


def _json_headers(content_type: str, code: str, rid: str) -> list[tuple[str, str]]:
    return [("Content-Type", content_type), ("x-amzn-RequestId", rid), ("x-amzn-ErrorType", code)]


def _render_query(error: AuthError, code: str, proto: Protocol, rid: str) -> Rendered:
    message = _MSG_MISSING_QUERY if error.kind == "missing" else error.message
    xmlns = f' xmlns="{escape(proto.xml_namespace)}"' if proto.xml_namespace else ""
    body = (
        f"<ErrorResponse{xmlns}>\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n"
        f"    <Message>{escape(message)}</Message>\n  </Error>\n  <RequestId>{rid}</RequestId>\n</ErrorResponse>\n"
    )
    status = _QUERY_STATUS.get(code, 403)
    return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body.encode()


def _s3_malformed(error: AuthError) -> tuple[int, str, str, list[tuple[str, str]]]:
    """(status, code, message, extra elements) of S3's answer to a malformed request."""
    f, reason, query = error.facts, error.reason, error.presigned
    if reason == "headers_not_signed":
        extra = [("HeadersNotSigned", f.get("headers_not_signed", "host"))]
        return 403, "AccessDenied", MSG_HEADERS_NOT_SIGNED, extra
    if reason == "missing_content_sha256":
        return 400, "InvalidRequest", MSG_MISSING_CONTENT_SHA256, []
    if reason == "bad_content_sha256":  # UNCONFIRMED wording (S3's list of accepted values, as observed from S3)
        msg = (
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER "
            "or a valid sha256 value."
        )
        extra = [("ArgumentName", "x-amz-content-sha256"), ("ArgumentValue", f.get("argument_value", ""))]
        return 400, "InvalidArgument", msg, extra
    if reason == "mixed_auth":
        return 400, "InvalidArgument", MSG_MIXED_AUTH, [("ArgumentName", "Authorization")]
    if reason == "unsupported_scheme":
        return 400, "InvalidRequest", MSG_UNSUPPORTED_MECHANISM, []
    if reason == "bad_date" and not query:
        return 403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header", []
    if query:
        texts = {
            "bad_credential": f"Error parsing the X-Amz-Credential parameter; {_CREDENTIAL_SHAPE}",
            "bad_algorithm": 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
            "bad_expires": f.get("s3_detail", "X-Amz-Expires should be a number"),
            # UNCONFIRMED wording:
            "bad_date": "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
            "date_mismatch": "Invalid credential date. Date is not the same as X-Amz-Date.",
            "wrong_service": f'Error parsing the X-Amz-Credential parameter; incorrect service "{f.get("service")}". '
            'This endpoint belongs to "s3".',
        }
        default = (
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, "
            "X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
        )
        return 400, "AuthorizationQueryParametersError", texts.get(reason, default), []
    details = {
        "bad_credential": _CREDENTIAL_SHAPE,
        "date_mismatch": "Invalid credential date. Date is not the same as X-Amz-Date.",  # UNCONFIRMED wording
        "wrong_service": f'incorrect service "{f.get("service")}". This endpoint belongs to "s3".',  # UNCONFIRMED
    }
    detail = details.get(
        reason, "the authorization header requires three components: Credential, SignedHeaders, and Signature."
    )
    return 400, "AuthorizationHeaderMalformed", f"The authorization header is malformed; {detail}", []


def _render_s3(error: AuthError, rid: str) -> Rendered:
    f = error.facts
    extra: list[tuple[str, str]] = []
    if error.kind == "missing":
        status, code, message = 403, "AccessDenied", "Access Denied"
    elif error.kind == "unknown_key":
        status, code = 403, "InvalidAccessKeyId"
        message = "The AWS Access Key Id you provided does not exist in our records."
        extra = [("AWSAccessKeyId", error.access_key_id or "")]
    elif error.kind == "bad_token":
        status, code, message = 400, "InvalidToken", "The provided token is malformed or otherwise invalid."
    elif error.kind == "expired_token":
        status, code, message = 400, "ExpiredToken", "The provided token has expired."
    elif error.kind == "bad_signature" and error.reason == "content_sha256_mismatch":
        status, code, message = 400, "XAmzContentSHA256Mismatch", MSG_CONTENT_SHA256_MISMATCH
        extra = [
            ("ClientComputedContentSHA256", f.get("client_sha256", "")),
            ("S3ComputedContentSHA256", f.get("computed_sha256", "")),
        ]
    elif error.kind == "bad_signature":
        status, code = 403, "SignatureDoesNotMatch"
        message = (
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method."
        )
        sts, creq = f.get("string_to_sign", ""), f.get("canonical_request", "")
        extra = [("AWSAccessKeyId", error.access_key_id or "")]
        if sts:
            extra += [
                ("StringToSign", sts),
                ("SignatureProvided", f.get("signature_provided", "")),
                ("StringToSignBytes", sts.encode().hex(" ")),
                ("CanonicalRequest", creq),
                ("CanonicalRequestBytes", creq.encode().hex(" ")),
            ]
    elif error.kind == "skewed":
        status, code = 403, "RequestTimeTooSkewed"
        message = "The difference between the request time and the current time is too large."
        extra = [
            ("RequestTime", f.get("request_time", "")),
            ("ServerTime", f.get("server_time", "")),
            ("MaxAllowedSkewMilliseconds", "900000"),
        ]
    elif error.kind == "expired":
        status, code, message = 403, "AccessDenied", "Request has expired"
        extra = [
            ("X-Amz-Expires", f.get("x_amz_expires", "")),
            ("Expires", f.get("expires", "")),
            ("ServerTime", f.get("server_time", "")),
        ]
    elif error.kind == "wrong_region":
        status, code = 400, "AuthorizationQueryParametersError" if error.presigned else "AuthorizationHeaderMalformed"
        wrong = f"the region '{f.get('region', '')}' is wrong; expecting '{f.get('expected_region', REGION)}'"
        prefix = (
            "Error parsing the X-Amz-Credential parameter"
            if error.presigned
            else "The authorization header is malformed"
        )
        message = f"{prefix}; {wrong}"
        # botocore's S3 region redirector reads <Region> and re-signs for it.
        extra = [("Region", f.get("expected_region", REGION))]
    else:
        status, code, message, extra = _s3_malformed(error)
    parts = [f"<Code>{code}</Code>", f"<Message>{escape(message)}</Message>"]
    parts += [f"<{name}>{escape(value)}</{name}>" for name, value in extra]
    host_id = uuid.uuid4().hex
    parts += [f"<RequestId>{rid}</RequestId>", f"<HostId>{host_id}</HostId>"]
    body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>"
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", rid), ("x-amz-id-2", host_id)]
    return status, headers, body.encode()
