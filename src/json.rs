//! The JSON every tool prints: one compact object on one line, written field by field
//! without building a document in memory, with one escaping rule.
//!
//! Field names are snake_case; ranges are `{"begin":B,"end":E}` with `end` exclusive, in
//! the unit a `units` field names.

use std::io::{self, Write};

/// Writes `s` as a JSON string: quotes, backslashes and control characters escaped.
pub fn write_str(out: &mut dyn Write, s: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => Some("\\\"".to_string()),
            '\\' => Some("\\\\".to_string()),
            '\n' => Some("\\n".to_string()),
            '\t' => Some("\\t".to_string()),
            '\r' => Some("\\r".to_string()),
            c if (c as u32) < 0x20 => Some(format!("\\u{:04x}", c as u32)),
            _ => None,
        };
        if let Some(e) = escape {
            out.write_all(&s.as_bytes()[start..i])?;
            out.write_all(e.as_bytes())?;
            start = i + c.len_utf8();
        }
    }
    out.write_all(&s.as_bytes()[start..])?;
    out.write_all(b"\"")
}

/// A value that can be written as JSON.
pub trait ToJson {
    /// Writes the value.
    fn write_json(&self, out: &mut dyn Write) -> io::Result<()>;
}

impl ToJson for str {
    fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        write_str(out, self)
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        write_str(out, self)
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        write!(out, "{self}")
    }
}

macro_rules! json_number {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
                write!(out, "{self}")
            }
        }
    )*};
}
json_number!(u8, u16, u32, u64, usize, i32, i64);

impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Some(v) => v.write_json(out),
            None => out.write_all(b"null"),
        }
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        (**self).write_json(out)
    }
}

/// An end-exclusive range, written as `{"begin":B,"end":E}`.
pub struct Range(pub u64, pub u64);

impl ToJson for Range {
    fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        write!(out, "{{\"begin\":{},\"end\":{}}}", self.0, self.1)
    }
}

/// An object being written: `{`, then fields, then `}` from [`Object::end`].
pub struct Object<'a> {
    out: &'a mut dyn Write,
    first: bool,
}

impl<'a> Object<'a> {
    /// Starts an object.
    pub fn begin(out: &'a mut dyn Write) -> io::Result<Object<'a>> {
        out.write_all(b"{")?;
        Ok(Object { out, first: true })
    }

    fn key(&mut self, name: &str) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",")?;
        }
        self.first = false;
        write_str(self.out, name)?;
        self.out.write_all(b":")
    }

    /// Writes one field.
    pub fn field(&mut self, name: &str, value: impl ToJson) -> io::Result<&mut Self> {
        self.key(name)?;
        value.write_json(self.out)?;
        Ok(self)
    }

    /// Writes a field whose value is a list.
    pub fn list<T: ToJson>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
    ) -> io::Result<&mut Self> {
        self.key(name)?;
        self.out.write_all(b"[")?;
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            item.write_json(self.out)?;
        }
        self.out.write_all(b"]")?;
        Ok(self)
    }

    /// Writes a field whose value is written by `value` (a nested object, a long list).
    pub fn raw(
        &mut self,
        name: &str,
        value: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<&mut Self> {
        self.key(name)?;
        value(self.out)?;
        Ok(self)
    }

    /// Closes the object.
    pub fn end(&mut self) -> io::Result<()> {
        self.out.write_all(b"}")
    }
}

/// A value written by a closure, for nesting objects inside lists.
pub struct With<F>(pub F);

impl<F: Fn(&mut dyn Write) -> io::Result<()>> ToJson for With<F> {
    fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        (self.0)(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut v = Vec::new();
        write_str(&mut v, "a\"b\\c\n\u{1}é").unwrap();
        assert_eq!(String::from_utf8(v).unwrap(), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn objects_are_one_compact_line() {
        let mut v = Vec::new();
        Object::begin(&mut v)
            .unwrap()
            .field("era", 7u32)
            .unwrap()
            .field("units", "bytes")
            .unwrap()
            .field("root", None::<u64>)
            .unwrap()
            .list("ranges", [Range(0, 8), Range(16, 24)])
            .unwrap()
            .end()
            .unwrap();
        let text = String::from_utf8(v).unwrap();
        assert_eq!(
            text,
            r#"{"era":7,"units":"bytes","root":null,"ranges":[{"begin":0,"end":8},{"begin":16,"end":24}]}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["ranges"][1]["end"], 24);
    }
}
