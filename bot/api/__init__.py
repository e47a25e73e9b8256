"""The authenticated JSON API (/api/v1/): data in by external_id, OpenAPI from the import spec tables."""

from bot.api.routes import setup_api

__all__ = ["setup_api"]
