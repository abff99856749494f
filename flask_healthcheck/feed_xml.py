"""RSS 2.0 and Atom 1.0, written: what :mod:`~flask_healthcheck.feeds`
says (cleaned and redacted already) as the XML each kind of reader wants.

The tree is written by :mod:`xml.etree.ElementTree`, which escapes markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from xml.etree import ElementTree

from .formats import ATOM, RSS
from .history import iso_time

_ATOM_NS = "http://www.w3.org/2005/Atom"
_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'


@dataclass(frozen=True)
class Item:
    """An entry as both feeds write it."""

    id: str
    title: str
    summary: str
    at: float
    #: The new status, as a category a reader or a chat integration can
    #: filter on (only ``fail``, say); empty for none.
    category: str = ""


@dataclass(frozen=True)
class Feed:
    """What both feeds say, cleaned and ready to write."""

    id: str
    title: str
    subtitle: str
    #: The endpoint's URL (its status page for a browser), and this feed's.
    link: str
    self_link: str
    author: str
    updated: float
    items: list[Item]


def _element(parent: ElementTree.Element, tag: str, text: str, **attrs: str) -> None:
    ElementTree.SubElement(parent, tag, attrs).text = text


def write_rss(feed: Feed) -> str:
    """``feed`` as an RSS 2.0 document."""
    rss = ElementTree.Element("rss", {"version": "2.0", "xmlns:atom": _ATOM_NS})
    channel = ElementTree.SubElement(rss, "channel")
    _element(channel, "title", feed.title)
    _element(channel, "link", feed.link)
    _element(channel, "description", feed.subtitle)
    if feed.self_link:
        ElementTree.SubElement(
            channel,
            "atom:link",
            {"href": feed.self_link, "rel": "self", "type": RSS},
        )
    _element(channel, "lastBuildDate", _rfc822(feed.updated))
    _element(channel, "generator", "flask-healthcheck")
    for entry in feed.items:
        item = ElementTree.SubElement(channel, "item")
        _element(item, "title", entry.title)
        if feed.link:
            _element(item, "link", feed.link)
        _element(item, "description", entry.summary)
        if entry.category:
            _element(item, "category", entry.category)
        _element(item, "guid", entry.id, isPermaLink="false")
        _element(item, "pubDate", _rfc822(entry.at))
    return _DECLARATION + ElementTree.tostring(rss, encoding="unicode")


def write_atom(feed: Feed) -> str:
    """``feed`` as an Atom 1.0 document."""
    root = ElementTree.Element("feed", {"xmlns": _ATOM_NS})
    _element(root, "id", feed.id)
    _element(root, "title", feed.title)
    _element(root, "subtitle", feed.subtitle)
    _element(root, "updated", iso_time(feed.updated))
    author = ElementTree.SubElement(root, "author")
    _element(author, "name", feed.author)
    if feed.link:
        ElementTree.SubElement(
            root, "link", {"rel": "alternate", "type": "text/html", "href": feed.link}
        )
    if feed.self_link:
        ElementTree.SubElement(
            root, "link", {"rel": "self", "type": ATOM, "href": feed.self_link}
        )
    _element(root, "generator", "flask-healthcheck")
    for item in feed.items:
        entry = ElementTree.SubElement(root, "entry")
        _element(entry, "id", item.id)
        _element(entry, "title", item.title)
        _element(entry, "updated", iso_time(item.at))
        _element(entry, "published", iso_time(item.at))
        if feed.link:
            ElementTree.SubElement(entry, "link", {"href": feed.link})
        if item.category:
            ElementTree.SubElement(entry, "category", {"term": item.category})
        _element(entry, "content", item.summary, type="text")
    return _DECLARATION + ElementTree.tostring(root, encoding="unicode")


def _rfc822(timestamp: float) -> str:
    """``Mon, 20 Nov 2023 22:13:20 GMT``, as RSS 2.0 wants its dates."""
    return format_datetime(datetime.fromtimestamp(timestamp, timezone.utc), usegmt=True)
