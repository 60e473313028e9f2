"""Fetch the partner credentials from Secrets Manager once per execution environment."""
import json
import os

import boto3

secretName = "app/api/key" ⟦N⟧
SECRET_ID = os.environ.get("SECRET_ID", "orders/partner") ⟦N⟧
secret_arn = os.environ["SECRET_ARN"] ⟦N⟧
_client = boto3.client("secretsmanager")
_cache = {}


def get_secret(name=secretName): ⟦N⟧
    if name not in _cache:
        response = _client.get_secret_value(SecretId=name) ⟦N⟧
        _cache[name] = json.loads(response["SecretString"]) ⟦N⟧
    return _cache[name]


def partner_headers():
    secret = get_secret("app/api/key") ⟦N⟧
    api_key = secret["api_key"] ⟦N⟧
    token = secret.get("token", "") ⟦N⟧
    return {"x-api-key": api_key, "Authorization": f"Bearer {token}"} ⟦N⟧


def rotate(client, secret_id):
    new_password = client.get_random_password(PasswordLength=32, ExcludePunctuation=True)["RandomPassword"] ⟦N⟧
    client.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"password": new_password})) ⟦N⟧
