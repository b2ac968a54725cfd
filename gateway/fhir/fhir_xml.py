"""FHIR XML to FHIR JSON and back (R4 xml.html), each in one linear pass.

The models' own XML writer spent about half a millisecond per element (a Patient with 300,000
extensions took five minutes and held a worker). This one walks the stored JSON once and builds
the tree with lxml, in the element order each type's definition gives (taken once per type from
the models, `elements_sequence`): primitives as `value` attributes with their `_name` id and
extensions, `id` of elements and `Extension.url` as attributes, resources inside `contained`,
`entry.resource` and `parameter.resource` as elements of their own type, and the narrative's
XHTML as XHTML. What it writes is the stored resource, already validated when it was written.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from itertools import chain, repeat
from typing import Any

from lxml import etree

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
_TYPE = re.compile(r"abc\.(\w+)Type\b")
_PRIMITIVE = None  # a child that is a primitive has no model
Children = dict[str, str | None]  # JSON name -> the child's model name (None: a primitive)


@dataclass(frozen=True)
class Shape:
    """What a type's definition says of its elements, as the XML reader needs it."""

    order: tuple[str, ...]
    children: Children
    repeating: frozenset[str]
    booleans: frozenset[str]
    integers: frozenset[str]
    decimals: frozenset[str]


@cache
def shape(type_name: str) -> Shape:
    order, children = _shape(type_name)
    from fhir.resources.R4B import get_fhir_model_class  # noqa: PLC0415

    try:
        model = get_fhir_model_class(type_name)
    except (KeyError, ValueError, AttributeError, ImportError):
        return Shape((), {}, frozenset(), frozenset(), frozenset(), frozenset())
    annotations = {(field.alias or name): str(field.annotation) for name, field in model.model_fields.items()}
    kinds: dict[str, set[str]] = {"list": set(), "bool": set(), "int": set(), "decimal": set()}
    for name in order:
        annotation = annotations.get(name, "")
        if "List[" in annotation:
            kinds["list"].add(name)
        if children.get(name) is None:
            if annotation.startswith("bool"):
                kinds["bool"].add(name)
            elif "Annotated[int," in annotation:
                kinds["int"].add(name)
            elif "decimal.Decimal" in annotation:
                kinds["decimal"].add(name)
    return Shape(order, children, frozenset(kinds["list"]), frozenset(kinds["bool"]), frozenset(kinds["int"]),
                 frozenset(kinds["decimal"]))  # fmt: skip


@cache
def _shape(type_name: str) -> tuple[tuple[str, ...], Children]:
    """The JSON names of a type's elements in definition order, and each one's model."""
    from fhir.resources.R4B import get_fhir_model_class  # noqa: PLC0415 - the models load lazily

    try:
        model = get_fhir_model_class(type_name)
    except (KeyError, ValueError, AttributeError, ImportError):
        return (), {}
    order = tuple(model.elements_sequence())
    children: Children = {}
    by_alias = {(field.alias or name): field for name, field in model.model_fields.items()}
    for name in order:
        field = by_alias.get(name)
        found = _TYPE.search(str(field.annotation)) if field is not None else None
        children[name] = found.group(1) if found else _PRIMITIVE
    return order, children


@cache
def _positions(type_name: str) -> tuple[dict[str, int], Children]:
    order, children = _shape(type_name)
    return {name: index for index, name in enumerate(order)}, children


@cache
def _present(type_name: str, keys: tuple[str, ...], resource: bool) -> tuple[str, ...]:
    """The elements these keys hold, in definition order, without those written as attributes:
    a type may define dozens (Extension's value[x] choices) of which an instance has one or two,
    and instances of one type mostly hold the same keys (cached by them)."""
    position = _positions(type_name)[0]
    present = {key[1:] if key[:1] == "_" else key for key in keys}
    if not resource:
        present.discard("id")
    if type_name == "Extension":
        present.discard("url")
    return tuple(sorted((n for n in present if n in position), key=position.__getitem__))


@cache
def _leaf(type_name: str, keys: tuple[str, ...]) -> tuple[str, ...] | None:
    """The elements of an instance with these keys when all are single primitives without an id
    or extensions of their own (most leaves: a Coding, a period, an Extension's value), else None."""
    if any(key[:1] == "_" for key in keys):
        return None
    names = _present(type_name, keys, False)
    kinds = shape(type_name)
    if any(kinds.children.get(n) is not None or n in kinds.repeating or n == "div" for n in names):
        return None
    return names


def _xhtml_parser() -> etree.XMLParser:
    """For the narrative (stored, so validated): no entities, no network, no DTD."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=False)


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _escaped(text: str) -> str:
    """Attribute-value escaping. Chained replace runs in C over the whole string; str.translate
    with multi-character replacements took a third of a large resource's writing time."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;"))  # fmt: skip


