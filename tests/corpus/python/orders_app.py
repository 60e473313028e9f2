"""orders-api: reads the orders table and notifies the partner API."""
import json
import os
import urllib.request

import boto3

AWS_ACCESS_KEY_ID = "AKIACSRMR4TNG4UMSDCX" ⟦S⟧
AWS_SECRET_ACCESS_KEY = "8K6ixBtKAD7aTFQbME/ppbEyGIJzN+chxYAQzHIi" ⟦S⟧
TABLE_NAME = os.environ.get("TABLE_NAME", "orders") ⟦N⟧
PARTNER_API_URL = os.environ["PARTNER_API_URL"] ⟦N⟧
PARTNER_API_KEY = os.environ["PARTNER_API_KEY"] ⟦N⟧

dynamodb = boto3.client(
    "dynamodb",
    aws_access_key_id=AWS_ACCESS_KEY_ID, ⟦N⟧
    aws_secret_access_key=AWS_SECRET_ACCESS_KEY, ⟦N⟧
)


def handler(event, context):
    items = dynamodb.scan(TableName=TABLE_NAME)["Items"]
    request = urllib.request.Request(
        PARTNER_API_URL,
        data=json.dumps({"orders": len(items)}).encode(),
        headers={"x-api-key": PARTNER_API_KEY, "content-type": "application/json"}, ⟦N⟧
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = json.loads(response.read())
    return {"statusCode": 200, "body": json.dumps({"orders": len(items), "partner": body.get("status")})}
