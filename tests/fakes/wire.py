"""The callback wire builder lives in the package (the demo uses it too)."""

from bot.devtools.wire import Signed, WeComWire, message_xml

__all__ = ["Signed", "WeComWire", "message_xml"]
