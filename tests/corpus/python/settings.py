import os

DEBUG = False
LOG_LEVEL = "INFO" ⟦N⟧
DB_HOST = "orders.cluster-c9xk2abc.us-east-1.rds.amazonaws.com" ⟦N⟧
DB_USER = "orders_app" ⟦N⟧
DB_PASSWORD = "Tq7!vR2m#Lx9" ⟦S⟧
DB_PASSWORD_MIN_LENGTH = 12 ⟦N⟧
REDIS_URL = "redis://:Ld9k2Qm7vX@cache.internal:6379/0" ⟦S⟧
CACHE_URL = "redis://cache.internal:6379/1" ⟦N⟧
SECRET_KEY = "HrjMmH1gr6mzR1CWkNe01qLqJAUaq4KerDlkjRxn" ⟦S⟧
SESSION_TOKEN_TTL = 3600 ⟦N⟧
TOKEN_URL = "https://login.partner.example.com/oauth2/token" ⟦N⟧
CLIENT_ID = "orders-service" ⟦N⟧
CLIENT_SECRET = "4sJ6yj9d1C7wYPOvKaxibLXmJsN1dREC" ⟦S⟧
OAUTH_SCOPES = ["orders:read", "orders:write"]
KMS_KEY_ID = "3f2b8c1e-9d4a-4e7b-8c2f-1a6d5e9b0c47" ⟦N⟧
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/db-Ab12Cd" ⟦N⟧
SECRET_NAME = "orders/db" ⟦N⟧
API_TOKEN = os.getenv("API_TOKEN") ⟦N⟧
ADMIN_PASSWORD = "changeme" ⟦N⟧
SMTP_PASSWORD = "" ⟦N⟧
SMTP_PASS = "hX8$kq2Z" ⟦S⟧
WEBHOOK_SECRET = "<set-in-secrets-manager>" ⟦N⟧
SIGNING_KEY = "0c8e28ec281c7f581766e572ce85be6a" ⟦S⟧
PASSWORD_REGEX = r"^(?=.*[A-Z])(?=.*\d).{12,}$" ⟦N⟧
AUTH_HEADER = "Authorization" ⟦N⟧
TOKEN_TYPE = "Bearer" ⟦N⟧
GIT_SHA = "07f36a1e528062343d4e3fcbc2ede913bf6e180d" ⟦N⟧
SENTRY_DSN = "https://0c8e28ec281c7f581766e572ce85be6a@o450123.ingest.sentry.io/5512345" ⟦N⟧
app_secret_key = "super-secret-dev-key" ⟦S⟧
