"""A small HTML tokenizer, run over a template's own text at save time, that says where a
value written at each point would land (text, a quoted attribute value, a URL, a tag…).

It follows the HTML standard's tokenizer closely enough for that question: tags, attributes
(quoted or not), comments, ``<!…>`` and ``<?…>`` declarations, and the raw text of ``script``,
``style``, ``textarea``, ``title`` and ``xmp``. It does not build a tree.
"""

from __future__ import annotations

import re

#: Attributes whose value is a URL a browser may follow or load.
URL_ATTRIBUTES = frozenset(
    {
        *("href", "src", "action", "formaction", "xlink:href", "background", "cite"),
        *("poster", "longdesc", "usemap", "icon", "manifest", "codebase", "data"),
        *("archive", "classid", "profile", "lowsrc", "dynsrc", "ping"),
    }
)
RAWTEXT_TAGS = frozenset({"script", "style", "textarea", "title", "xmp"})
SPACE = " \t\n\f\r"

_IGNORED = re.compile(r"[\t\n\r]")
_LEADING = "".join(map(chr, range(0x21)))
_SCHEME_CHARACTERS = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def as_read(url: str) -> str:
    """A URL (entities decoded) as a browser reads it: tabs and newlines removed, leading
    spaces and control characters stripped."""
    return _IGNORED.sub("", url).lstrip(_LEADING)


def decides_url(prefix: str) -> bool:
    """Whether a URL's first characters already fix its scheme, or make it a path: nothing
    written after them can turn it into a ``javascript:`` URL."""
    text = as_read(prefix)
    return "&" not in prefix and bool(text) and _SCHEME_CHARACTERS.fullmatch(text) is None


TEXT, TAG_OPEN, END_TAG_OPEN, TAG_NAME, IN_TAG = "text", "<", "</", "tag", "in-tag"
ATTR_NAME, AFTER_ATTR, BEFORE_VALUE, VALUE = "attr", "after-attr", "before-value", "value"
DECL, COMMENT, BOGUS, RAWTEXT = "<!", "comment", "bogus", "rawtext"
#: What :meth:`HtmlState.feed` reports: a quoted URL value (not yet decided) opens; a value ends.
OPENED, CLOSED = "opened", "closed"
#: Where :meth:`HtmlState.where` says a value written now lands.
IN_TEXT, QUOTED_VALUE, OPEN_URL = "text", "quoted value", "open URL"
IN_MARKUP, UNQUOTED_VALUE, SCRIPT_VALUE = "markup", "unquoted value", "script value"

#: The state at the start of a template: in text.
START = (TEXT, "", False, "", "", None, "")


class HtmlState:
    """One HTML tokenizer state (mode, tag, end tag?, attribute, quote, URL prefix while
    undecided, recent characters), advanced one character at a time."""

    def __init__(self, snapshot: tuple = START):
        self.restore(snapshot)

    def snapshot(self) -> tuple:
        return (self.mode, self.tag, self.end, self.attr, self.quote, self.prefix, self.tail)

    def restore(self, snapshot: tuple) -> None:
        self.mode, self.tag, self.end, self.attr, self.quote, self.prefix, self.tail = snapshot

    def _close_tag(self) -> None:
        rawtext = self.tag in RAWTEXT_TAGS and not self.end
        self.restore((RAWTEXT, self.tag, False, "", "", None, "") if rawtext else START)

    def feed(self, ch: str) -> str | None:
        mode = self.mode
        if mode == TEXT:
            if ch == "<":
                self.mode = TAG_OPEN
        elif mode in (TAG_OPEN, END_TAG_OPEN):
            if ch.isascii() and ch.isalpha():
                self.mode, self.tag, self.end = TAG_NAME, ch.lower(), mode == END_TAG_OPEN
            elif mode == TAG_OPEN and ch in "/!":
                self.mode, self.tail = (END_TAG_OPEN, "") if ch == "/" else (DECL, "")
            elif mode == TAG_OPEN and ch != "?":
                self.mode = TEXT
                return self.feed(ch)
            else:
                self.mode = TEXT if ch == ">" else BOGUS
        elif mode == DECL:
            self.tail += ch
            if self.tail == "--":
                self.mode, self.tail = COMMENT, ""
            elif ch == ">":
                self.restore(START)
            elif not "--".startswith(self.tail):
                self.mode = BOGUS
        elif mode == COMMENT:
            self.tail = (self.tail + ch)[-3:]
            if self.tail == "-->":
                self.restore(START)
        elif mode == BOGUS:
            if ch == ">":
                self.restore(START)
        elif mode in (TAG_NAME, IN_TAG, ATTR_NAME, AFTER_ATTR):
            self._in_tag(mode, ch)
        elif mode == BEFORE_VALUE:
            if ch == ">":
                self._close_tag()
            elif ch in "\"'":
                self.mode, self.quote = VALUE, ch
                self.prefix = "" if self.attr in URL_ATTRIBUTES else None
                return OPENED if self.prefix is not None else None
            elif ch not in SPACE:
                self.mode, self.quote, self.prefix = VALUE, "", None
        elif mode == VALUE:
            return self._in_value(ch)
        elif mode == RAWTEXT:
            closing = "</" + self.tag
            if self.tail.lower() == closing and (ch in SPACE or ch in "/>"):
                self.mode, self.end, self.tail = TAG_NAME, True, ""
                return self.feed(ch)
            self.tail = (self.tail + ch)[-len(closing) :]
        return None

    def _in_tag(self, mode: str, ch: str) -> None:
        if ch == ">":
            self._close_tag()
        elif ch in SPACE or ch == "/":
            self.mode = IN_TAG if ch == "/" or mode in (TAG_NAME, IN_TAG) else AFTER_ATTR
        elif ch == "=" and mode in (ATTR_NAME, AFTER_ATTR):
            self.mode = BEFORE_VALUE
        elif mode == TAG_NAME:
            self.tag += ch.lower()
        elif mode == ATTR_NAME:
            self.attr += ch.lower()
        else:
            self.mode, self.attr = ATTR_NAME, ch.lower()

    def _in_value(self, ch: str) -> str | None:
        if ch == self.quote or (not self.quote and ch in SPACE):
            self.mode, self.attr, self.quote, self.prefix = IN_TAG, "", "", None
            return CLOSED
        if not self.quote and ch == ">":
            self._close_tag()
            return CLOSED
        if self.prefix is not None:
            self.prefix += ch
            if decides_url(self.prefix):
                self.prefix = None
        return None

    def where(self) -> str:
        """Where a value written now lands: IN_TEXT (comments and raw text too), IN_MARKUP (a
        tag or attribute name), an UNQUOTED_VALUE, a SCRIPT_VALUE (event handler, srcdoc), an
        OPEN_URL (a URL value whose scheme is not decided yet) or another QUOTED_VALUE."""
        if self.mode in (TEXT, COMMENT, BOGUS, RAWTEXT):
            return IN_TEXT
        if self.mode == BEFORE_VALUE or (self.mode == VALUE and not self.quote):
            return UNQUOTED_VALUE
        if self.mode != VALUE:
            return IN_MARKUP
        if self.attr.startswith("on") or self.attr == "srcdoc":
            return SCRIPT_VALUE
        return QUOTED_VALUE if self.prefix is None else OPEN_URL
