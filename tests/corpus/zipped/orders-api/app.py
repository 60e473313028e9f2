import boto3

ACCESS_KEY = "AKIASPVULJXAPJI5BSWG" ⟦S⟧
SECRET_KEY = "8K6ixBtKAD7aTFQbME/ppbEyGIJzN+chxYAQzHIi" ⟦S⟧
TABLE = "orders" ⟦N⟧


def handler(event, context):
    client = boto3.client("dynamodb", aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY) ⟦N⟧
    return client.scan(TableName=TABLE)["Count"]
