"""DingTalk's callback cryptography, shared by the connector (to read) and the sandbox (to send).

The scheme is WeCom's with JSON around it: AES-256-CBC with the key decoded from the
43-character `aes_key` plus "=", the key's first 16 bytes as IV, and PKCS#7 padding to a
multiple of 32 bytes (not AES's 16: DingTalk's own samples pad to 32, so a strict 16-byte
unpadder refuses valid messages). The plaintext is 16 random bytes, the message length as
4 bytes big-endian, the message, and the owner key (corp id, suite key or app key) the
message was encrypted for. The signature is the hex SHA-1 of the sorted concatenation of
token, timestamp, nonce and ciphertext.

Everything here is a pure function over bytes and strings, so that the published worked
example can be reproduced byte for byte (the random prefix is a parameter).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # DingTalk's PKCS#7 block, twice AES's
_AES_BLOCK = 16
_PREFIX = 16
_LENGTH = struct.Struct(">I")


class CryptoError(ValueError):
    """A callback that cannot be authenticated or decrypted; the message names why, never a key."""


def aes_key(encoding_key: str) -> bytes:
    """The 32-byte AES key behind a 43-character `aes_key` (base64 without its final '=')."""
    try:
        key = base64.b64decode(encoding_key + "=", validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("aes_key is not base64") from None
    if len(key) != 32:
        raise CryptoError("aes_key must be 43 characters (32 bytes once decoded)")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """Hex SHA-1 over the four values sorted and concatenated, as DingTalk signs."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode("utf-8")).hexdigest()


def signature_matches(expected: str, token: str, timestamp: str, nonce: str, encrypt: str) -> bool:
    """Constant-time comparison of a received signature with the one we compute."""
    return hmac.compare_digest(signature(token, timestamp, nonce, encrypt).encode(), expected.lower().encode())


def pad(data: bytes) -> bytes:
    """PKCS#7 to a multiple of 32 bytes: 1 to 32 bytes, each holding the count."""
    count = BLOCK - len(data) % BLOCK
    return data + bytes([count]) * count


def unpad(data: bytes) -> bytes:
    """Undo `pad`, refusing anything a DingTalk sender could not have produced."""
    if not data:
        raise CryptoError("empty plaintext")
    count = data[-1]
    if not 1 <= count <= BLOCK or count > len(data) or data[-count:] != bytes([count]) * count:
        raise CryptoError("bad padding")
    return data[:-count]


def encrypt(message: bytes, key: bytes, owner_key: str, prefix: bytes | None = None) -> str:
    """The base64 ciphertext of `message` for `owner_key`; `prefix` is the 16 random bytes."""
    prefix = os.urandom(_PREFIX) if prefix is None else prefix
    if len(prefix) != _PREFIX:
        raise ValueError("the random prefix must be 16 bytes")
    plain = pad(prefix + _LENGTH.pack(len(message)) + message + owner_key.encode("utf-8"))
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")


def decrypt(ciphertext: str, key: bytes) -> tuple[bytes, str, bytes]:
    """(message, owner key, random prefix) from a base64 ciphertext; CryptoError if it is not one."""
    try:
        raw = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("ciphertext is not base64") from None
    if not raw or len(raw) % _AES_BLOCK:
        raise CryptoError("ciphertext is truncated")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = unpad(decryptor.update(raw) + decryptor.finalize())
    if len(plain) < _PREFIX + _LENGTH.size:
        raise CryptoError("plaintext too short")
    (length,) = _LENGTH.unpack_from(plain, _PREFIX)
    start = _PREFIX + _LENGTH.size
    if start + length > len(plain):
        raise CryptoError("message length runs past the plaintext")
    try:
        owner = plain[start + length :].decode("utf-8")
    except UnicodeDecodeError:
        raise CryptoError("owner key is not text") from None
    return plain[start : start + length], owner, plain[:_PREFIX]


def owner_matches(received: str, configured: str) -> bool:
    """Constant-time comparison of the owner key in a message with the configured one."""
    return hmac.compare_digest(received.encode("utf-8"), configured.encode("utf-8"))
