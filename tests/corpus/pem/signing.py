import jwt

PRIVATE_KEY = """-----BEGIN EC PRIVATE KEY----- ⟦S⟧
E1EwUK0/qhUCVBUthByvKjvAEX/l19TUhuB/SgaknVvJYrq/FhANREhQkZoMu4T+
IKewh8zdkPbgFZrK6f9nw6N2CzRjgYuSaRJgEzU3xs+8iFmA6/FxcnabQ+a2ZSpd
mduRMrjvTPxL5BxFSQ0Cz4eV9fc/KB39HoqShNpCHfr8z9+ZsXmVu5nYAww7OYIy
T8xrF1bECSLG22dLCSFDeTOVwRVZgOw4CreuT5RsiLRMp8ROr/xaay+/Q2pBNHjZ
6Sp7F1otp9yN/MXsIuVrnC8JvApqc8wpifX7oLAMQ2KoOqvSl/Cr9lnXDC00zrrT
cAr13LxbHpnLhK8tUMKopDeirvGOSqPTArCZ1XOw1v5LNC5G5Xi4Giim0/zS/bnN
rmfuUcwP9yA6yozqhDCMgvWkVL8fkz0JXzCqFZilhUM0ccHKxatXqFikj8hmYfkj
ozF5ocdo9/PLVGqaXe5Vj2pmRuqrgcEk
-----END EC PRIVATE KEY-----"""
PEM_HEADER = "-----BEGIN RSA PRIVATE KEY-----" ⟦N⟧


def sign(payload):
    return jwt.encode(payload, PRIVATE_KEY, algorithm="ES256")


def is_private_key(text):
    return text.startswith("-----BEGIN PRIVATE KEY-----") ⟦N⟧
