//! Aligned text tables for people, and the compact units they show: sizes from
//! kilobytes, ages from seconds, times without the `T`.

use std::time::{Duration, SystemTime};

/// Columns padded to their widest cell, two spaces apart; right-aligned where asked.
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
    /// Per row, the tone of each cell (missing: plain).
    tones: Vec<Vec<Tone>>,
}

/// How a cell reads at a glance, shown in color on a terminal that wants it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tone {
    #[default]
    Plain,
    /// Done, healthy (green).
    Good,
    /// Failed, failing, needs a look (red).
    Bad,
    /// Stopped, waiting, worth a look (yellow).
    Warn,
}

impl Tone {
    /// `text` in this tone's ANSI color (plain text when `color` is off or the tone plain).
    pub fn paint(self, text: &str, color: bool) -> String {
        let code = match self {
            Tone::Plain => return text.to_owned(),
            _ if !color => return text.to_owned(),
            Tone::Good => "32",
            Tone::Bad => "31",
            Tone::Warn => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            right: vec![false; header.len()],
            rows: Vec::new(),
            tones: Vec::new(),
        }
    }

    /// Right-aligns the named columns (numbers).
    #[must_use]
    pub fn right(mut self, columns: &[&str]) -> Table {
        for (i, name) in self.header.iter().enumerate() {
            if columns.contains(&name.as_str()) {
                self.right[i] = true;
            }
        }
        self
    }

    /// Adds a row; control characters in a cell (text from a host or a repository) are
    /// shown escaped, never sent to the terminal.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(|c| printable(&c.into())).collect());
        self.tones.push(Vec::new());
    }

    /// Adds a row whose cells each have a tone (see [`row`](Self::row)).
    pub fn row_toned<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = (S, Tone)>,
        S: Into<String>,
    {
        let (cells, tones): (Vec<String>, Vec<Tone>) = cells.into_iter().map(|(c, t)| (printable(&c.into()), t)).unzip();
        self.rows.push(cells);
        self.tones.push(tones);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The header and every row, one line each, trailing blanks trimmed.
    pub fn render(&self) -> String {
        self.render_in(false)
    }

    /// [`render`](Self::render), each toned cell in its color when `color` (the
    /// columns aligned on the text, not on the color codes).
    pub fn render_in(&self, color: bool) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i >= widths.len() {
                    widths.push(0);
                }
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let none = Vec::new();
        for (r, row) in std::iter::once(&self.header).chain(&self.rows).enumerate() {
            let tones = if r == 0 { &none } else { &self.tones[r - 1] };
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, &width))| {
                    let pad = " ".repeat(width.saturating_sub(cell.chars().count()));
                    let text = tones.get(i).copied().unwrap_or_default().paint(cell, color);
                    if self.right.get(i).copied().unwrap_or(false) {
                        format!("{pad}{text}")
                    } else {
                        format!("{text}{pad}")
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

/// `text` with every control character (escape sequences, carriage returns, tabs,
/// newlines) written as a Rust escape (`\u{1b}`), so what a host or a repository says
/// cannot move the cursor, recolor the terminal or forge a line.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

/// `text` cut to at most `max` bytes (on a character boundary), marked `…(cut)` when
/// it was: a line a host keeps may be of any length; what kai keeps and shows of it is not.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…(cut)", &text[..end])
}

/// `count` and `noun`, with an "s" unless there is exactly one: "1 host", "3 hosts".
pub fn count(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// A size given in KiB, as `ps` and `top` show it: `812K`, `2.1M`, `1.3G`, `0`.
pub fn kib(kb: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if kb == 0 {
        return "0".into();
    }
    let mut value = kb as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// A duration to the two largest units: `12s`, `5m 12s`, `3h 05m`, `2d 4h`.
pub fn age(duration: Duration) -> String {
    let s = duration.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// How long ago `time` (RFC 3339, as kai writes it) was at `now`; `None` when it is
/// not a time kai can read or lies in the future.
pub fn since(time: &str, now: SystemTime) -> Option<Duration> {
    let then = humantime::parse_rfc3339_weak(time.trim()).ok()?;
    now.duration_since(then).ok()
}

/// `2026-01-01T10:00:00Z` → `2026-01-01 10:00:00` (UTC, as kai writes every time).
pub fn time(rfc3339: &str) -> String {
    rfc3339.trim_end_matches('Z').replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toned_cells_are_colored_only_when_asked_and_stay_aligned() {
        let mut table = Table::new(&["app", "result", "time"]);
        table.row_toned([("hello", Tone::Plain), ("deployed", Tone::Good), ("1.0s", Tone::Plain)]);
        table.row_toned([("jms", Tone::Plain), ("failed", Tone::Bad), ("2.0s", Tone::Plain)]);
        let plain = table.render_in(false);
        assert_eq!(plain, "app    result    time\nhello  deployed  1.0s\njms    failed    2.0s\n");
        assert_eq!(plain, table.render());
        let colored = table.render_in(true);
        assert_eq!(colored.lines().nth(2), Some("jms    \x1b[31mfailed\x1b[0m    2.0s"));
        assert_eq!(colored.replace("\x1b[32m", "").replace("\x1b[31m", "").replace("\x1b[0m", ""), plain);
    }

    #[test]
    fn pads_columns_and_right_aligns_numbers() {
        let mut t = Table::new(&["host", "rss", "app"]).right(&["rss"]);
        t.row(["web1", "2.1M", "hello"]);
        t.row(["web10", "812K", ""]);
        assert_eq!(t.render(), "host    rss  app\nweb1   2.1M  hello\nweb10  812K\n");
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(printable("plain text"), "plain text");
        assert_eq!(printable("\x1b[31mred\x1b[0m\r\n"), "\\u{1b}[31mred\\u{1b}[0m\\r\\n");
        let mut t = Table::new(&["user"]);
        t.row(["ann\x1b[2J"]);
        assert!(!t.render().contains('\x1b'));
    }

    #[test]
    fn sizes_read_like_top() {
        assert_eq!([kib(0), kib(812), kib(2150), kib(150_000), kib(1_363_149)], ["0", "812K", "2.1M", "146M", "1.3G"]);
    }

    #[test]
    fn ages_keep_the_two_largest_units() {
        let a = |s| age(Duration::from_secs(s));
        assert_eq!([a(12), a(312), a(3 * 3600 + 5 * 60 + 9), a(2 * 86_400 + 4 * 3600 + 1)], ["12s", "5m 12s", "3h 05m", "2d 4h"]);
    }

    #[test]
    fn since_reads_kais_times() {
        let now = humantime::parse_rfc3339("2026-01-01T10:05:00Z").unwrap();
        assert_eq!(since("2026-01-01T10:00:00Z", now), Some(Duration::from_secs(300)));
        assert_eq!(since("unknown", now), None);
        assert_eq!(since("2026-01-02T00:00:00Z", now), None);
        assert_eq!(time("2026-01-01T10:00:00Z"), "2026-01-01 10:00:00");
    }
}
