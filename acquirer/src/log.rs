//! The host's log: everything received and sent, in order, decoded and PAN-masked. Raw bytes
//! are never kept (they hold the PAN and track data); an entry keeps its length.
//!
//! Fields render by subfield where the dialect declares them, as
//! [`protocol::iso8583::subfield::render_field`] does: `("60.1", "25")`, `("2",
//! "622202******7894")`, `("35", "622202******7894=*******")`, `("52", "<8 bytes>")`; field 62
//! (working keys) renders as `[KEYS]`, 64 as the MAC in hex.

use std::fmt;

use protocol::iso8583::subfield::render_field;
use protocol::iso8583::{Dialect, FieldSource};
use protocol::time::Instant;

use crate::host::ConnId;
use crate::script::DirectiveId;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Terminal → host (also: a connection opened or closed by the terminal).
    In,
    /// Host → terminal (also: a connection closed by the host).
    Out,
}

/// One log entry. A message has `mti: Some`; a connection event (`connected`, `closed by the
/// terminal`, `closed by the host`) has `mti: None` and says what in `note`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// 1, 2, 3… in order of occurrence.
    pub seq: u64,
    pub conn: ConnId,
    pub at: Instant,
    pub direction: Direction,
    pub mti: Option<String>,
    /// Rendered fields in field order: `("3", "000000")`, `("60.1", "22")`.
    pub fields: Vec<(String, String)>,
    /// Bytes on the wire, length prefix included.
    pub raw_len: usize,
    /// What went wrong or what was special: a decode error with field and offset, a framing
    /// error, the reason of a refusal, the fault applied.
    pub note: Option<String>,
    /// The directive that decided this exchange.
    pub directive: Option<DirectiveId>,
}

impl Exchange {
    /// A rendered field or subfield (`"39"`, `"60.1"`).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// A message (not a connection event).
    pub fn is_message(&self) -> bool {
        self.mti.is_some()
    }
}

impl fmt::Display for Exchange {
    /// `#3 conn#1 in 0200 2=622202******7894 3=000000 … (87 bytes) [note]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.direction {
            Direction::In => "in ",
            Direction::Out => "out",
        };
        write!(f, "#{} {} {dir}", self.seq, self.conn)?;
        match &self.mti {
            Some(m) => write!(f, " {m}")?,
            None => write!(f, " --")?,
        }
        for (k, v) in &self.fields {
            write!(f, " {k}={v}")?;
        }
        if self.raw_len > 0 {
            write!(f, " ({} bytes)", self.raw_len)?;
        }
        if let Some(d) = self.directive {
            write!(f, " <{d}>")?;
        }
        if let Some(n) = &self.note {
            write!(f, " [{n}]")?;
        }
        Ok(())
    }
}

/// Every present field of `m`, rendered and split by subfield.
pub fn render_message(d: &Dialect, m: &impl FieldSource) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in m.present() {
        if n == 62 {
            out.push(("62".to_string(), "[KEYS]".to_string()));
            continue;
        }
        let Some(v) = m.value(n) else { continue };
        let s = render_field(d, n, &v);
        split_rendered(d, n, &s, &mut out);
    }
    out
}

/// `60.1=25 60.2=000001` → [("60.1","25"), ("60.2","000001")]; `37=…` → [("37","…")].
fn split_rendered(d: &Dialect, n: u8, s: &str, out: &mut Vec<(String, String)>) {
    let whole = format!("{n}=");
    if let Some(v) = s.strip_prefix(&whole) {
        out.push((n.to_string(), v.to_string()));
        return;
    }
    let ids: Vec<u8> = d
        .field(n)
        .map(|f| f.subfields.iter().map(|s| s.id).collect())
        .unwrap_or_default();
    let start = out.len();
    let mut rest = s;
    for (i, id) in ids.iter().enumerate() {
        let marker = format!("{n}.{id}=");
        let Some(r) = rest.strip_prefix(marker.as_str()) else {
            break;
        };
        let end = ids
            .get(i + 1)
            .and_then(|nx| r.find(&format!(" {n}.{nx}=")))
            .unwrap_or(r.len());
        out.push((format!("{n}.{id}"), r.get(..end).unwrap_or(r).to_string()));
        rest = r.get(end..).unwrap_or("");
        rest = rest.strip_prefix(' ').unwrap_or(rest);
    }
    if out.len() == start {
        out.push((n.to_string(), s.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::iso8583::{Message, Mti};

    #[test]
    fn renders_by_subfield_masked_and_keys_hidden() {
        let d = Dialect::builtin("cup").unwrap();
        let mut m = Message::new(Mti::new(810).unwrap());
        m.set(2, "6222021234567894")
            .set(35, "6222021234567894=30122201010000")
            .set(60, "00000001003")
            .set(62, [7u8; 40])
            .set(63, "001 op name")
            .set(64, [0xAB; 8]);
        let r = render_message(&d, &m);
        let get = |k: &str| r.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
        assert_eq!(get("2"), Some("622202******7894"));
        assert_eq!(get("35"), Some("622202******7894=**************"));
        assert_eq!(get("60.1"), Some("00"));
        assert_eq!(get("60.2"), Some("000001"));
        assert_eq!(get("60.3"), Some("003"));
        assert_eq!(get("62"), Some("[KEYS]"));
        assert_eq!(get("64"), Some("ABABABABABABABAB"));
        // 63 is 11 characters: not on a subfield boundary, shown whole.
        assert_eq!(get("63"), Some("001 op name"));
        let shown = format!("{r:?}");
        assert!(!shown.contains("6222021234567894"));
    }
}
