//! The one matcher: every expectation in a scenario — host fields, ECR BMPs, display, printer —
//! is a [`MatcherValue`] compiled here and checked the same way, so a failure always reads
//! "expected …, got …".

use regex::Regex;
use rust_decimal::Decimal;

use crate::scenario::{CompareOp, MatcherValue};

#[derive(Clone, Debug)]
pub enum Matcher {
    Exact(String),
    Number(i64),
    Regex(Regex),
    Contains(String),
    Present(bool),
    Echo(String),
    Compare(CompareOp, Decimal),
    Not(Box<Matcher>),
    AnyOf(Vec<Matcher>),
    /// Every one must hold; a failure names the first that does not.
    AllOf(Vec<Matcher>),
}

impl Matcher {
    pub fn compile(v: &MatcherValue) -> Result<Matcher, String> {
        Ok(match v {
            MatcherValue::Exact(s) => Matcher::Exact(s.clone()),
            MatcherValue::Number(n) => Matcher::Number(*n),
            MatcherValue::Regex(r) => {
                if r.contains("${") {
                    // Variables are substituted per run; compile then.
                    Matcher::Exact(r.clone())
                } else {
                    Matcher::Regex(Regex::new(r).map_err(|e| format!("bad regex {r:?}: {e}"))?)
                }
            }
            MatcherValue::Contains(s) => Matcher::Contains(s.clone()),
            MatcherValue::Present(p) => Matcher::Present(*p),
            MatcherValue::Echo(e) => Matcher::Echo(e.clone()),
            MatcherValue::Compare { op, value } => {
                let d: Decimal = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("{value:?} is not a number to compare with"))?;
                Matcher::Compare(*op, d)
            }
            MatcherValue::Not(m) => Matcher::Not(Box::new(Matcher::compile(m)?)),
            MatcherValue::AnyOf(v) => {
                Matcher::AnyOf(v.iter().map(Matcher::compile).collect::<Result<_, _>>()?)
            }
            MatcherValue::AllOf(v) => {
                Matcher::AllOf(v.iter().map(Matcher::compile).collect::<Result<_, _>>()?)
            }
        })
    }

    /// Checks `actual` (None = absent). `echo` resolves `request.4`-style references.
    pub fn check(
        &self,
        actual: Option<&str>,
        echo: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), String> {
        let show = |a: Option<&str>| {
            a.map(|s| format!("{s:?}"))
                .unwrap_or_else(|| "absent".into())
        };
        let fail = |expected: String| Err(format!("expected {expected}, got {}", show(actual)));
        match self {
            Matcher::Exact(e) => {
                if actual == Some(e.as_str()) {
                    Ok(())
                } else {
                    fail(format!("{e:?}"))
                }
            }
            Matcher::Number(n) => {
                let got = actual.and_then(|a| a.trim().parse::<i64>().ok());
                if got == Some(*n) {
                    Ok(())
                } else {
                    fail(format!("the number {n}"))
                }
            }
            Matcher::Regex(r) => match actual {
                Some(a) if r.is_match(a) => Ok(()),
                _ => fail(format!("a match of /{}/", r.as_str())),
            },
            Matcher::Contains(s) => match actual {
                Some(a) if a.contains(s.as_str()) => Ok(()),
                _ => fail(format!("text containing {s:?}")),
            },
            Matcher::Present(true) => {
                if actual.is_some() {
                    Ok(())
                } else {
                    fail("present".into())
                }
            }
            Matcher::Present(false) => {
                if actual.is_none() {
                    Ok(())
                } else {
                    fail("absent".into())
                }
            }
            Matcher::Echo(r) => {
                let want = echo(r);
                if want.is_some() && want.as_deref() == actual {
                    Ok(())
                } else {
                    fail(format!("the echo of {r} ({})", show(want.as_deref())))
                }
            }
            Matcher::Compare(op, d) => {
                let got = actual.and_then(|a| a.trim().parse::<Decimal>().ok());
                let ok = got.is_some_and(|g| match op {
                    CompareOp::Gt => g > *d,
                    CompareOp::Ge => g >= *d,
                    CompareOp::Lt => g < *d,
                    CompareOp::Le => g <= *d,
                });
                if ok {
                    Ok(())
                } else {
                    let sym = match op {
                        CompareOp::Gt => ">",
                        CompareOp::Ge => ">=",
                        CompareOp::Lt => "<",
                        CompareOp::Le => "<=",
                    };
                    fail(format!("a number {sym} {d}"))
                }
            }
            Matcher::Not(m) => match m.check(actual, echo) {
                Ok(()) => Err(format!("expected not ({m:?}), got {}", show(actual))),
                Err(_) => Ok(()),
            },
            Matcher::AnyOf(ms) => {
                if ms.iter().any(|m| m.check(actual, echo).is_ok()) {
                    Ok(())
                } else {
                    fail(format!("any of {ms:?}"))
                }
            }
            Matcher::AllOf(ms) => {
                for (i, m) in ms.iter().enumerate() {
                    if let Err(e) = m.check(actual, echo) {
                        return Err(format!("all_of, item {}: {e}", i + 1));
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_echo(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn each_matcher_can_pass_and_fail() {
        let m = |v| Matcher::compile(&v).unwrap();
        assert!(
            m(MatcherValue::Exact("00".into()))
                .check(Some("00"), &no_echo)
                .is_ok()
        );
        let e = m(MatcherValue::Exact("00".into()))
            .check(Some("05"), &no_echo)
            .unwrap_err();
        assert_eq!(e, "expected \"00\", got \"05\"");
        assert!(
            m(MatcherValue::Number(3333))
                .check(Some("000000003333"), &no_echo)
                .is_ok()
        );
        assert!(
            m(MatcherValue::Number(3333))
                .check(Some("3334"), &no_echo)
                .is_err()
        );
        assert!(
            m(MatcherValue::Regex("^0+33$".into()))
                .check(Some("00033"), &no_echo)
                .is_ok()
        );
        assert!(
            m(MatcherValue::Present(false))
                .check(None, &no_echo)
                .is_ok()
        );
        assert!(
            m(MatcherValue::Present(true))
                .check(None, &no_echo)
                .is_err()
        );
        assert!(
            m(MatcherValue::Contains("退货".into()))
                .check(Some("退货成功"), &no_echo)
                .is_ok()
        );
        let echo = |r: &str| (r == "request.11").then(|| "000123".to_string());
        assert!(
            m(MatcherValue::Echo("request.11".into()))
                .check(Some("000123"), &echo)
                .is_ok()
        );
        assert!(
            m(MatcherValue::Echo("request.11".into()))
                .check(Some("000124"), &echo)
                .is_err()
        );
        let ge = MatcherValue::Compare {
            op: CompareOp::Ge,
            value: "2".into(),
        };
        assert!(m(ge.clone()).check(Some("2"), &no_echo).is_ok());
        assert!(m(ge).check(Some("1.99"), &no_echo).is_err());
        let not = MatcherValue::Not(Box::new(MatcherValue::Exact("00".into())));
        assert!(m(not.clone()).check(Some("05"), &no_echo).is_ok());
        assert!(m(not).check(Some("00"), &no_echo).is_err());
        assert!(Matcher::compile(&MatcherValue::Regex("(".into())).is_err());
        let all = MatcherValue::AllOf(vec![
            MatcherValue::Contains("退货".into()),
            MatcherValue::Regex("CNY 33\\.33$".into()),
        ]);
        assert!(
            m(all.clone())
                .check(Some("退货 CNY 33.33"), &no_echo)
                .is_ok()
        );
        let e = m(all).check(Some("退货 CNY 33.34"), &no_echo).unwrap_err();
        assert!(e.starts_with("all_of, item 2: "), "{e}");
    }
}
