//! One markup construct at a time: a tag, an end tag, a comment or the XML declaration,
//! read from the start of a buffer, with the rules of [`crate::xml`].

use nom::bytes::complete::{tag, take_till, take_while, take_while1};
use nom::character::complete::one_of;
use nom::IResult;

use super::is_space;

/// The longest construct accepted, in bytes. Neither format comes near it; it bounds what
/// a reader must hold at once.
pub const MAX_MARKUP: usize = 1 << 16;

/// A start or empty-element tag: its name, and its attributes as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    /// The element's name.
    pub name: &'a str,
    attrs: &'a [u8],
}

/// A tag, what a document's elements are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup<'a> {
    /// `<name …>`.
    Start(Tag<'a>),
    /// `<name …/>`.
    Empty(Tag<'a>),
    /// `</name>`.
    End(&'a str),
}

/// The outcome of [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan<'a> {
    /// A whole construct of `len` bytes: a tag, or `None` for a comment or the XML
    /// declaration, which are nothing for the caller.
    Found(Option<Markup<'a>>, usize),
    /// The construct goes on past the end of the buffer: call again with more.
    Incomplete,
}

/// Reads the construct at the start of `buf`, which starts with `<`. `at_eof` says that
/// nothing follows `buf`; `doc_start` that `buf` starts the document (where the XML
/// declaration may be). Errors are messages; the caller knows where `buf` starts.
pub fn scan(buf: &[u8], at_eof: bool, doc_start: bool) -> Result<Scan<'_>, String> {
    match buf.get(1) {
        None => more(buf, at_eof, "markup"),
        Some(b'!') => scan_declaration(buf, at_eof),
        Some(b'?') => scan_processing_instruction(buf, at_eof, doc_start),
        Some(b'/') => scan_end_tag(buf, at_eof),
        Some(_) => scan_tag(buf, at_eof),
    }
}

/// The answer when the construct `what` goes on past the end of `buf`: an error at the end
/// of the input or past [`MAX_MARKUP`], else a request for more.
fn more<'a>(buf: &[u8], at_eof: bool, what: &str) -> Result<Scan<'a>, String> {
    if at_eof {
        Err(format!("unexpected end of input in {what}"))
    } else if buf.len() > MAX_MARKUP {
        Err(format!("{what} longer than {MAX_MARKUP} bytes"))
    } else {
        Ok(Scan::Incomplete)
    }
}

/// `<!…>`: a comment is skipped; CDATA, DOCTYPE and other declarations are refused.
fn scan_declaration(buf: &[u8], at_eof: bool) -> Result<Scan<'_>, String> {
    if let Some(undecided) = starts(buf, b"<!--") {
        if undecided {
            return more(buf, at_eof, "markup");
        }
        return match memchr::memmem::find(&buf[4..], b"-->") {
            Some(i) if 4 + i + 3 <= MAX_MARKUP => Ok(Scan::Found(None, 4 + i + 3)),
            Some(_) => Err(format!("comment longer than {MAX_MARKUP} bytes")),
            None => more(buf, at_eof, "a comment"),
        };
    }
    for (pat, msg) in [
        (&b"<![CDATA["[..], "unsupported CDATA section"),
        (
            b"<!DOCTYPE",
            "unsupported DOCTYPE (document type and entity declarations are not accepted)",
        ),
    ] {
        match starts(buf, pat) {
            Some(false) => return Err(msg.into()),
            Some(true) => return more(buf, at_eof, "markup"),
            None => {}
        }
    }
    Err("unsupported markup declaration (<!…>)".into())
}

/// `<?…>`: the XML declaration, at the start of the document only, is skipped; any other
/// processing instruction is refused.
fn scan_processing_instruction(
    buf: &[u8],
    at_eof: bool,
    doc_start: bool,
) -> Result<Scan<'_>, String> {
    let decl = starts(buf, b"<?xml")
        .map(|undecided| undecided || buf.get(5).map_or(true, |&b| is_space(b) || b == b'?'));
    match decl {
        Some(_) if !doc_start => Err("an XML declaration is allowed only at the start".into()),
        Some(true) if buf.len() <= 5 => more(buf, at_eof, "markup"),
        Some(true) => match memchr::memmem::find(&buf[5..], b"?>") {
            Some(i) if 5 + i + 2 <= MAX_MARKUP => Ok(Scan::Found(None, 5 + i + 2)),
            Some(_) => Err(format!("XML declaration longer than {MAX_MARKUP} bytes")),
            None => more(buf, at_eof, "the XML declaration"),
        },
        _ => Err("unsupported processing instruction".into()),
    }
}

