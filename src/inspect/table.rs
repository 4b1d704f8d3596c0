//! Aligned text tables as kubectl prints them: a header row in capitals, columns left-aligned and
//! separated by three spaces, the last column not padded, no trailing spaces.

/// `headers` and `rows` as aligned lines, each ending in a newline. A cell's line breaks become
/// spaces, so that every row stays on one line. Rows shorter than the header are padded with empty
/// cells.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let clean = |cell: &str| cell.replace(['\r', '\n', '\t'], " ");
    let lines: Vec<Vec<String>> = std::iter::once(headers.iter().map(|h| clean(h)).collect())
        .chain(rows.iter().map(|r| {
            (0..headers.len())
                .map(|i| r.get(i).map(|c| clean(c)).unwrap_or_default())
                .collect()
        }))
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < line.len() {
                let pad = widths[i] - cell.chars().count() + 3;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn columns_align_like_kubectl() {
        let out = render(
            &["NODE", "POD", "REASON"],
            &[
                vec!["a".into(), "agent-xyz".into(), "up to date".into()],
                vec!["node-long".into(), "-".into(), "untolerated\ntaint".into()],
                vec!["b".into(), "é".into(), "".into()],
            ],
        );
        assert_eq!(
            out,
            "NODE        POD         REASON\n\
             a           agent-xyz   up to date\n\
             node-long   -           untolerated taint\n\
             b           é\n"
        );
    }

    #[test]
    fn short_rows_get_empty_cells() {
        assert_eq!(render(&["A", "B"], &[vec!["x".into()]]), "A   B\nx\n");
        assert_eq!(render(&["A", "B"], &[]), "A   B\n");
    }
}
