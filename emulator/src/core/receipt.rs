//! Receipts as documents: one description of what a slip says, rendered as ESC/POS for the
//! terminal's printer (Chinese with English labels on a `zh` profile, GB18030, sized with
//! GS !) and as plain English lines for an ECR that prints (ZVT 06 D1 / 06 D3, CP437).
//!
//! A refund's merchant and customer copies carry every line of DESIGN.md R-RECEIPT.

use protocol::escpos::{Align, ReceiptBuilder};
use protocol::fixture::journal::TxnType;
use protocol::fixture::terminal::{Language, TerminalProfile};
use protocol::money::Money;
use protocol::time::Instant;

use super::refusal::Refusal;
use crate::journal::{EntryMode, Outcome, TxnRecord};

/// One line of a slip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    /// The slip's title: large, centred.
    Title {
        zh: String,
        en: String,
    },
    /// A label and its value on one line (or two when they do not fit).
    Field {
        zh: &'static str,
        en: &'static str,
        value: String,
    },
    /// Free text, centred.
    Note {
        zh: String,
        en: String,
    },
    Separator,
    /// Room for the cardholder's signature (merchant copy).
    Signature,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slip {
    pub rows: Vec<Row>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copy {
    Merchant,
    Customer,
}

fn kind_label(k: TxnType) -> (&'static str, &'static str) {
    match k {
        TxnType::Sale => ("消费", "SALE"),
        TxnType::Void => ("撤销", "VOID"),
        TxnType::Refund => ("退货", "REFUND"),
    }
}

/// `2026/11/26 10:00:03` in the terminal's zone.
pub fn date_time(profile: &TerminalProfile, at: Instant) -> String {
    at.to_local(profile.time_zone)
        .format("%Y/%m/%d %H:%M:%S")
        .to_string()
}

fn money(m: Money) -> String {
    format!("{} {}", m.currency().alpha(), m)
}

fn header(profile: &TerminalProfile, rows: &mut Vec<Row>) {
    rows.push(Row::Field {
        zh: "商户名称",
        en: "MERCHANT NAME",
        value: String::new(),
    });
    rows.push(Row::Note {
        zh: profile.merchant_name.clone(),
        en: profile
            .merchant_name_latin
            .clone()
            .unwrap_or_else(|| profile.merchant_name.clone()),
    });
    rows.push(Row::Field {
        zh: "商户编号",
        en: "MERCHANT NO",
        value: profile.merchant_id.clone(),
    });
    rows.push(Row::Field {
        zh: "终端编号",
        en: "TERMINAL ID",
        value: profile.terminal_id.clone(),
    });
}

/// The merchant or customer copy of an approved transaction (or its reprint).
pub fn transaction(
    profile: &TerminalProfile,
    t: &TxnRecord,
    original: Option<&TxnRecord>,
    copy: Copy,
    reprint: bool,
) -> Slip {
    let (kzh, ken) = kind_label(t.kind);
    let mut rows = vec![Row::Title {
        zh: format!("{kzh} {ken}"),
        en: ken.to_string(),
    }];
    if reprint {
        rows.push(Row::Note {
            zh: "重打印 REPRINT".into(),
            en: "REPRINT".into(),
        });
    }
    header(profile, &mut rows);
    rows.push(Row::Separator);
    rows.push(Row::Field {
        zh: "卡号",
        en: "CARD NO",
        value: t.pan_masked.clone(),
    });
    let entry = match profile.language {
        Language::Zh => format!("{} {}", t.entry_mode.label_zh(), t.entry_mode.label_en()),
        Language::En => t.entry_mode.label_en().to_string(),
    };
    rows.push(Row::Field {
        zh: "输入方式",
        en: "ENTRY MODE",
        value: entry,
    });
    if t.entry_mode == EntryMode::FallbackSwipe {
        rows.push(Row::Note {
            zh: "降级交易 FALLBACK".into(),
            en: "FALLBACK".into(),
        });
    }
    rows.push(Row::Field {
        zh: "交易类型",
        en: "TRANS TYPE",
        value: match profile.language {
            Language::Zh => format!("{kzh} {ken}"),
            Language::En => ken.to_string(),
        },
    });
    rows.push(Row::Field {
        zh: "批次号",
        en: "BATCH NO",
        value: format!("{:06}", t.batch),
    });
    rows.push(Row::Field {
        zh: "凭证号",
        en: "VOUCHER NO",
        value: format!("{:06}", t.stan),
    });
    rows.push(Row::Field {
        zh: "收据号",
        en: "RECEIPT NO",
        value: format!("{:04}", t.receipt_no),
    });
    rows.push(Row::Field {
        zh: "参考号",
        en: "REF NO",
        value: t.rrn.clone().unwrap_or_default(),
    });
    rows.push(Row::Field {
        zh: "授权码",
        en: "AUTH NO",
        value: t.auth_code.clone().unwrap_or_default(),
    });
    rows.push(Row::Field {
        zh: "日期时间",
        en: "DATE/TIME",
        value: date_time(profile, t.at),
    });
    rows.push(Row::Separator);
    if let Some(s) = t.surcharge {
        rows.push(Row::Field {
            zh: "附加费",
            en: "SURCHARGE",
            value: money(s),
        });
    }
    rows.push(Row::Field {
        zh: "金额",
        en: "AMOUNT",
        value: money(t.amount),
    });
    if copy == Copy::Merchant {
        if let Some(fee) = t.fee {
            let label = if t.kind == TxnType::Refund {
                ("退还手续费", "FEE RETURNED")
            } else {
                ("手续费", "FEE")
            };
            rows.push(Row::Field {
                zh: label.0,
                en: label.1,
                value: money(fee),
            });
        }
        if let Some(net) = t.net {
            rows.push(Row::Field {
                zh: "结算金额",
                en: "NET",
                value: money(net),
            });
        }
    }
    if let Some(o) = original {
        rows.push(Row::Field {
            zh: "原凭证号",
            en: "ORIG VOUCHER NO",
            value: format!("{:06}", o.stan),
        });
        rows.push(Row::Field {
            zh: "原参考号",
            en: "ORIG REF NO",
            value: o.rrn.clone().unwrap_or_default(),
        });
        rows.push(Row::Field {
            zh: "原交易日期",
            en: "ORIG DATE",
            value: o.at.to_local(profile.time_zone).format("%m/%d").to_string(),
        });
    } else if let Some(r) = &t.original_ref {
        if let Some(s) = r.stan {
            rows.push(Row::Field {
                zh: "原凭证号",
                en: "ORIG VOUCHER NO",
                value: format!("{s:06}"),
            });
        }
        if let Some(rrn) = &r.rrn {
            rows.push(Row::Field {
                zh: "原参考号",
                en: "ORIG REF NO",
                value: rrn.clone(),
            });
        }
        if let Some(d) = &r.date {
            let shown = if d.len() == 4 {
                format!("{}/{}", &d[..2], &d[2..])
            } else {
                d.clone()
            };
            rows.push(Row::Field {
                zh: "原交易日期",
                en: "ORIG DATE",
                value: shown,
            });
        }
        if let Some(a) = &r.auth_code {
            rows.push(Row::Field {
                zh: "原授权码",
                en: "ORIG AUTH NO",
                value: a.clone(),
            });
        }
    }
    rows.push(Row::Separator);
    if copy == Copy::Merchant {
        rows.push(Row::Signature);
    }
    rows.push(match copy {
        Copy::Merchant => Row::Note {
            zh: "商户存根 MERCHANT COPY".into(),
            en: "MERCHANT COPY".into(),
        },
        Copy::Customer => Row::Note {
            zh: "持卡人存根 CUSTOMER COPY".into(),
            en: "CUSTOMER COPY".into(),
        },
    });
    Slip { rows }
}

/// A refusal or decline slip: what was attempted and the same line the display showed.
pub fn refusal(
    profile: &TerminalProfile,
    kind: TxnType,
    r: &Refusal,
    pan_masked: Option<&str>,
    amount: Option<Money>,
    at: Instant,
) -> Slip {
    let (kzh, ken) = kind_label(kind);
    let mut rows = vec![Row::Title {
        zh: format!("{kzh} {ken}"),
        en: ken.to_string(),
    }];
    header(profile, &mut rows);
    rows.push(Row::Separator);
    if let Some(p) = pan_masked {
        rows.push(Row::Field {
            zh: "卡号",
            en: "CARD NO",
            value: p.to_string(),
        });
    }
    if let Some(a) = amount {
        rows.push(Row::Field {
            zh: "金额",
            en: "AMOUNT",
            value: money(a),
        });
    }
    rows.push(Row::Field {
        zh: "日期时间",
        en: "DATE/TIME",
        value: date_time(profile, at),
    });
    rows.push(Row::Separator);
    rows.push(Row::Title {
        zh: r.text(Language::Zh),
        en: r.text(Language::En),
    });
    rows.push(Row::Note {
        zh: format!("{} 交易未完成", r.rule()),
        en: format!("{} NOT COMPLETED", r.rule()),
    });
    Slip { rows }
}

/// Totals of a settled batch, with the acquirer's fees.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettlementFigures {
    pub batch: u32,
    pub sale_count: u32,
    pub sale_total: Option<Money>,
    pub refund_count: u32,
    pub refund_total: Option<Money>,
    pub void_count: u32,
    pub fees: Option<Money>,
    pub fees_returned: Option<Money>,
    /// Signed, as text: sales − refunds − fees + returned fees.
    pub net: String,
    pub balanced: bool,
    pub uploaded: Option<u32>,
}