/// `</name>`, with optional white space before the `>`.
fn scan_end_tag(buf: &[u8], at_eof: bool) -> Result<Scan<'_>, String> {
    let Some(end) = memchr::memchr(b'>', buf) else {
        return more(buf, at_eof, "an end tag");
    };
    if end >= MAX_MARKUP {
        return Err(format!("end tag longer than {MAX_MARKUP} bytes"));
    }
    let inner = &buf[2..end];
    match name(inner) {
        Ok((rest, n)) if rest.iter().all(|&b| is_space(b)) => {
            Ok(Scan::Found(Some(Markup::End(n)), end + 1))
        }
        _ => Err(format!("bad end tag '{}'", lossy(&buf[..end + 1]))),
    }
}

/// `<name …>` or `<name …/>`, its attributes checked.
fn scan_tag(buf: &[u8], at_eof: bool) -> Result<Scan<'_>, String> {
    let Some(end) = tag_end(buf)? else {
        return more(buf, at_eof, "a tag");
    };
    if end >= MAX_MARKUP {
        return Err(format!("tag longer than {MAX_MARKUP} bytes"));
    }
    let (inner, empty) = match buf[..end].strip_suffix(b"/") {
        Some(inner) => (&inner[1..], true),
        None => (&buf[1..end], false),
    };
    let (attrs, n) =
        name(inner).map_err(|_| format!("bad element name in '{}'", lossy(&buf[..end + 1])))?;
    if attrs.first().is_some_and(|&b| !is_space(b)) {
        return Err(format!("bad element name in '{}'", lossy(&buf[..end + 1])));
    }
    let t = Tag { name: n, attrs };
    for a in t.attributes() {
        a?;
    }
    let m = if empty {
        Markup::Empty(t)
    } else {
        Markup::Start(t)
    };
    Ok(Scan::Found(Some(m), end + 1))
}

/// `Some(false)` if `buf` starts with `pat`, `Some(true)` if `buf` is a shorter part of it
/// (undecided), `None` if it does not.
fn starts(buf: &[u8], pat: &[u8]) -> Option<bool> {
    let n = buf.len().min(pat.len());
    (buf[..n] == pat[..n]).then_some(buf.len() < pat.len())
}

/// The index of the `>` that closes the tag at the start of `buf`, skipping quoted values;
/// `None` if it is not in `buf`. A `<` before it means the tag was never closed.
fn tag_end(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut quote = None;
    for (i, &b) in buf.iter().enumerate().skip(1) {
        match (quote, b) {
            (_, b'<') => {
                let n = name(&buf[1..]).map(|(_, n)| n).unwrap_or("");
                return Err(format!("tag <{n}> is not closed"));
            }
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if q == b => quote = None,
            (None, b'>') => return Ok(Some(i)),
            _ => {}
        }
    }
    Ok(None)
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-')
}

/// An XML name (ASCII: neither format has another).
fn name(i: &[u8]) -> IResult<&[u8], &str> {
    let (_, _) = take_while1(is_name_start)(i)?;
    let (rest, n) = take_while1(is_name_char)(i)?;
    // Only ASCII bytes were taken.
    let n = std::str::from_utf8(n).unwrap_or_default();
    Ok((rest, n))
}

/// One attribute after its white space: name, `=`, quoted value.
fn attribute(i: &[u8]) -> IResult<&[u8], (&str, &[u8])> {
    let (i, n) = name(i)?;
    let (i, _) = take_while(is_space)(i)?;
    let (i, _) = tag(&b"="[..])(i)?;
    let (i, _) = take_while(is_space)(i)?;
    let (i, q) = one_of("\"'")(i)?;
    let (i, v) = take_till(|b| b == q as u8)(i)?;
    let (i, _) = one_of("\"'")(i)?;
    Ok((i, (n, v)))
}

/// Checks the references in an attribute value: only the predefined entities and
/// character references exist, since nothing can declare others.
fn check_references(attr: &str, v: &[u8]) -> Result<(), String> {
    for i in memchr::memchr_iter(b'&', v) {
        let rest = &v[i + 1..];
        let Some(semi) = memchr::memchr(b';', rest) else {
            return Err(format!("unterminated reference in attribute '{attr}'"));
        };
        let r = &rest[..semi];
        let ok = match r {
            b"lt" | b"gt" | b"amp" | b"quot" | b"apos" => true,
            [b'#', b'x', hex @ ..] => !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit),
            [b'#', dec @ ..] => !dec.is_empty() && dec.iter().all(u8::is_ascii_digit),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "unknown reference '&{};' in attribute '{attr}' (entities cannot be declared)",
                lossy(r)
            ));
        }
    }
    Ok(())
}

/// Bytes for a message.
pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl<'a> Tag<'a> {
    /// The attributes in document order, as `(name, value as written)`.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            rest: self.attrs,
            tag: self.name,
        }
    }

    /// The values of the attributes named in `names`, in that order; an attribute not in
    /// `names`, or one given twice, is an error.
    pub fn attrs<const N: usize>(&self, names: [&str; N]) -> Result<[Option<&'a [u8]>; N], String> {
        let mut found: [Option<&'a [u8]>; N] = [None; N];
        for a in self.attributes() {
            let (key, value) = a?;
            let Some(i) = names.iter().position(|n| *n == key) else {
                return Err(format!("unknown attribute '{key}' in <{}>", self.name));
            };
            if found[i].replace(value).is_some() {
                return Err(format!("duplicated attribute '{key}' in <{}>", self.name));
            }
        }
        Ok(found)
    }
}

