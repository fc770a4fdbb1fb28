"""WeCom's callback cryptography (企业微信 "加解密方案"), used by the connector and the sandbox.

The scheme is implemented once, in `connectors/msgcrypt.py` (DingTalk uses it too); this
module gives it WeCom's names and `WeComCrypto`, one callback configuration. WeCom's
`Encrypt` arrives as XML text, so surrounding whitespace is dropped before decoding.
"""

from __future__ import annotations

from connectors.msgcrypt import (
    BLOCK,
    BadCiphertext,
    BadKey,
    BadLength,
    BadPadding,
    CryptoError,
    Decrypted,
    WrongReceiver,
    aes_key,
    decrypt,
    decrypt_raw,
    encrypt,
    pad,
    signature,
    signature_matches,
    unpad,
)

__all__ = ["BLOCK", "BadCiphertext", "BadKey", "BadLength", "BadPadding", "CryptoError", "Decrypted", "WeComCrypto",
           "WrongReceiver", "aes_key", "decrypt", "decrypt_raw", "encrypt", "pad", "signature", "signature_matches",
           "unpad"]


class WeComCrypto:
    """One callback configuration: token, EncodingAESKey and the corp id messages are for."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return signature(self.token, timestamp, nonce, encrypted)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> bool:
        return signature_matches(self.token, timestamp, nonce, encrypted, msg_signature)

    def encrypt(self, message: bytes, random_prefix: bytes | None = None) -> str:
        return encrypt(self.key, message, self.receive_id, random_prefix)

    def decrypt(self, encrypted: str) -> bytes:
        return decrypt(self.key, encrypted.strip(), self.receive_id).message