pub fn settlement(profile: &TerminalProfile, f: &SettlementFigures, at: Instant) -> Slip {
    let mut rows = vec![Row::Title {
        zh: "结算单 SETTLEMENT".into(),
        en: "SETTLEMENT".into(),
    }];
    header(profile, &mut rows);
    rows.push(Row::Field {
        zh: "批次号",
        en: "BATCH NO",
        value: format!("{:06}", f.batch),
    });
    rows.push(Row::Field {
        zh: "日期时间",
        en: "DATE/TIME",
        value: date_time(profile, at),
    });
    rows.push(Row::Separator);
    let m = |x: Option<Money>| x.map(money).unwrap_or_else(|| "0".into());
    rows.push(Row::Field {
        zh: "消费笔数",
        en: "SALES",
        value: f.sale_count.to_string(),
    });
    rows.push(Row::Field {
        zh: "消费金额",
        en: "SALES TOTAL",
        value: m(f.sale_total),
    });
    rows.push(Row::Field {
        zh: "退货笔数",
        en: "REFUNDS",
        value: f.refund_count.to_string(),
    });
    rows.push(Row::Field {
        zh: "退货金额",
        en: "REFUNDS TOTAL",
        value: m(f.refund_total),
    });
    rows.push(Row::Field {
        zh: "撤销笔数",
        en: "VOIDS",
        value: f.void_count.to_string(),
    });
    rows.push(Row::Field {
        zh: "手续费",
        en: "FEES",
        value: m(f.fees),
    });
    rows.push(Row::Field {
        zh: "退还手续费",
        en: "FEES RETURNED",
        value: m(f.fees_returned),
    });
    rows.push(Row::Field {
        zh: "结算金额",
        en: "NET",
        value: format!("{} {}", profile.currency.alpha(), f.net),
    });
    rows.push(Row::Separator);
    rows.push(Row::Note {
        zh: if f.balanced {
            "对账平 BALANCED".into()
        } else {
            "对账不平 UNBALANCED".into()
        },
        en: if f.balanced {
            "BALANCED".into()
        } else {
            "UNBALANCED".into()
        },
    });
    if let Some(n) = f.uploaded {
        rows.push(Row::Note {
            zh: format!("批上送 {n} 笔 UPLOADED {n}"),
            en: format!("UPLOADED {n}"),
        });
    }
    Slip { rows }
}

