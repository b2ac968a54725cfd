"""The narrative whitelist (narrative.html, invariants txt-1 and txt-2): a `text.div` is XHTML
with only basic formatting elements and attributes, and some content. A narrative is shown to
people (the brief's source view, EHR screens), so a `<script>`, an event attribute or a
`javascript:` link in one is refused where it enters, in JSON and in XML alike."""

from __future__ import annotations

from functools import lru_cache

from lxml import etree

XHTML_NS = "http://www.w3.org/1999/xhtml"

# HTML 4.0 chapters 7-11 and 15 (but forms, scripts, frames, objects), <a>, images and tables:
# the elements the FHIR validator accepts.
ELEMENTS = frozenset(
    "p br div h1 h2 h3 h4 h5 h6 a span b em i strong small big tt dfn q var abbr acronym cite "
    "blockquote hr address bdo kbd sub sup ul ol li dl dt dd pre table caption colgroup col thead "
    "tr tfoot tbody th td code samp img map area ins del".split()
)
ATTRIBUTES = frozenset(
    "title style class id lang dir accesskey tabindex span width align valign char charoff abbr axis "
    "headers scope rowspan colspan summary frame rules border cellspacing cellpadding name href src alt "
    "height shape coords usemap datetime cite start type compact value nohref".split()
)
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:text/html")


@lru_cache(maxsize=1)
def _parser() -> etree.XMLParser:
    # No DTD, no entities, no network: a narrative is a fragment, never a document with a doctype.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def narrative_problem(div: str) -> str | None:
    """Why this narrative breaks txt-1/txt-2 (or is not XHTML), or None when it is fine."""
    if "<!DOCTYPE" in div or "<!ENTITY" in div:
        return "the narrative may not declare a DOCTYPE or entities"
    try:
        root = etree.fromstring(div.encode("utf-8"), parser=_parser())
    except etree.XMLSyntaxError as error:
        return f"the narrative is not well-formed XHTML ({error.msg}); HTML entities such as &nbsp; are not XML"
    if root.tag != f"{{{XHTML_NS}}}div":
        return f'the narrative is a <div> in the XHTML namespace (xmlns="{XHTML_NS}")'
    has_content = False
    for element in root.iter():
        if not isinstance(element.tag, str):  # comments and processing instructions
            if isinstance(element, etree._ProcessingInstruction):
                return "txt-1: the narrative may not hold processing instructions"
            continue
        namespace, _, name = element.tag.rpartition("}")
        if namespace.lstrip("{") != XHTML_NS or name not in ELEMENTS:
            return f"txt-1: <{name}> is not allowed in a narrative (only basic HTML formatting, links and images)"
        for attribute, value in element.attrib.items():
            if attribute != XML_LANG and attribute not in ATTRIBUTES:
                return f"txt-1: the attribute {attribute!r} on <{name}> is not allowed in a narrative"
            if attribute in ("href", "src") and value.strip().lower().startswith(UNSAFE_SCHEMES):
                return f"txt-1: a {attribute} on <{name}> may not run script"
        has_content = has_content or name == "img" or bool((element.text or "").strip())
        has_content = has_content or (element is not root and bool((element.tail or "").strip()))
    if not has_content:
        return "txt-2: the narrative has no content (some non-whitespace text is required)"
    return None
