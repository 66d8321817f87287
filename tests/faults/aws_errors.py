"""What AWS answers when it refuses a query-protocol call (IAM, EC2), and what a request asks.

The bodies are the XML shapes botocore's query parsers read: IAM wraps one error in
`<ErrorResponse>`, EC2 lists errors under `<Response><Errors>`.
"""

import re
import uuid
from urllib.parse import parse_qs, urlsplit

# Actions that change AWS; everything else the broker calls only reads.
MUTATING_ACTIONS = frozenset(
    {
        "CreateRole",
        "PutRolePolicy",
        "CreateInstanceProfile",
        "AddRoleToInstanceProfile",
        "AssociateIamInstanceProfile",
        "DisassociateIamInstanceProfile",
        "ReplaceIamInstanceProfileAssociation",
        "RemoveRoleFromInstanceProfile",
        "DeleteInstanceProfile",
        "DeleteRolePolicy",
        "DeleteRole",
    }
)

# The service a SigV4 request is signed for: Credential=KEY/DATE/REGION/SERVICE/aws4_request.
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


def service_of(authorization: str) -> str:
    match = _CREDENTIAL_SCOPE.search(authorization)
    return match.group(1) if match else ""


def query_params(path: str, content_type: str, body: bytes) -> dict[str, str]:
    """The query protocol's parameters, from the query string and a form body (first values)."""
    fields = parse_qs(urlsplit(path).query)
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields.update(parse_qs(body.decode("utf-8", errors="replace")))
    return {name: values[0] for name, values in fields.items()}


def error_body(service: str, code: str, message: str) -> bytes:
    request_id = str(uuid.uuid4())
    if service == "ec2":
        xml = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            f"</Errors><RequestID>{request_id}</RequestID></Response>"
        )
    else:
        kind = "Receiver" if code in ("InternalFailure", "ServiceUnavailable") else "Sender"
        xml = (
            '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return xml.encode()


def throttling(service: str) -> tuple[int, bytes]:
    """IAM: Throttling, HTTP 400; EC2: RequestLimitExceeded, HTTP 503."""
    if service == "ec2":
        return 503, error_body(service, "RequestLimitExceeded", "Request limit exceeded.")
    return 400, error_body(service, "Throttling", "Rate exceeded")


def server_error(service: str, status: int) -> tuple[int, bytes]:
    """HTTP 500 or 503 with the service's code for it."""
    if service == "ec2":
        code = "InternalError" if status == 500 else "Unavailable"
        return status, error_body(service, code, "An internal error has occurred")
    code = "InternalFailure" if status == 500 else "ServiceUnavailable"
    return status, error_body(service, code, "Service is unavailable, please retry")


def profile_not_visible(params: dict[str, str]) -> tuple[int, bytes]:
    """EC2's answer while it does not yet see an instance profile IAM has just created."""
    if "IamInstanceProfile.Arn" in params:
        value, field, kind = params["IamInstanceProfile.Arn"], "arn", "ARN"
    else:
        value, field, kind = params.get("IamInstanceProfile.Name", ""), "name", "name"
    message = (
        f"Value ({value}) for parameter iamInstanceProfile.{field} is invalid. "
        f"Invalid IAM Instance Profile {kind}"
    )
    return 400, error_body("ec2", "InvalidParameterValue", message)


def associated_profile_name(params: dict[str, str]) -> str:
    if "IamInstanceProfile.Arn" in params:
        return params["IamInstanceProfile.Arn"].rsplit("/", 1)[-1]
    return params.get("IamInstanceProfile.Name", "")