/// A one-line note slip (sign-on result, reversal notices).
pub fn notice(profile: &TerminalProfile, zh: &str, en: &str, at: Instant) -> Slip {
    let mut rows = vec![Row::Title {
        zh: zh.into(),
        en: en.into(),
    }];
    rows.push(Row::Field {
        zh: "终端编号",
        en: "TERMINAL ID",
        value: profile.terminal_id.clone(),
    });
    rows.push(Row::Field {
        zh: "日期时间",
        en: "DATE/TIME",
        value: date_time(profile, at),
    });
    Slip { rows }
}

impl Slip {
    /// ESC/POS for the terminal's own printer.
    pub fn to_escpos(&self, profile: &TerminalProfile) -> Vec<u8> {
        let zh = profile.language == Language::Zh;
        let mut b = ReceiptBuilder::new(profile.printer.width).init();
        for row in &self.rows {
            b = match row {
                Row::Title { zh: z, en } => b
                    .align(Align::Center)
                    .size(title_width(zh, z, profile.printer.width), 2)
                    .bold(true)
                    .line(if zh { z } else { en })
                    .bold(false)
                    .size(1, 1)
                    .align(Align::Left),
                Row::Field { zh: z, en, value } => {
                    let label = if zh {
                        format!("{z}({en})")
                    } else {
                        format!("{en}:")
                    };
                    if value.is_empty() {
                        b.line(&label)
                    } else {
                        b.line_lr(&label, value)
                    }
                }
                Row::Note { zh: z, en } => b
                    .align(Align::Center)
                    .line(if zh { z } else { en })
                    .align(Align::Left),
                Row::Separator => b.separator(),
                Row::Signature => {
                    let label = if zh {
                        "持卡人签名(CARDHOLDER SIGNATURE)"
                    } else {
                        "CARDHOLDER SIGNATURE"
                    };
                    b.line(label).feed(2).separator_with('_')
                }
            };
        }
        b.feed(3).cut().build()
    }

