"""Encryption at rest for OAuth tokens, API keys and signing secrets.

MultiFernet: the first key encrypts, every key decrypts, so keys rotate without downtime.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("TOKEN_ENCRYPTION_KEYS is empty: at least one Fernet key is needed")
        fernets = []
        for key in keys:
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError) as exc:
                # A passphrase instead of a Fernet key: derive one, so operators are not punished
                # for a common mistake, but the derivation is deterministic and documented.
                if len(key) < 16:
                    raise ValueError("a TOKEN_ENCRYPTION_KEYS entry is too short") from exc
                derived = base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())
                fernets.append(Fernet(derived))
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(
                "stored secret cannot be decrypted with TOKEN_ENCRYPTION_KEYS"
            ) from exc

    def encrypt_json(self, value: Any) -> str:
        return self.encrypt(json.dumps(value, sort_keys=True))

    def decrypt_json(self, token: str | None) -> Any:
        if not token:
            return None
        return json.loads(self.decrypt(token))

    def rotate(self, token: str) -> str:
        """Re-encrypt under the newest key."""
        return self._fernet.rotate(token.encode()).decode()


def hash_token(token: str) -> str:
    """API tokens are stored as SHA-256: they are random and long, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()
