"""Token formats: credentials recognisable by their shape alone (``AKIA…``, ``ghp_…``, ``glrt-…``).

Each :class:`TokenRule` has a cheap *prefilter*, compiled with every other rule's into one
multi-pattern database (:mod:`runbook_lib.scan_prefilter`), and a *confirm* expression run
in Python on the line of a hit (:mod:`runbook_lib.scan_buffer`); :func:`runbook_lib.scan_lines.token_ok`
then rejects placeholders, samples and typed fillers. :mod:`runbook_lib.rules` re-exports
:data:`TOKEN_RULES` with the rest of the catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenRule:
    """A credential recognisable by its shape.

    ``prefilter`` is Hyperscan/PCRE syntax run over whole buffers and should be
    selective and report once per occurrence (fixed length after the prefix);
    ``confirm`` is a Python expression run on the hit's line whose group ``v`` (or, in a
    second alternative, ``s``) is the value.
    """

    rule: str
    prefilter: str
    confirm: str
    caseless: bool = False
    #: a PEM header: the finding is its whole block, confirmed by having a body
    block: bool = False
    #: a member of a JSON object, confirmed with the object around it (a JWK's private ``d``)
    json_member: bool = False


_B64 = r"A-Za-z0-9+/"
TOKEN_RULES: tuple[TokenRule, ...] = (
    TokenRule("aws-access-key-id", r"(AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}",
              r"(?<![A-Za-z0-9/+])(?P<v>(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})(?![A-Za-z0-9])"),
    TokenRule("aws-session-token", r"(FwoGZXIvYXdzE|IQoJb3JpZ2luX2Vj|FQoGZXIvYXdzE)",
              rf"(?P<v>(?:FwoGZXIvYXdzE|IQoJb3JpZ2luX2Vj|FQoGZXIvYXdzE)[{_B64}=]{{80,}})"),
    TokenRule("aws-bedrock-api-key", r"(ABSK[A-Za-z0-9+/]{100}|bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t)",
              r"(?<![A-Za-z0-9+/])(?P<v>ABSK[A-Za-z0-9+/]{109,269}={0,2}|bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=&%_-]*)"),
    TokenRule("amazon-mws-token", r"amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-",
              r"(?P<v>amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"),
    TokenRule("private-key", r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY( BLOCK)?-----",
              r"(?P<v>-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----)", block=True),
    # a PEM block base64-encoded again (``LS0tLS1CRUdJTi`` is ``-----BEGIN``), an OpenSSH key body:
    # confirmed by decoding (scan_lines.encoded_key_ok)
    TokenRule("private-key", r"(LS0tLS1CRUdJTi|b3BlbnNzaC1rZXktdjE)[A-Za-z0-9+/]{40}",
              r"(?<![A-Za-z0-9+/])(?P<v>(?:LS0tLS1CRUdJTi|b3BlbnNzaC1rZXktdjE)[A-Za-z0-9+/]{40,}={0,2})"),
    # a JSON Web Key is a private key when it has its private member: ``d`` (RSA, EC, OKP), ``k`` (oct);
    # confirmed with the object around it (scan_lines.jwk_private_ok)
    TokenRule("private-key", r"\"[dk]\"\s{0,2}:\s{0,2}\"[A-Za-z0-9_-]{20}",
              r"\"(?P<m>[dk])\"\s*:\s*\"(?P<v>[A-Za-z0-9_-]{20,})\"", json_member=True),
    TokenRule("github-token", r"(gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})",
              r"(?<![A-Za-z0-9_])(?P<v>gh[pousr]_[A-Za-z0-9_]{36,255}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9])"),
    # personal, OAuth-app, pipeline-trigger, runner, CI job, feed, incoming-mail, agent, SCIM,
    # feature-flag and deploy tokens; runner registration tokens; the session cookie
    TokenRule("gitlab-token", r"(gl(pat|oas|ptt|rt|cbt|ft|imt|agent|soat|ffct|dt)-|GR1348941)[0-9A-Za-z_-]{20}|_gitlab_session=[0-9a-z]{32}",
              r"(?<![A-Za-z0-9])(?P<v>(?:gl(?:pat|oas|ptt|rt|cbt|ft|imt|agent|soat|ffct|dt)-|GR1348941)[0-9A-Za-z_.-]{20,})"
              r"|_gitlab_session=(?P<s>[0-9a-z]{32})(?![0-9a-z])"),
    TokenRule("slack-token", r"(xox[abposre]|xapp|xoxe\.xox[bp])-[0-9]{1,20}-[0-9A-Za-z-]{8}",
              r"(?<![A-Za-z0-9])(?P<v>(?:xox[abposre]|xapp|xoxe\.xox[bp])-[0-9]{1,20}-[0-9A-Za-z-]{8,})"),
    TokenRule("slack-webhook", r"hooks\.slack\.com/(services|workflows|triggers)/[A-Za-z0-9_]{8}",
              r"(?P<v>https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_]+/[A-Za-z0-9_]+/[A-Za-z0-9_]{16,})"),
    TokenRule("stripe-secret-key", r"((sk|rk)_(live|test|prod)_[0-9A-Za-z]{10}|whsec_[0-9A-Za-z]{24})",
              r"(?<![A-Za-z0-9])(?P<v>(?:sk|rk)_(?:live|test|prod)_[0-9A-Za-z]{10,247}|whsec_[0-9A-Za-z]{24,64})(?![A-Za-z0-9])"),
    TokenRule("google-api-key", r"AIza[0-9A-Za-z_-]{35}",
              r"(?<![A-Za-z0-9])(?P<v>AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])"),
    TokenRule("google-oauth-credential", r"(GOCSPX-[0-9A-Za-z_-]{28}|ya29\.[0-9A-Za-z_-]{30}|1//0[0-9A-Za-z_-]{30})",
              r"(?<![A-Za-z0-9_-])(?P<v>GOCSPX-[0-9A-Za-z_-]{28}|ya29\.[0-9A-Za-z_.-]{30,}|1//0[0-9A-Za-z_-]{30,})(?![A-Za-z0-9_-])"),
    TokenRule("sendgrid-api-key", r"SG\.[0-9A-Za-z_=.-]{66}",
              r"(?<![A-Za-z0-9])(?P<v>SG\.[0-9A-Za-z_=-]{22}\.[0-9A-Za-z_=-]{43}|SG\.[0-9A-Za-z_=.-]{66})(?![A-Za-z0-9_=.-])"),
    TokenRule("twilio-api-key", r"SK([0-9a-f]{32}|[0-9A-F]{32})",
              r"(?<![A-Za-z0-9])(?P<v>SK(?:[0-9a-f]{32}|[0-9A-F]{32}))(?![A-Za-z0-9])"),
    TokenRule("npm-token", r"(npm_[A-Za-z0-9]{36}|_authToken\s{0,2}=\s{0,2}[\"']?[0-9a-fA-F]{8}-)",
              r"(?<![A-Za-z0-9])(?P<v>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])"
              r"|_authToken\s*=\s*[\"']?(?P<s>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?![0-9a-fA-F])"),
    TokenRule("pypi-token", r"pypi-AgE[A-Za-z0-9_-]{40}",
              r"(?P<v>pypi-AgE[A-Za-z0-9_-]{40,})"),
    TokenRule("openai-api-key", r"sk-(proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20}T3BlbkFJ|sk-(proj|svcacct|admin)-[A-Za-z0-9_-]{40}",
              r"(?<![A-Za-z0-9])(?P<v>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}|sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,})"),
    TokenRule("anthropic-api-key", r"sk-ant-(api|admin)[0-9]{2}-[A-Za-z0-9_-]{40}",
              r"(?P<v>sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{40,})"),
    TokenRule("mailgun-api-key", r"(key-[0-9a-f]{32}|[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8})",
              r"(?<![A-Za-z0-9-])(?P<v>key-[0-9a-f]{32}|[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8})(?![A-Za-z0-9-])"),
    TokenRule("mailchimp-api-key", r"[0-9a-f]{32}-us[0-9]{1,2}",
              r"(?<![A-Za-z0-9])(?P<v>[0-9a-f]{32}-us[0-9]{1,2})(?![A-Za-z0-9])"),
    TokenRule("shopify-token", r"shp(at|ca|pa|ss)_[a-fA-F0-9]{32}",
              r"(?P<v>shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})"),
    TokenRule("azure-storage-key", r"(AccountKey|SharedAccessKey)=[A-Za-z0-9+/]{40}",
              r"(?:AccountKey|SharedAccessKey)=(?P<v>[A-Za-z0-9+/]{40,}={0,2})"),
    # Entra ID client secrets: three characters, a digit, ``Q~``, then 31 to 34 more
    TokenRule("azure-client-secret", r"[0-9]Q~[A-Za-z0-9_~.-]{31}",
              r"(?<![A-Za-z0-9_~.-])(?P<v>[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})(?![A-Za-z0-9_~.-])"),
    # the 84-character format: ``JQQJ`` at 53 and ``AZDO`` at 77 (the signature of the issuer)
    TokenRule("azure-devops-pat", r"[A-Za-z0-9]{52}JQQJ[A-Za-z0-9]{20}AZDO[A-Za-z0-9]{4}",
              r"(?<![A-Za-z0-9])(?P<v>[A-Za-z0-9]{52}JQQJ[A-Za-z0-9]{20}AZDO[A-Za-z0-9]{4})(?![A-Za-z0-9])"),
    TokenRule("jwt", r"eyJ[A-Za-z0-9_-]{10,400}\.eyJ[A-Za-z0-9_-]{10}",
              # an unsigned token (``alg: none``) has an empty third part: jwt_header_ok checks the header says so
              r"(?<![A-Za-z0-9_-])(?P<v>eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.(?:[A-Za-z0-9_-]{16,}|(?![A-Za-z0-9_-])))"),
    TokenRule("authorization-header", r"\b(bearer|basic|token|negotiate|ntlm)\s+[A-Za-z0-9._~+/-]{16}",
              r"(?i:\b(?:bearer|basic|token|negotiate|ntlm))\s+(?P<v>[A-Za-z0-9._~+/-]{16,}=*)", caseless=True),
    # inside an Authorization header a shorter value is still its credential (``Basic Ym9iOmh1bnRlcjI=``)
    TokenRule("authorization-header",
              r"authorization[\"']?\s{0,2}[:=,]\s{0,2}[\"']?(basic|bearer|token|negotiate|ntlm)\s+[A-Za-z0-9._~+/-]{8}",
              r"(?i:authorization)[\"']?\s*[:=,]\s*[\"']?(?i:basic|bearer|token|negotiate|ntlm)\s+"
              r"(?P<v>[A-Za-z0-9._~+/-]{8,}=*)", caseless=True),
    TokenRule("url-credentials", r"[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s/@:\"'<>]{0,64}:[^\s/@\"'<>]{1,128}@",
              r"[a-zA-Z][a-zA-Z0-9+.-]{1,20}://(?P<u>[^\s/@:\"'<>]{0,64}):(?P<v>[^\s/\"'<>]{1,128})@(?P<h>[^\s/\"'<>:@]+)"),
    TokenRule("url-query-credential",
              r"[?&](access_token|api_key|apikey|api-key|token|auth|auth_token|password|passwd|secret|client_secret|key|sig|signature)=[^&\s\"'#]{8}",
              r"[?&](?i:access_token|api_key|apikey|api-key|token|auth|auth_token|password|passwd|secret|client_secret|key|sig|signature)=(?P<v>[^&\s\"'#<>]{8,})",
              caseless=True),
)


#: Vendors' full structures: prefix, exact length and fixed marks (Anthropic's ``AA`` end, Azure
#: DevOps' ``JQQJ`` and ``AZDO``). A value with all of them has the vendor's format to the character,
#: so a typed-looking stretch inside it (``…abc123xyz…``) does not make it a filler; the looser
#: shapes (a prefix and a minimum length, generic assignments) are still judged by the filler test.
FULL_STRUCTURES: dict[str, re.Pattern] = {
    "anthropic-api-key": re.compile(r"sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{93}AA"),
    "azure-devops-pat": re.compile(r"[A-Za-z0-9]{52}JQQJ[A-Za-z0-9]{20}AZDO[A-Za-z0-9]{4}"),
}


def has_full_structure(rule: str, value: str) -> bool:
    """Whether ``value`` matches the whole of ``rule``'s vendor structure (:data:`FULL_STRUCTURES`).

    >>> has_full_structure("anthropic-api-key", "sk-ant-api03-" + "k" * 93 + "AA")
    True
    >>> has_full_structure("anthropic-api-key", "sk-ant-api03-" + "k" * 93 + "BB")
    False
    """
    structure = FULL_STRUCTURES.get(rule)
    return structure is not None and structure.fullmatch(value) is not None
