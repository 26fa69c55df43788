//! Where in a TOML document a field is: byte spans to dotted paths
//! (`vips[0].servers[2].dip`) and back, and byte offsets to lines.
//!
//! serde tells us *that* a value is wrong and toml gives its byte span;
//! semantic checks done after deserialization know the *path* of the field.
//! Walking the spanned document tree joins the two, so that every config
//! error names the file, the line and the field.

use std::fmt;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A dotted path into the document, e.g. `switches[1].address`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// The root of the document.
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// This path with a key appended.
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    /// This path with an array index appended.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// True at the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    // An empty span (end of input) still "contains" its start.
    span.start <= offset && (offset < span.end || span.start == span.end)
}

/// The deepest field whose key or value spans `offset`.
pub fn path_at(doc: &Spanned<DeTable<'_>>, offset: usize) -> FieldPath {
    let mut path = FieldPath::root();
    walk_table(doc.get_ref(), offset, &mut path);
    path
}

fn walk_table(t: &DeTable<'_>, offset: usize, path: &mut FieldPath) {
    for (k, v) in t.iter() {
        if contains(&k.span(), offset) {
            path.0.push(Seg::Key(k.get_ref().to_string()));
            return;
        }
        if contains(&v.span(), offset) {
            path.0.push(Seg::Key(k.get_ref().to_string()));
            walk_value(v.get_ref(), offset, path);
            return;
        }
    }
    // Array-of-tables headers (`[[vips.servers]]`) give the table's span
    // as the header only; fall back to the entry whose span starts last
    // before the offset.
    let mut best: Option<(&str, &Spanned<DeValue<'_>>)> = None;
    for (k, v) in t.iter() {
        if v.span().start <= offset && best.is_none_or(|(_, b)| b.span().start <= v.span().start) {
            best = Some((k.get_ref(), v));
        }
    }
    if let Some((k, v)) = best
        && matches!(v.get_ref(), DeValue::Table(_) | DeValue::Array(_))
    {
        path.0.push(Seg::Key(k.to_string()));
        walk_value(v.get_ref(), offset, path);
    }
}

fn walk_value(v: &DeValue<'_>, offset: usize, path: &mut FieldPath) {
    match v {
        DeValue::Table(t) => walk_table(t, offset, path),
        DeValue::Array(a) => {
            let mut hit = None;
            for (i, item) in a.iter().enumerate() {
                if contains(&item.span(), offset) {
                    hit = Some(i);
                    break;
                }
                if item.span().start <= offset {
                    hit = Some(i);
                }
            }
            if let Some(i) = hit {
                path.0.push(Seg::Index(i));
                walk_value(a[i].get_ref(), offset, path);
            }
        }
        _ => {}
    }
}

/// The span of the field at `path`: its value's span, or the span of the
/// nearest ancestor present in the document (a missing field is reported
/// at the table that lacks it).
pub fn span_of(doc: &Spanned<DeTable<'_>>, path: &FieldPath) -> Range<usize> {
    let mut span = doc.span();
    let mut cur: Option<&DeValue<'_>> = None;
    let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
    for seg in &path.0 {
        let next: Option<&Spanned<DeValue<'_>>> = match (seg, table, cur) {
            (Seg::Key(k), Some(t), _) => t.get(k.as_str()),
            (Seg::Index(i), _, Some(DeValue::Array(a))) => a.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        // Keys of headers point at the header; values of inline fields at
        // the value. Either way the line is right.
        span = next.span();
        cur = Some(next.get_ref());
        table = match next.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
[controller]
tunnel_src = \"10.0.0.1\"

[[vips]]
address = \"192.0.2.1\"

[[vips.servers]]
dip = \"10.1.0.1\"

[[vips.servers]]
dip = \"10.1.0.2\"
weight = 3
";

    #[test]
    fn offsets_to_paths_and_back() {
        let doc = DeTable::parse(DOC).unwrap();
        let at = DOC.find("weight").unwrap();
        assert_eq!(path_at(&doc, at).to_string(), "vips[0].servers[1].weight");
        let at = DOC.find("\"10.1.0.1\"").unwrap();
        assert_eq!(path_at(&doc, at).to_string(), "vips[0].servers[0].dip");
        let at = DOC.find("\"10.0.0.1\"").unwrap() + 2;
        assert_eq!(path_at(&doc, at).to_string(), "controller.tunnel_src");

        let p = FieldPath::root()
            .key("vips")
            .index(0)
            .key("servers")
            .index(1)
            .key("weight");
        let span = span_of(&doc, &p);
        assert_eq!(line_col(DOC, span.start).0, 12);
        // A missing field is placed at its table.
        let missing = FieldPath::root()
            .key("vips")
            .index(0)
            .key("servers")
            .index(1)
            .key("port");
        assert_eq!(line_col(DOC, span_of(&doc, &missing).start).0, 10);
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab\ncd", 99), (2, 3));
    }
}
