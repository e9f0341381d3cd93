"""``Set-Cookie`` headers, parsed strictly (so a parser bug cannot hide a cookie bug)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SetCookie", "parse_set_cookie"]


@dataclass(frozen=True)
class SetCookie:
    """One parsed ``Set-Cookie`` header; attribute names are lower-cased."""

    name: str
    value: str
    attributes: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> SetCookie:
        """Parse one ``Set-Cookie`` value (RFC 6265 section 5.2); duplicate attributes fail."""
        pair, *parts = header.split(";")
        name, sep, value = pair.partition("=")
        assert sep == "=", f"no name=value pair in {header!r}"
        attributes: dict[str, str] = {}
        for part in parts:
            key, _, attr_value = part.strip().partition("=")
            key = key.strip().lower()
            assert key not in attributes, f"attribute {key!r} repeated in {header!r}"
            attributes[key] = attr_value.strip()
        return cls(name.strip(), value.strip(), attributes)

    def has(self, attribute: str) -> bool:
        return attribute in self.attributes

    @property
    def max_age(self) -> int:
        return int(self.attributes["max-age"])


parse_set_cookie = SetCookie.parse
