//! Rendering results: an aligned text table for people, a JSON array of objects
//! (times as RFC 3339 strings, counts as numbers) and RFC 4180 CSV with a header for
//! tools. Every result type turns itself into a [`Table`] first, so the three
//! formats cannot disagree about columns.

use crate::QueryError;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(QueryError::Invalid(format!("output {s:?}: one of table, json, csv"))),
        }
    }
}

/// One value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Str(String),
    Int(i64),
    /// Unix milliseconds, shown as RFC 3339.
    Time(i64),
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Str(s)
    }
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Str(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Time(ms) => crate::format_ms(*ms),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Cell::Int(i) => serde_json::Value::from(*i),
            other => serde_json::Value::String(other.text()),
        }
    }
}

/// Column names and rows of cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// Longest cell shown in the text table (messages can be kilobytes); JSON and CSV
/// are never cut.
const MAX_TABLE_CELL: usize = 100;

impl Table {
    pub fn new(columns: &[&str]) -> Self {
        Table { columns: columns.iter().map(|c| c.to_string()).collect(), rows: vec![] }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => self.text(),
            Format::Json => self.json(),
            Format::Csv => self.csv(),
        }
    }

    fn text(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| {
                        let t = c.text().replace(['\n', '\r', '\t'], " ");
                        if t.chars().count() > MAX_TABLE_CELL {
                            let mut s: String = t.chars().take(MAX_TABLE_CELL - 1).collect();
                            s.push('…');
                            s
                        } else {
                            t
                        }
                    })
                    .collect()
            })
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for r in &cells {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |vals: &[String]| {
            let mut s = String::new();
            for (i, (v, w)) in vals.iter().zip(&widths).enumerate() {
                if i + 1 == vals.len() {
                    s.push_str(v);
                } else {
                    s.push_str(v);
                    s.push_str(&" ".repeat(w - v.chars().count() + 2));
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let header: Vec<String> = self.columns.iter().map(|c| c.to_uppercase()).collect();
        let mut out = line(&header);
        for r in &cells {
            out.push_str(&line(r));
        }
        out.push_str(&format!("({} rows)\n", self.rows.len()));
        out
    }

    fn json(&self) -> String {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                let obj: serde_json::Map<String, serde_json::Value> =
                    self.columns.iter().cloned().zip(r.iter().map(Cell::json)).collect();
                serde_json::Value::Object(obj)
            })
            .collect();
        let mut s = serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into());
        s.push('\n');
        s
    }

    fn csv(&self) -> String {
        fn field(s: &str) -> String {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|c| field(c)).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for r in &self.rows {
            let vals: Vec<String> = r.iter().map(|c| field(&c.text())).collect();
            out.push_str(&vals.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&["time", "reason", "count"]);
        t.push(vec![Cell::Time(0), Cell::Str("Back\"Off, again\nand".into()), Cell::Int(3)]);
        t.push(vec![Cell::Time(60_000), Cell::Str("x".repeat(300)), Cell::Int(-1)]);
        t
    }

    #[test]
    fn json_is_an_array_of_typed_objects() {
        let v: serde_json::Value = serde_json::from_str(&sample().render(Format::Json)).unwrap();
        assert_eq!(v[0]["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v[0]["count"], 3);
        assert_eq!(v[0]["reason"], "Back\"Off, again\nand");
        assert_eq!(v.as_array().unwrap().len(), 2);
    }

    #[test]
    fn csv_quotes_per_rfc4180() {
        let csv = sample().render(Format::Csv);
        let mut lines = csv.split("\r\n");
        assert_eq!(lines.next(), Some("time,reason,count"));
        assert!(csv.contains("\"Back\"\"Off, again\nand\",3"), "{csv}");
    }

    #[test]
    fn text_table_aligns_and_cuts_long_cells() {
        let text = sample().render(Format::Table);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("TIME") && lines[0].contains("REASON"));
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[2].contains('…') && lines[2].chars().count() < 200);
        assert_eq!(lines[3], "(2 rows)");
        assert!("yaml".parse::<Format>().is_err());
    }
}
