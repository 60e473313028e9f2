"""lambda-secrets-runbook: move AWS Lambda secrets into Secrets Manager, with evidence.

The notebooks in ``notebooks/`` call this library; it talks to AWS (or the embedded lab)
through boto3 clients handed to it by :class:`runbook_lib.session.Target`.
"""

__version__ = "0.1.0"