    /// English text lines for an ECR that prints, at most `width` characters, CP437-safe.
    pub fn to_ecr_lines(&self, width: usize) -> Vec<String> {
        let mut out = Vec::new();
        for row in &self.rows {
            match row {
                // A merchant name in Chinese has no English form: the ECR copy leaves it out.
                Row::Title { en, .. } | Row::Note { en, .. } if !en.is_ascii() => {}
                Row::Title { en, .. } | Row::Note { en, .. } => out.push(center(en, width)),
                Row::Field { en, value, .. } => {
                    let label = format!("{en}:");
                    let value = &english_part(value);
                    if value.is_empty() {
                        out.push(label);
                    } else if label.len() + 1 + value.chars().count() <= width {
                        let pad = width - label.len() - value.chars().count();
                        out.push(format!("{label}{}{value}", " ".repeat(pad)));
                    } else {
                        out.push(label);
                        out.push(format!("{value:>width$}"));
                    }
                }
                Row::Separator => out.push("-".repeat(width)),
                Row::Signature => {
                    out.push("CARDHOLDER SIGNATURE".into());
                    out.push(String::new());
                    out.push("_".repeat(width));
                }
            }
        }
        // The ECR's code page is CP437: anything else becomes '?'.
        out.into_iter()
            .map(|l| {
                l.chars()
                    .map(|c| if c.is_ascii() { c } else { '?' })
                    .collect()
            })
            .collect()
    }
}

/// Width factor of a `zh` title: double (CJK is sized with GS !) when the title fits the paper
/// at twice its columns, else single, so a title never breaks mid-word.
fn title_width(zh: bool, title: &str, paper: usize) -> u8 {
    if zh && protocol::escpos::text_columns(title) * 2 <= paper {
        2
    } else {
        1
    }
}

/// The English words of a value a `zh` profile writes bilingually (`插卡 CHIP` → `CHIP`): the
/// ECR copy is English (R-RECEIPT), so the Chinese half goes rather than printing as `??`.
fn english_part(value: &str) -> String {
    if value.is_ascii() {
        return value.to_string();
    }
    value
        .split(' ')
        .filter(|w| w.is_ascii())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}

fn center(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        return s.to_string();
    }
    format!("{}{s}", " ".repeat((width - n) / 2))
}

/// Is `outcome` one a receipt is printed for.
pub fn printable(o: &Outcome) -> bool {
    matches!(o, Outcome::Approved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zh_title_is_double_width_only_when_it_fits() {
        // 退货 REFUND: 11 columns, 22 doubled, fits 32; 结算单 SETTLEMENT: 17, 34 does not.
        assert_eq!(title_width(true, "退货 REFUND", 32), 2);
        assert_eq!(title_width(true, "结算单 SETTLEMENT", 32), 1);
        assert_eq!(title_width(false, "REFUND", 42), 1);
    }

    #[test]
    fn ecr_copy_of_a_bilingual_value_is_english() {
        // R-RECEIPT: a zh profile sends the ECR an English copy (CP437), never `??`.
        let slip = Slip {
            rows: vec![
                Row::Field {
                    zh: "输入方式",
                    en: "ENTRY MODE",
                    value: "插卡 CHIP".into(),
                },
                Row::Field {
                    zh: "交易类型",
                    en: "TRANS TYPE",
                    value: "退货 REFUND".into(),
                },
            ],
        };
        let lines = slip.to_ecr_lines(32);
        assert_eq!(lines[0], format!("ENTRY MODE:{}CHIP", " ".repeat(17)));
        assert!(lines[1].ends_with(" REFUND") && !lines[1].contains('?'));
    }
}
