"""The callback cryptography WeCom publishes ("加解密方案", WXBizMsgCrypt) and DingTalk reuses.

One scheme, two vendors: WeCom wraps it in XML, DingTalk in JSON, and each names the parts
its own way (EncodingAESKey / aes_key, receive id / owner key), so each vendor package keeps
a thin module of its own names (`connectors/wecom/crypto.py`, `connectors/dingtalk/crypto.py`)
over this one implementation.

Written out rather than borrowed: a receiver must refuse every malformed ciphertext with a
typed error (a truncated body, a bad pad, a wrong receiver) rather than slice bytes and hope,
and a sandbox must produce byte-identical ciphertexts from a given random prefix so that the
vendors' published worked examples can be reproduced.

- AES key = base64-decode(key + "="): the 43-character key is a 32-byte key in unpadded
  base64. AES-256-CBC with IV = key[:16].
- Plaintext = 16 random bytes + 4-byte big-endian length of the message + message + receive
  id, padded with PKCS#7 to a multiple of **32** bytes (not AES's 16: a pad byte may be
  anything from 1 to 32).
- Signature = hex SHA-1 of the concatenation of the sorted strings
  [token, timestamp, nonce, encrypted].
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # both vendors pad to 32 bytes, not to the AES block size
_AES_BLOCK = 16
_RANDOM_PREFIX = 16
_LENGTH_FIELD = 4


class CryptoError(ValueError):
    """A callback that does not decrypt to a message for us; the message says what was wrong."""


class BadKey(CryptoError):
    """The 43-character key (WeCom's EncodingAESKey, DingTalk's aes_key) is not base64 making 32 bytes."""


class BadCiphertext(CryptoError):
    """Not base64, or not a whole number of 32-byte blocks (a truncated body)."""


class BadPadding(CryptoError):
    """The PKCS#7 pad is not 1..32 copies of its own length (a wrong key decrypts to this)."""


class BadLength(CryptoError):
    """The length field points past the end of the plaintext."""


class WrongReceiver(CryptoError):
    """The receive id inside the plaintext (WeCom: the corp id; DingTalk: the owner key) is not ours."""


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key a 43-character EncodingAESKey (DingTalk: aes_key) stands for."""
    if len(encoding_aes_key) != 43:
        raise BadKey("the AES key must have 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        raise BadKey("the AES key is not base64") from None
    if len(key) != 32:
        raise BadKey("the AES key does not make 32 bytes")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """WeCom's msg_signature: hex SHA-1 over the sorted, concatenated parts."""
    joined = "".join(sorted([token, timestamp, nonce, encrypted]))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


def signature_matches(token: str, timestamp: str, nonce: str, encrypted: str, given: str) -> bool:
    """Constant-time comparison of a received msg_signature with the expected one."""
    expected = signature(token, timestamp, nonce, encrypted)
    return hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("utf-8", "replace"))


def pad(data: bytes) -> bytes:
    """PKCS#7 to a multiple of 32: always 1..32 bytes, each holding the pad length."""
    count = BLOCK - len(data) % BLOCK
    return data + bytes([count]) * count


def unpad(data: bytes) -> bytes:
    """Strict PKCS#7 removal: every pad byte must hold the pad length, 1..32."""
    if not data or len(data) % BLOCK:
        raise BadPadding("plaintext is not a whole number of 32-byte blocks")
    count = data[-1]
    if not 1 <= count <= BLOCK or data[-count:] != bytes([count]) * count:
        raise BadPadding("PKCS#7 padding is malformed")
    return data[:-count]


@functools.lru_cache(maxsize=32)
def _cipher(key: bytes) -> Cipher[modes.CBC]:
    """One reusable cipher per key (the IV is fixed by the key); each use takes a fresh context."""
    return Cipher(algorithms.AES(key), modes.CBC(key[:_AES_BLOCK]))


def encrypt(key: bytes, message: bytes, receive_id: str, random_prefix: bytes | None = None) -> str:
    """Base64 ciphertext of `message` for `receive_id`; `random_prefix` (16 bytes) for reproducible tests."""
    prefix = os.urandom(_RANDOM_PREFIX) if random_prefix is None else random_prefix
    if len(prefix) != _RANDOM_PREFIX:
        raise ValueError("the random prefix must be 16 bytes")
    plain = prefix + struct.pack(">I", len(message)) + message + receive_id.encode("utf-8")
    encryptor = _cipher(key).encryptor()
    return base64.b64encode(encryptor.update(pad(plain)) + encryptor.finalize()).decode("ascii")


@dataclass(frozen=True)
class Decrypted:
    """What a ciphertext held: the message, the receive id, and the random prefix."""

    message: bytes
    receive_id: str
    random_prefix: bytes


def decrypt_raw(key: bytes, encrypted: str) -> Decrypted:
    """Decrypt and unpack without checking the receive id (see `decrypt`)."""
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise BadCiphertext("ciphertext is not base64") from None
    if not raw or len(raw) % BLOCK:
        raise BadCiphertext("ciphertext is not a whole number of 32-byte blocks")
    decryptor = _cipher(key).decryptor()
    plain = unpad(decryptor.update(raw) + decryptor.finalize())
    if len(plain) < _RANDOM_PREFIX + _LENGTH_FIELD:
        raise BadLength("plaintext is shorter than its header")
    (length,) = struct.unpack(">I", plain[_RANDOM_PREFIX : _RANDOM_PREFIX + _LENGTH_FIELD])
    start = _RANDOM_PREFIX + _LENGTH_FIELD
    if start + length > len(plain):
        raise BadLength("message length points past the end of the plaintext")
    receive_id = plain[start + length :].decode("utf-8", "replace")
    return Decrypted(plain[start : start + length], receive_id, plain[:_RANDOM_PREFIX])


def decrypt(key: bytes, encrypted: str, receive_id: str) -> Decrypted:
    """The message inside `encrypted`, refused unless it was made for `receive_id`."""
    found = decrypt_raw(key, encrypted)
    if not hmac.compare_digest(found.receive_id.encode("utf-8"), receive_id.encode("utf-8")):
        raise WrongReceiver("the message was encrypted for another receiver")
    return found
