"""Known-answer vectors for WeCom callback crypto (FACTS.md: WeCom docs, wechatpy's tests)."""

from __future__ import annotations

import base64

import pytest

from bot.channels.wecom.crypto import CryptoError, ReceiverError, SignatureError, WeComCrypto, signature
from bot.channels.wecom.parser import parse_flat

DOCS = WeComCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
DOCS_POST_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJT"
    "s3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hg"
    "f5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4Ehz"
    "JWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2Yoy"
    "yH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
DOCS_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="

WECHATPY = WeComCrypto("123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a")


def test_docs_get_vector() -> None:
    plain = DOCS.verify_and_decrypt("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", DOCS_ECHOSTR)
    assert plain == "1616140317555161061"


def test_docs_post_vector() -> None:
    plain = DOCS.verify_and_decrypt(
        "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", DOCS_POST_ENCRYPT
    )
    fields = parse_flat(plain)
    assert fields["FromUserName"] == "mycreate"
    assert fields["Content"] == "hello"
    assert fields["AgentID"] == "218"


def test_wechatpy_decrypt_vector() -> None:
    encrypted = (
        "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzx"
        "h6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOA"
        "QqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccT"
        "Ke7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
    )
    plain = WECHATPY.verify_and_decrypt(
        "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", encrypted
    )
    fields = parse_flat(plain)
    assert (fields["Content"], fields["FromUserName"]) == ("test", "messense")


def test_wechatpy_signature_vector() -> None:
    WECHATPY.verify(
        "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
        "1411443780",
        "437374425",
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
    )
    with pytest.raises(SignatureError):
        WECHATPY.verify(
            "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
            "1411443780",
            "437374424",
            "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
        )


def test_wechatpy_deterministic_encryption_vector() -> None:
    """wechatpy's encrypt case: fixed random prefix → the exact ciphertext and signature."""
    reply = (
        "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
        "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n"
        "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
    )
    encrypted = WECHATPY.encrypt(reply, random_prefix=b"1234567890123456")
    assert encrypted.startswith("9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk")
    assert encrypted.endswith("nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3")
    assert signature("123456", "1411525903", "461056294", encrypted) == "407518b7649e86ef23978113f92d27afa9296533"


def test_round_trip_chinese_and_length_in_bytes() -> None:
    text = "<xml><Content><![CDATA[你好，华远科技 😀]]></Content></xml>"
    assert DOCS.decrypt(DOCS.encrypt(text)) == text


def test_wrong_receiver_rejected() -> None:
    other = WeComCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwOTHERCORP")
    with pytest.raises(ReceiverError):
        DOCS.decrypt(other.encrypt("<xml/>"))


@pytest.mark.parametrize(
    "ciphertext",
    ["", "not base64!!", base64.b64encode(b"short").decode(), base64.b64encode(b"x" * 32).decode()],
)
def test_garbage_ciphertext_is_a_crypto_error(ciphertext: str) -> None:
    with pytest.raises(CryptoError):
        DOCS.decrypt(ciphertext)


def test_signature_compare_rejects_non_hex_without_crashing() -> None:
    with pytest.raises(SignatureError):
        DOCS.verify("ü" * 40, "1", "2", DOCS_ECHOSTR)


TENCENT = WeComCrypto(
    "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", "ww1436e0e65a779aee"
)
TENCENT_POST_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkY"
    "cD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4"
    "Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082"
    "f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)


def test_tencent_python_sample_vectors() -> None:
    """Tencent's callback/Sample.py (weworkapi_python): GET echostr and a POST with Chinese content,
    whose length field counts UTF-8 bytes, not characters."""
    echo = TENCENT.verify_and_decrypt(
        "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683",
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
    )
    assert echo == "1288432023552776189"
    plain = TENCENT.verify_and_decrypt(
        "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", TENCENT_POST_ENCRYPT
    )
    fields = parse_flat(plain)
    assert (fields["FromUserName"], fields["Content"], fields["AgentID"]) == ("ChenJiaShun", "你好", "1000002")
    assert len(plain.encode("utf-8")) == 228 and len(plain) == 224
