//! Scenario files: the model (`model`), loading and validation with located errors (`load`).

pub mod load;
pub mod model;
pub mod ordered;

use serde::{Deserialize, Deserializer};

pub use load::{LoadError, LoadedScenario, load_file};
pub use model::*;

/// An amount in a scenario: `"33.33"` (major units) or `{minor: 3333}`; never a YAML number.
pub type AmountValue = protocol::money::AmountSpec;

/// A value to compare with: an exact string, or a map with one matcher.
///
/// ```yaml
/// 4: "000000003333"            # exact
/// 37: {echo: request.37}       # equal to what the terminal sent (reply checks)
/// 38: {present: true}
/// 55: {absent: true}
/// 63: {regex: "^FEE"}
/// display: {contains: 退货成功}
/// count: {ge: 2}
/// printer: {all_of: [{contains: 退货}, {regex: "RRN"}]}   # every one must hold
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum MatcherValue {
    Exact(String),
    /// A YAML integer: compared numerically (`4: 3333` matches `000000003333`).
    Number(i64),
    Regex(String),
    Contains(String),
    Present(bool),
    Echo(String),
    Compare {
        op: CompareOp,
        value: String,
    },
    Not(Box<MatcherValue>),
    AnyOf(Vec<MatcherValue>),
    AllOf(Vec<MatcherValue>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl<'de> Deserialize<'de> for MatcherValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case", deny_unknown_fields)]
        enum Op {
            Regex(String),
            Contains(String),
            Present(bool),
            Absent(bool),
            Echo(String),
            Gt(Scalar),
            Ge(Scalar),
            Lt(Scalar),
            Le(Scalar),
            Not(Box<MatcherValue>),
            AnyOf(Vec<MatcherValue>),
            AllOf(Vec<MatcherValue>),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Int(i64),
            Str(String),
        }
        impl Scalar {
            fn text(self) -> String {
                match self {
                    Scalar::Int(i) => i.to_string(),
                    Scalar::Str(s) => s,
                }
            }
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
            Op(Op),
            Float(f64),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Int(i) => MatcherValue::Number(i),
            Raw::Str(s) => MatcherValue::Exact(s),
            Raw::Float(f) => {
                return Err(serde::de::Error::custom(format!(
                    "{f} is a YAML float; write the value as a string (\"{f}\")"
                )));
            }
            Raw::Op(op) => match op {
                Op::Regex(r) => MatcherValue::Regex(r),
                Op::Contains(c) => MatcherValue::Contains(c),
                Op::Present(p) => MatcherValue::Present(p),
                Op::Absent(a) => MatcherValue::Present(!a),
                Op::Echo(e) => MatcherValue::Echo(e),
                Op::Gt(v) => MatcherValue::Compare {
                    op: CompareOp::Gt,
                    value: v.text(),
                },
                Op::Ge(v) => MatcherValue::Compare {
                    op: CompareOp::Ge,
                    value: v.text(),
                },
                Op::Lt(v) => MatcherValue::Compare {
                    op: CompareOp::Lt,
                    value: v.text(),
                },
                Op::Le(v) => MatcherValue::Compare {
                    op: CompareOp::Le,
                    value: v.text(),
                },
                Op::Not(m) => MatcherValue::Not(m),
                Op::AnyOf(v) => MatcherValue::AnyOf(v),
                Op::AllOf(v) => MatcherValue::AllOf(v),
            },
        })
    }
}
