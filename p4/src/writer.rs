//! A small indenting text writer for P4 source.

/// Collects lines of P4 at an indentation level of four spaces per block.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    /// Writes one line at the current depth (an empty line stays empty).
    pub(crate) fn line(&mut self, s: impl AsRef<str>) {
        let s = s.as_ref();
        if !s.is_empty() {
            for _ in 0..self.depth {
                self.out.push_str("    ");
            }
            self.out.push_str(s);
        }
        self.out.push('\n');
    }

    /// Writes an empty line.
    pub(crate) fn blank(&mut self) {
        self.out.push('\n');
    }

    /// Writes `head {` and enters the block.
    pub(crate) fn open(&mut self, head: impl AsRef<str>) {
        let head = head.as_ref();
        if head.is_empty() {
            self.line("{");
        } else {
            self.line(format!("{head} {{"));
        }
        self.depth += 1;
    }

    /// Writes `s` as is and indents the lines that follow.
    pub(crate) fn open_raw(&mut self, s: impl AsRef<str>) {
        self.line(s);
        self.depth += 1;
    }

    /// Indents the lines that follow by one more level.
    pub(crate) fn indent(&mut self) {
        self.depth += 1;
    }

    /// Takes back one level of indentation.
    pub(crate) fn dedent(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Leaves a block with `}` followed by `tail` (e.g. `" else {"`).
    pub(crate) fn close_with(&mut self, tail: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.line(format!("}}{tail}"));
    }

    /// Leaves a block with `}`.
    pub(crate) fn close(&mut self) {
        self.close_with("");
    }

    /// Leaves an `if` block and opens its `else` block: `} else {`.
    pub(crate) fn else_open(&mut self, cond: Option<&str>) {
        self.depth = self.depth.saturating_sub(1);
        match cond {
            Some(c) => self.line(format!("}} else if ({c}) {{")),
            None => self.line("} else {"),
        }
        self.depth += 1;
    }

    /// The text written so far.
    pub(crate) fn finish(self) -> String {
        debug_assert_eq!(self.depth, 0, "unbalanced blocks");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_blocks() {
        let mut w = Writer::default();
        w.open("control C()");
        w.open("apply");
        w.open("if (a)");
        w.line("x = 1;");
        w.else_open(None);
        w.line("x = 2;");
        w.close();
        w.close();
        w.close();
        w.blank();
        assert_eq!(
            w.finish(),
            "control C() {\n    apply {\n        if (a) {\n            x = 1;\n        } else {\n            x = 2;\n        }\n    }\n}\n\n"
        );
    }
}