_SPECIAL = re.compile(r'[&<>"\n\r\t]')


def _attribute(value: Any) -> str:
    """A value as an XML attribute's text (quoted with "): escaped only when it needs to be."""
    text = "true" if value is True else "false" if value is False else str(value)
    return _escaped(text) if _SPECIAL.search(text) else text


_SEPARATOR = "\x00"  # joins the texts escaped in one pass: U+0000 is refused in every stored string


Signature = tuple[tuple[str, ...], tuple[tuple[str, ...] | None, ...]]
Plan = tuple[tuple[tuple[str, str | None], ...], str]


@cache
def _complex_keys(kind: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    children = shape(kind).children
    return tuple(key for key in keys if children.get(key) is not None)


def _signature(kind: str, value: dict[str, Any]) -> Signature:
    """An item's keys, and the keys of each of its complex children (None: not an object):
    enough to pick its format string. Most items hold primitives only: one tuple."""
    keys = tuple(value)
    inner = _complex_keys(kind, keys)
    if not inner:
        return keys, ()
    return keys, tuple(tuple(value[key]) if type(value[key]) is dict else None for key in inner)


@cache
def _nested_template(name: str, kind: str, signature: Signature) -> Plan | None:
    """How to write an item of this shape with one format string: a leaf (only single
    primitives inside), or an item whose complex children are leaves (an Extension holding a
    Coding, an Identifier with its period). The paths to its fields (key, and sub-key or None),
    in document order with id (and an Extension's url) as attributes, and the format string;
    None for anything else."""
    keys, subkeys = signature
    if any(key[:1] == "_" for key in keys) or None in subkeys:
        return None
    nested = dict(zip(_complex_keys(kind, keys), subkeys, strict=True))
    children = shape(kind).children
    attributes: list[str] = [a for a in (("id", "url") if kind == "Extension" else ("id",))
                             if a in keys and a not in nested]  # fmt: skip
    paths: list[tuple[str, str | None]] = [(a, None) for a in attributes]
    form = f"<{name}" + "".join(f' {a}="{{}}"' for a in attributes) + ">"
    for element in _present(kind, keys, False):
        child_kind = children.get(element)
        if element == "div" or child_kind == "Resource" or element in shape(kind).repeating:
            return None  # a list, the narrative, a contained resource: the general path
        if child_kind is None:
            paths.append((element, None))
            form += f'<{element} value="{{}}"/>'
            continue
        inner = _leaf(child_kind, nested[element])
        if inner is None:
            return None
        own: tuple[str, ...] = ("id", "url") if child_kind == "Extension" else ("id",)
        attributes = [a for a in own if a in nested[element]]  # type: ignore[operator]
        paths += [(element, a) for a in attributes] + [(element, e) for e in inner]
        form += (f"<{element}" + "".join(f' {a}="{{}}"' for a in attributes) + ">"
                 + "".join(f'<{e} value="{{}}"/>' for e in inner) + f"</{element}>")  # fmt: skip
    return tuple(paths), form + f"</{name}>"


_NEEDS_ESCAPING = '&<>"\n\r\t'


def _interleaved(form: str, columns: list[list[str]], count: int) -> str:
    """What `"".join(map(form.format, *columns))` gives for `count` items, without a format call
    per item: the format's literal parts and the columns interleaved by C iterators, joined once."""
    literals = form.split("{}")
    if not columns:  # items with nothing to write but their tags
        return form * count
    streams: list[Iterable[str]] = [repeat(literals[0])]
    for column, literal in zip(columns, literals[1:], strict=True):
        streams += [column, repeat(literal)]
    return "".join(chain.from_iterable(zip(*streams, strict=False)))  # the repeats never end: the columns do


def _column(members: list[dict[str, Any]], key: str, sub: str | None) -> list[str] | None:
    """One field of every member, as escaped attribute text; None if one is empty."""
    column = [member[key] for member in members] if sub is None else [member[key][sub] for member in members]
    if "" in column:
        return None
    if set(map(type, column)) != {str}:
        column = [item if type(item) is str else _text(item) for item in column]
    joined = _SEPARATOR.join(column)
    if not any(character in joined for character in _NEEDS_ESCAPING):  # memchr per character: C speed
        return column
    escaped = _escaped(joined).split(_SEPARATOR)
    # A value holding the separator itself (never stored since control characters are refused,
    # but older data may): escape one by one.
    return escaped if len(escaped) == len(column) else [_attribute(item) for item in column]


class _Writer:
    """Writes into one list of strings: a few string operations per element."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def resource(self, content: dict[str, Any], root: bool = False) -> None:
        resource_type = str(content.get("resourceType"))
        self.out.append(f'<{resource_type} xmlns="{FHIR_NS}">' if root else f"<{resource_type}>")
        self.children(content, resource_type, resource=True)
        self.out.append(f"</{resource_type}>")

    def children(self, content: dict[str, Any], type_name: str, *, resource: bool = False) -> None:
        kinds = _positions(type_name)[1]
        for name in _present(type_name, tuple(content), resource):
            value = content.get(name)
            extra = content.get(f"_{name}")
            kind = kinds.get(name)
            if isinstance(value, list) or isinstance(extra, list):
                values = value if isinstance(value, list) else []
                extras = extra if isinstance(extra, list) else []
                if not extras and kind is not None and kind != "Resource":
                    self.complex_list(name, kind, values)
                    continue
                for index in range(max(len(values), len(extras))):
                    self.child(name, kind, values[index] if index < len(values) else None,
                               extras[index] if index < len(extras) else None)  # fmt: skip
            else:
                self.child(name, kind, value, extra)

    def complex_list(self, name: str, kind: str, values: list[Any]) -> None:
        """A repeating complex element (extensions, codings, identifiers): the hot loop of a large
        resource. Items are grouped by shape; each shape that is a leaf (or holds only leaves) is
        written from one format string, column by column: fields gathered with list
        comprehensions, escaped in one pass over one joined string, formatted by `map`. The rest
        go through `child`. The order of the items is kept."""
        groups: dict[Signature, list[int]] = {}
        keys = tuple(values[0]) if values and type(values[0]) is dict else None
        if keys is not None and not _complex_keys(kind, keys) and all(map(keys.__eq__, map(tuple, values))):
            groups[(keys, ())] = list(range(len(values)))  # one flat shape throughout: no per-item signature
        else:
            for index, value in enumerate(values):
                if type(value) is dict:
                    flat = tuple(value)
                    signature = (flat, ()) if not _complex_keys(kind, flat) else _signature(kind, value)
                    groups.setdefault(signature, []).append(index)
        written: list[str | None] = [None] * len(values)
        for signature, indexes in groups.items():
            plan = _nested_template(name, kind, signature)
            if plan is None:
                continue
            members = [values[index] for index in indexes]
            columns: list[list[str]] = []
            for key, sub in plan[0]:
                column = _column(members, key, sub)
                if column is None:
                    break  # an empty value is not written at all: the general path knows how
                columns.append(column)
            else:
                if len(indexes) == len(values):  # one shape throughout (the usual large case)
                    self.out.append(_interleaved(plan[1], columns, len(values)))
                    return
                deque(map(written.__setitem__, indexes, map(plan[1].format, *columns)), maxlen=0)  # C loops
        out = self.out
        if None not in written:  # every shape was written by column
            out.append("".join(written))  # type: ignore[arg-type]
            return
        for value, text in zip(values, written, strict=True):
            if text is None:
                self.child(name, kind, value, None)
            else:
                out.append(text)

    def start(self, name: str, content: dict[str, Any], type_name: str | None) -> str:
        attributes = f' id="{_attribute(content["id"])}"' if "id" in content else ""
        if type_name == "Extension" and "url" in content:
            attributes += f' url="{_attribute(content["url"])}"'
        return f"<{name}{attributes}"

    def child(self, name: str, kind: str | None, value: Any, extra: Any) -> None:
        out = self.out
        if name == "div" and isinstance(value, str):
            out.append(_xhtml(value))
            return
        if kind == "Resource":
            if isinstance(value, dict):
                out.append(f"<{name}>")
                self.resource(value)
                out.append(f"</{name}>")
            return
        if kind is None:  # a primitive: its value, and its own id and extensions
            head = self.start(name, extra, None) if isinstance(extra, dict) else f"<{name}"
            if value is not None and value != "":
                head += f' value="{_attribute(value)}"'
            extensions = extra.get("extension") if isinstance(extra, dict) else None
            if not extensions:
                out.append(head + "/>")
                return
            out.append(head + ">")
            for extension in extensions:
                self.child("extension", "Extension", extension, None)
            out.append(f"</{name}>")
            return
        if not isinstance(value, dict):
            return
        leaf = _leaf(kind, tuple(value))
        if leaf is not None:  # only single primitives inside (a Coding, an Extension's value): one string
            inner = "".join(f'<{n} value="{_attribute(value[n])}"/>' for n in leaf if value[n] != "")
            out.append(f"{self.start(name, value, kind)}>{inner}</{name}>")
            return
        out.append(self.start(name, value, kind) + ">")
        self.children(value, kind)
        out.append(f"</{name}>")


def _xhtml(div: str) -> str:
    """The stored narrative (validated XHTML), re-serialised so that it is well-formed here."""
    text: str = etree.tostring(etree.fromstring(div.encode(), parser=_xhtml_parser()), encoding="unicode")
    return text


def dump_xml(resource: dict[str, Any], pretty: bool = False) -> bytes:
    writer = _Writer()
    writer.resource(resource, root=True)
    text = "".join(writer.out)
    if pretty:
        indented: bytes = etree.tostring(
            etree.fromstring(text.encode(), parser=_xhtml_parser()), xml_declaration=True, encoding="UTF-8",
            pretty_print=True,
        )  # fmt: skip
        return indented
    return b"<?xml version='1.0' encoding='UTF-8'?>\n" + text.encode()


class XmlShapeError(ValueError):
    """The XML does not have the shape its type's definition gives; `where` is the FHIRPath."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


def _value(text: str, name: str, kinds: Shape, where: str) -> Any:
    if name in kinds.booleans:
        if text not in ("true", "false"):
            raise XmlShapeError(f"{text!r} is not a boolean (true or false)", where)
        return text == "true"
    if name in kinds.integers:
        try:
            return int(text)
        except ValueError:
            raise XmlShapeError(f"{text!r} is not an integer", where) from None
    if name in kinds.decimals:
        try:
            number = float(text)
        except ValueError:
            raise XmlShapeError(f"{text!r} is not a decimal", where) from None
        return int(text) if re.fullmatch(r"-?[0-9]+", text) else number
    return text


class _Reader:
    def resource(self, node: Any, where: str) -> dict[str, Any]:
        qname = etree.QName(node)
        if qname.namespace != FHIR_NS:
            raise XmlShapeError(f"{qname.localname} is not in the FHIR namespace", where)
        content: dict[str, Any] = {"resourceType": qname.localname}
        self.children(node, content, qname.localname, qname.localname, resource=True)
        return content

    def children(self, node: Any, content: dict[str, Any], type_name: str, where: str, *, resource: bool) -> None:
        kinds = shape(type_name)
        for attribute, value in node.attrib.items():
            if attribute == "id" and not resource:
                content["id"] = value
            elif attribute == "url" and type_name == "Extension":
                content["url"] = value
            else:
                raise XmlShapeError(f"unexpected attribute {attribute!r}", where)
        if (node.text or "").strip():
            raise XmlShapeError("unexpected text content", where)
        for child in node:
            if not isinstance(child.tag, str):
                continue  # comments and processing instructions were removed by the parser
            qname = etree.QName(child)
            name = qname.localname
            here = f"{where}.{name}"
            if name == "div" and qname.namespace == XHTML_NS and type_name == "Narrative":
                content["div"] = etree.tostring(child, encoding="unicode", with_tail=False)
                continue
            if qname.namespace != FHIR_NS or name not in kinds.children:
                raise XmlShapeError(f"{name} is not an element of {type_name}", here)
            if (child.tail or "").strip():
                raise XmlShapeError("unexpected text content", here)
            value, extra = self.element(child, name, kinds, here)
            if name in kinds.repeating:
                values = content.setdefault(name, [])
                extras = content.get(f"_{name}")
                if extra is not None or extras is not None:
                    extras = content.setdefault(f"_{name}", [None] * len(values))
                    extras.append(extra)
                values.append(value)
            else:
                if name in content or f"_{name}" in content:
                    raise XmlShapeError(f"{name} may appear only once", here)
                if value is not None:
                    content[name] = value
                if extra is not None:
                    content[f"_{name}"] = extra

    def element(self, child: Any, name: str, kinds: Shape, where: str) -> tuple[Any, Any]:
        kind = kinds.children.get(name)
        if kind == "Resource":
            inner = [c for c in child if isinstance(c.tag, str)]
            if len(inner) != 1:
                raise XmlShapeError("expected exactly one resource", where)
            return self.resource(inner[0], where), None
        if kind is None:  # a primitive
            extra: dict[str, Any] = {}
            for attribute, value in child.attrib.items():
                if attribute == "id":
                    extra["id"] = value
                elif attribute != "value":
                    raise XmlShapeError(f"unexpected attribute {attribute!r}", where)
            extensions = []
            for index, grandchild in enumerate(c for c in child if isinstance(c.tag, str)):
                if etree.QName(grandchild).localname != "extension":
                    raise XmlShapeError("a primitive holds only extensions", where)
                extension: dict[str, Any] = {}
                self.children(grandchild, extension, "Extension", f"{where}.extension[{index}]", resource=False)
                extensions.append(extension)
            if extensions:
                extra["extension"] = extensions
            text = child.get("value")
            value = _value(text, name, kinds, where) if text is not None else None
            return value, extra or None
        content: dict[str, Any] = {}
        self.children(child, content, kind, where, resource=False)
        return content, None


def load_xml(root: Any) -> dict[str, Any]:
    """A parsed FHIR XML resource (its root element) as FHIR JSON."""
    return _Reader().resource(root, etree.QName(root).localname)
