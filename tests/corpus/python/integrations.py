import hmac
import hashlib

import jwt
import requests
import stripe

stripe.api_key = "sk_live_Odda2m1tuwc480Ve3X297bBvFAx4vOToGfrrMzLpTdidmCGlhM7JF8DccR" ⟦S⟧
SLACK_BOT_TOKEN = "xoxb-763817018465-3067772356957-in865Mm3eprAquCF5tlYeSYJ" ⟦S⟧
SLACK_WEBHOOK = "https://hooks.slack.com/services/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" ⟦S⟧
GITHUB_TOKEN = "ghp_T0YSUsHFb9JwIpAmf4cPAKYH1JjXheIRLlVr" ⟦S⟧
MAPS_KEY = "AIzaVD1_DbnHqCamLqxXcywT8TWT3r9LEyhCS9P" ⟦S⟧
SENDGRID = "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" ⟦S⟧
TWILIO_API_KEY_SID = "SK491ab79b18cca2299b5ea48bbd566c27" ⟦S⟧
TWILIO_AUTH_TOKEN = "3899b5b9b4de9830313526ac15d7e9a5" ⟦S⟧
OPENAI_API_KEY = "sk-proj-v8aiP4f9uSu5z4YHRt7ABivMdQtk_FNIEpn2hSkrrupz4ujAi6PyUoLzKZAXSR1K" ⟦S⟧
MAILGUN_KEY = "key-521b0650ce5099a2b749d4a45909452b" ⟦S⟧
SERVICE_JWT = "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAic3ZjLW9yZGVycyIsICJpYXQiOiAxNzE4MDAwMDAwLCAic2NvcGUiOiAib3JkZXJzOndyaXRlIn0.FIzJ-N94xukrOYQDosQhATwabLPvCvEf0sgMCIKK1k5" ⟦S⟧
PARTNER = {"name": "acme-logistics", "key": "M9LAGC3SI3omJne0MyBiPxkUszRrqiNiL7O2"} ⟦S⟧
HEADERS = {"x-api-key": "SFdBRcCNN9F3RZAbu1aGdKDa", "accept": "application/json"} ⟦S⟧


def notify(message):
    requests.post(SLACK_WEBHOOK, json={"text": message}, timeout=5)


def sign(body: bytes) -> str:
    return hmac.new(b"WWSdzhFAh0vzoqdy3BabFbPSf58t", body, hashlib.sha256).hexdigest() ⟦S⟧


def verify(token):
    return jwt.decode(token, "4sJ6yj9d1C7wYPOvKaxibLXmJsN1dREC", algorithms=["HS256"]) ⟦S⟧


def fetch_report(session):
    return session.get("https://reports.partner.example.com/v2/daily?api_key=WWSdzhFAh0vzoqdy3BabFbPSf58t&format=csv") ⟦S⟧


def call_partner(session, token):
    return session.get("https://api.partner.example.com/v1/orders", headers={"Authorization": f"Bearer {token}"}) ⟦N⟧


def call_legacy(session):
    return session.get("https://legacy.partner.example.com/v1", headers={"Authorization": "Bearer qiErVHp5bMgZvfe5BskYSohBBOaAxApOxTjLgFmeJ8kXHj4c"}) ⟦S⟧