/// Iterator over the attributes of a [`Tag`].
pub struct Attributes<'a> {
    rest: &'a [u8],
    tag: &'a str,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<(&'a str, &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.rest.iter().position(|&b| !is_space(b))?;
        let r = match attribute(&self.rest[start..]) {
            Ok((rest, (n, v))) if rest.first().map_or(true, |&b| is_space(b)) => {
                self.rest = rest;
                check_references(n, v).map(|()| (n, v))
            }
            _ => {
                let shown: Vec<u8> = self.rest[start..].iter().copied().take(40).collect();
                self.rest = &[];
                Err(format!(
                    "bad attribute syntax in <{}> at '{}'",
                    self.tag,
                    lossy(&shown)
                ))
            }
        };
        if r.is_err() {
            self.rest = &[];
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(s: &str) -> (Option<Markup<'_>>, usize) {
        match scan(s.as_bytes(), true, false) {
            Ok(Scan::Found(m, n)) => (m, n),
            other => panic!("{s}: {other:?}"),
        }
    }

    fn error(s: &str, eof: bool, start: bool) -> String {
        match scan(s.as_bytes(), eof, start) {
            Err(e) => e,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn tags_and_their_attributes() {
        let (m, n) = found("<bit block=\"1\"  value = 'true' />\n");
        assert_eq!(n, 33);
        let Some(Markup::Empty(t)) = m else {
            panic!("{m:?}")
        };
        assert_eq!(t.name, "bit");
        let a: Vec<_> = t.attributes().map(|a| a.unwrap()).collect();
        assert_eq!(a, vec![("block", &b"1"[..]), ("value", &b"true"[..])]);
        assert_eq!(
            t.attrs(["value", "block", "x"]).unwrap(),
            [Some(&b"true"[..]), Some(&b"1"[..]), None]
        );
        assert!(t
            .attrs(["block"])
            .unwrap_err()
            .contains("unknown attribute 'value'"));
        let (m, _) = found("<w a=\"x>y\">");
        assert!(matches!(m, Some(Markup::Start(t)) if t.name == "w"));
        assert_eq!(found("</w >").0, Some(Markup::End("w")));
        assert_eq!(found("<!-- a -- b --> x"), (None, 15));
        let Some(Markup::Empty(t)) = found("<e a=\"1\" a=\"2\"/>").0 else {
            panic!()
        };
        assert!(t
            .attrs(["a"])
            .unwrap_err()
            .contains("duplicated attribute 'a'"));
    }

    #[test]
    fn what_the_rules_refuse() {
        for (s, frag) in [
            ("<!DOCTYPE x [<!ENTITY e \"y\">]>", "DOCTYPE"),
            ("<!ENTITY e \"y\">", "markup declaration"),
            ("<![CDATA[x]]>", "CDATA"),
            ("<?php x ?>", "processing instruction"),
            ("<a b=\"&e;\"/>", "unknown reference '&e;'"),
            ("<a b=\"&amp\"/>", "unterminated reference"),
            ("<a b=1/>", "bad attribute syntax"),
            ("<a b=\"1\"c=\"2\"/>", "bad attribute syntax"),
            ("<a b/>", "bad attribute syntax"),
            ("<1a/>", "bad element name"),
            ("<a\"x\"/>", "bad element name"),
            ("</a b>", "bad end tag"),
            ("<a b=\"1\"\n<c/>", "tag <a> is not closed"),
            ("<a b=\"<\"/>", "not closed"),
        ] {
            assert!(
                error(s, true, true).contains(frag),
                "{s}: {}",
                error(s, true, true)
            );
        }
        assert!(error("<?xml version=\"1.0\"?>", true, false).contains("only at the start"));
        assert!(error("<a", true, false).contains("unexpected end of input in a tag"));
        assert!(error("<!-- x", true, false).contains("end of input in a comment"));
        let long = format!("<!--{}", " ".repeat(MAX_MARKUP));
        assert!(error(&long, false, false).contains("longer than"));
        let ok = "<a b=\"&lt;&#60;&#x3c;\"/>";
        assert!(matches!(found(ok).0, Some(Markup::Empty(_))));
    }

    #[test]
    fn partial_constructs_ask_for_more() {
        for s in [
            "<", "<!", "<!-", "<!-- x -", "<?xm", "<?xml v", "<a b=\"1", "</a", "<![CDA", "<!DOC",
        ] {
            assert_eq!(scan(s.as_bytes(), false, true), Ok(Scan::Incomplete), "{s}");
        }
        assert_eq!(
            scan(b"<?xml version=\"1.0\"?>\n<a/>", false, true),
            Ok(Scan::Found(None, 21))
        );
    }
}
