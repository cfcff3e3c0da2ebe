//! Plain aligned tables for terminal output.

/// `header` and `rows` as lines: every column but the last padded to its widest
/// cell, columns two spaces apart. The last column is never padded, so it may
/// carry colour escapes.
pub fn aligned_lines(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row).take(columns.saturating_sub(1)) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (index, cell) in cells.enumerate() {
            if index > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if index + 1 < columns {
                let pad = widths[index].saturating_sub(cell.chars().count());
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.trim_end().to_string()
    };
    let mut lines = vec![line(&mut header.iter().copied())];
    lines.extend(
        rows.iter()
            .map(|row| line(&mut row.iter().map(String::as_str))),
    );
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_the_last_is_not_padded() {
        let lines = aligned_lines(
            &["NAME", "KIND", "NOTE"],
            &[
                vec!["oci".into(), "registry".into(), "x".into()],
                vec![
                    "semver".into(),
                    "strategy".into(),
                    "\x1b[32mok\x1b[0m".into(),
                ],
            ],
        );
        assert_eq!(lines[0], "NAME    KIND      NOTE");
        assert_eq!(lines[1], "oci     registry  x");
        assert_eq!(lines[2], "semver  strategy  \x1b[32mok\x1b[0m");
    }
}
