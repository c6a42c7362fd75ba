"""The catalog's error types. Each message is one line a user can act on."""

from __future__ import annotations


class CatalogError(Exception):
    """Base: commands print the message and exit non-zero."""


class BadSpec(CatalogError):
    pass


class UnknownModel(CatalogError):
    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []


class NoNode(CatalogError):
    pass


class NoSource(CatalogError):
    pass


class DoesNotFit(CatalogError):
    def __init__(self, message: str, fit: object = None) -> None:
        super().__init__(message)
        self.fit = fit


class ShardingRequired(CatalogError):
    def __init__(self, message: str, model_id: str, min_nodes: int) -> None:
        super().__init__(message)
        self.model_id = model_id
        self.min_nodes = min_nodes


class PullFailed(CatalogError):
    pass


class NotInstalled(CatalogError):
    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []
