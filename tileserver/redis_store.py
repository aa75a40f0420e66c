"""The Redis cache: re-exported from :mod:`generator.stores.redis_store`, where it now lives
(the generator's seeder writes the server's keys without importing the server)."""

from __future__ import annotations

from generator.stores.redis_store import SCHEMES, RedisStore, RedisURL, parse_redis_url

__all__ = ["SCHEMES", "RedisStore", "RedisURL", "parse_redis_url"]
