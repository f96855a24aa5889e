"""API keys and their scopes: who may read or write which collection, and who may administer."""

from voicerag.auth.keys import ApiKeys, KeyRecord
from voicerag.auth.scopes import ANONYMOUS, Principal, parse_scopes

__all__ = ["ANONYMOUS", "ApiKeys", "KeyRecord", "Principal", "parse_scopes"]
