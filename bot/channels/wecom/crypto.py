"""WeCom callback crypto: signature in constant time, AES-256-CBC via wechatpy's cipher, strict framing.

wechatpy compares signatures with `!=` and does not check the PKCS#7 padding (FACTS.md), so the
signature check and the framing checks live here; the AES itself is wechatpy's WeChatCipher.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import struct

from wechatpy.crypto.base import WeChatCipher

BLOCK = 32  # WeCom pads to a multiple of 32 bytes, not AES's 16


class CryptoError(ValueError):
    """The payload is not a well-formed WeCom ciphertext."""


class SignatureError(CryptoError):
    """msg_signature does not match."""


class ReceiverError(CryptoError):
    """The decrypted receiveid is not this corp."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """SHA-1 hex of the four strings sorted and joined (FACTS.md WeCom 1)."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode("utf-8")).hexdigest()  # noqa: S324 - protocol


class WeComCrypto:
    """Verify, decrypt and (for tests and the demo) encrypt WeCom callback payloads."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        key = base64.b64decode(encoding_aes_key + "=")
        if len(key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        self._token = token
        self._cipher = WeChatCipher(key)
        self._receive_id = receive_id.encode("utf-8")

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        expected = signature(self._token, timestamp, nonce, encrypted)
        if not secrets.compare_digest(expected.encode("ascii"), msg_signature.lower().encode("ascii", "replace")):
            raise SignatureError("bad msg_signature")

    def decrypt(self, encrypted: str) -> str:
        """Decrypt to the message text; checks base64, padding, length field and receiveid."""
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("ciphertext is not base64") from None
        if not raw or len(raw) % 16:
            raise CryptoError("ciphertext length is not a multiple of the AES block")
        plain: bytes = self._cipher.decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or pad > len(plain) or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CryptoError("message too short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise CryptoError("length field exceeds the message")
        message, receive_id = content[4 : 4 + length], content[4 + length :]
        if not secrets.compare_digest(receive_id, self._receive_id):
            raise ReceiverError("receiveid does not match the corp id")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError("message is not valid UTF-8") from None

    def verify_and_decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
        self.verify(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def encrypt(self, message: str | bytes, *, random_prefix: bytes | None = None) -> str:
        """Encrypt like WeCom does (used by the tests' wire builder and the demo)."""
        body = message.encode("utf-8") if isinstance(message, str) else message
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        if len(prefix) != 16:
            raise ValueError("random prefix must be 16 bytes")
        data = prefix + struct.pack(">I", len(body)) + body + self._receive_id
        pad = BLOCK - len(data) % BLOCK
        data += bytes([pad]) * pad
        return base64.b64encode(self._cipher.encrypt(data)).decode("ascii")
