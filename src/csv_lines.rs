//! Line numbers of CSV records for error messages: the `csv` crate's own line
//! count and byte offset put a record after blank lines at the first of them,
//! so the line of a record is counted here from its bytes. Shared by every
//! CSV input (`[schedule]` files, edge lists, `fit`/`calibrate` data tables).

/// The 1-based lines of records met in file order, counted on from the last
/// one asked (so a whole file costs one pass).
#[derive(Debug, Default)]
pub(crate) struct LineCounter {
    offset: usize,
    newlines: usize,
    /// Also step over spaces and tabs between the record's offset and its first
    /// byte (edge lists).
    skip_spaces: bool,
}

impl LineCounter {
    /// A counter that steps over the blank lines before a record.
    pub(crate) fn new() -> Self {
        LineCounter::default()
    }

    /// A counter that steps over blank lines and spaces or tabs before a record.
    pub(crate) fn skipping_spaces() -> Self {
        LineCounter {
            skip_spaces: true,
            ..LineCounter::default()
        }
    }

    /// The 1-based line of the record that starts at byte `offset` of `bytes`,
    /// at or after the last one asked.
    pub(crate) fn line_at(&mut self, bytes: &[u8], offset: u64) -> usize {
        let mut end = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        while end < bytes.len()
            && (matches!(bytes[end], b'\n' | b'\r')
                || (self.skip_spaces && matches!(bytes[end], b' ' | b'\t')))
        {
            end += 1;
        }
        let start = self.offset.min(end);
        self.newlines += bytes[start..end].iter().filter(|&&b| b == b'\n').count();
        self.offset = end;
        1 + self.newlines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_after_blank_lines_get_their_own_line() {
        let text = b"a,b\n\n\r\n1,2\n  \n3,4\n";
        let mut lines = LineCounter::new();
        assert_eq!(lines.line_at(text, 0), 1);
        assert_eq!(lines.line_at(text, 4), 4);
        assert_eq!(lines.line_at(text, 12), 5);
        assert_eq!(lines.line_at(text, 15), 6);
        // Spaces before a record are stepped over only when asked.
        assert_eq!(LineCounter::new().line_at(text, 12), 5);
        assert_eq!(LineCounter::skipping_spaces().line_at(text, 12), 6);
        // Past the end: the last line.
        assert_eq!(LineCounter::new().line_at(text, 99), 7);
    }
}
