"""Feishu's event-callback cryptography: AES-256-CBC under SHA-256(encrypt_key), and the signature.

Feishu encrypts a callback body as `{"encrypt": base64(IV || AES-256-CBC(plaintext))}` with
the key SHA-256(Encrypt Key) and a random 16-byte IV in front of the ciphertext, padded with
PKCS#7 over AES's 16-byte block. The padding is checked here by hand (1..16 bytes, all equal)
so that a wrong key or a truncated body is refused as such instead of yielding garbage.

The request signature is the hex SHA-256 of timestamp + nonce + Encrypt Key + raw body,
sent in `X-Lark-Signature`. The sandbox uses the same functions to encrypt and sign what it
sends, so that both sides are tested against the documented worked example
(`test key` → `hello world`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16  # AES block size, and the PKCS#7 block Feishu pads to


class CryptoError(ValueError):
    """A ciphertext that cannot be Feishu's: bad base64, bad length, or bad padding."""


def aes_key(encrypt_key: str) -> bytes:
    """The AES-256 key: SHA-256 of the Encrypt Key as typed in the developer console."""
    return hashlib.sha256(encrypt_key.encode("utf-8")).digest()


def pad(data: bytes) -> bytes:
    """PKCS#7 to a 16-byte block; a full block is added when the data already fills one."""
    count = BLOCK - len(data) % BLOCK
    return data + bytes([count]) * count


def unpad(data: bytes) -> bytes:
    """Remove PKCS#7 padding, refusing anything that is not exactly valid padding."""
    if not data or len(data) % BLOCK:
        raise CryptoError("plaintext is not a whole number of blocks")
    count = data[-1]
    if not 1 <= count <= BLOCK or data[-count:] != bytes([count]) * count:
        raise CryptoError("bad PKCS#7 padding")
    return data[:-count]


def encrypt(encrypt_key: str, plaintext: bytes, iv: bytes | None = None) -> str:
    """base64(IV || ciphertext), as Feishu sends it; a random IV unless one is given."""
    iv = os.urandom(BLOCK) if iv is None else iv
    if len(iv) != BLOCK:
        raise CryptoError("the IV must be 16 bytes")
    encryptor = Cipher(algorithms.AES(aes_key(encrypt_key)), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(pad(plaintext)) + encryptor.finalize()
    return base64.b64encode(iv + sealed).decode("ascii")


def split(encrypted: str) -> tuple[bytes, bytes]:
    """The IV and the ciphertext of an `encrypt` value, checked for shape."""
    try:
        raw = base64.b64decode(encrypted.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise CryptoError("encrypt is not base64") from None
    if len(raw) < 2 * BLOCK or len(raw) % BLOCK:
        raise CryptoError("ciphertext has a wrong length (truncated?)")
    return raw[:BLOCK], raw[BLOCK:]


def decrypt(encrypt_key: str, encrypted: str) -> bytes:
    """The plaintext of an `encrypt` value; CryptoError when it cannot be one of ours."""
    iv, sealed = split(encrypted)
    decryptor = Cipher(algorithms.AES(aes_key(encrypt_key)), modes.CBC(iv)).decryptor()
    return unpad(decryptor.update(sealed) + decryptor.finalize())


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """`X-Lark-Signature`: hex SHA-256 of timestamp + nonce + Encrypt Key + raw body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode("utf-8") + body).hexdigest()


def signature_matches(expected: str, given: str) -> bool:
    """Constant-time comparison of two hex signatures (case-insensitive, as hex is)."""
    return hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("utf-8", "replace"))
