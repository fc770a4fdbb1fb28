"""DingTalk's callback cryptography, shared by the connector (to read) and the sandbox (to send).

The scheme is WeCom's with JSON around it: AES-256-CBC with the key decoded from the
43-character `aes_key` plus "=", the key's first 16 bytes as IV, and PKCS#7 padding to a
multiple of 32 bytes (not AES's 16: DingTalk's own samples pad to 32, so a strict 16-byte
unpadder refuses valid messages). The plaintext is 16 random bytes, the message length as
4 bytes big-endian, the message, and the owner key (corp id, suite key or app key) the
message was encrypted for. The signature is the hex SHA-1 of the sorted concatenation of
token, timestamp, nonce and ciphertext.

The scheme is implemented once, in `connectors/msgcrypt.py`; this module gives it DingTalk's
names and argument order. Everything is a pure function over bytes and strings, so that the
published worked example can be reproduced byte for byte (the random prefix is a parameter).
"""

from __future__ import annotations

import hmac

from connectors import msgcrypt
from connectors.msgcrypt import BLOCK, CryptoError, aes_key, pad, signature, unpad

__all__ = ["BLOCK", "CryptoError", "aes_key", "decrypt", "encrypt", "owner_matches", "pad", "signature",
           "signature_matches", "unpad"]


def signature_matches(expected: str, token: str, timestamp: str, nonce: str, encrypt: str) -> bool:
    """Constant-time comparison of a received signature with the one we compute."""
    return hmac.compare_digest(signature(token, timestamp, nonce, encrypt).encode(), expected.lower().encode())


def encrypt(message: bytes, key: bytes, owner_key: str, prefix: bytes | None = None) -> str:
    """The base64 ciphertext of `message` for `owner_key`; `prefix` is the 16 random bytes."""
    return msgcrypt.encrypt(key, message, owner_key, prefix)


def decrypt(ciphertext: str, key: bytes) -> tuple[bytes, str, bytes]:
    """(message, owner key, random prefix) from a base64 ciphertext; CryptoError if it is not one."""
    found = msgcrypt.decrypt_raw(key, ciphertext)
    return found.message, found.receive_id, found.random_prefix


def owner_matches(received: str, configured: str) -> bool:
    """Constant-time comparison of the owner key in a message with the configured one."""
    return hmac.compare_digest(received.encode("utf-8"), configured.encode("utf-8"))
