//! Refusals and declines: DESIGN.md §2's table, in one place. The display text, the ZVT result
//! code and the receipt line of every refusal come from here, so the display, the ECR and the
//! printer always agree.

use protocol::fixture::terminal::Language;

/// A reason the terminal refuses or fails a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    Voided,
    NotSale,
    Card,
    Window,
    Zero,
    Exceeds,
    Currency,
    Supervisor,
    SignOn,
    ReversalPending,
    Duplicate,
    /// An ECR reference (TLV 1F1F) already used within the duplicate window, for a request
    /// that is not the same one (amount, currency, original, card): neither a duplicate to
    /// replay nor a new request to send.
    ReferenceConflict,
    /// Field 39 from the host: numeric (`05`) or not (`A0`).
    Host(String),
    /// Nothing could be sent (connection refused).
    CommsFailed,
    /// Sent, but the outcome is unknown (timeout, broken link, bad reply): reversed or queued.
    NoReply,
    /// The cardholder or cashier cancelled.
    Cancelled,
    /// Nobody answered a prompt within the profile's `prompts` timeout.
    PromptTimeout(Prompt),
    /// The card could not be read or is not acceptable (expired, bad track).
    CardError(CardProblem),
}

/// A prompt that gives up when nobody answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Swipe / insert / tap.
    Card,
    /// "Possible duplicate – continue?"
    Confirm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardProblem {
    Unreadable,
    Expired,
    UseChip,
}

impl Refusal {
    /// The rule ID of DESIGN.md §2.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::NotFound => "R-NOTFOUND",
            Refusal::Voided => "R-VOIDED",
            Refusal::NotSale => "R-NOTSALE",
            Refusal::Card => "R-CARD",
            Refusal::Window => "R-WINDOW",
            Refusal::Zero => "R-ZERO",
            Refusal::Exceeds => "R-EXCEEDS",
            Refusal::Currency => "R-CURRENCY",
            Refusal::Supervisor => "R-SUP",
            Refusal::SignOn => "R-SIGNON",
            Refusal::ReversalPending => "R-REVPENDING",
            Refusal::Duplicate | Refusal::ReferenceConflict => "R-DUP",
            Refusal::Host(_) => "R-HOST",
            Refusal::CommsFailed | Refusal::NoReply => "R-REV",
            Refusal::Cancelled => "CANCEL",
            Refusal::PromptTimeout(Prompt::Card) => "R-CARD-READ",
            Refusal::PromptTimeout(Prompt::Confirm) => "R-DUP",
            Refusal::CardError(_) => "R-CARD-READ",
        }
    }

    /// ZVT result code (BMP 27 / 06 1E). Host codes go as binary; non-numeric host codes as FF
    /// with TLV 1F16/1F17 (see [`Refusal::extended_error`]).
    pub fn zvt_code(&self) -> u8 {
        match self {
            Refusal::NotFound => 0x19,
            Refusal::Voided | Refusal::NotSale | Refusal::Window => 0x0C,
            Refusal::Card => 0x0E,
            Refusal::Zero => 0x0D,
            Refusal::Exceeds => 0x40,
            Refusal::Currency => 0x6F,
            Refusal::Supervisor => 0x6C,
            Refusal::SignOn => 0x6B,
            Refusal::ReversalPending => 0x9B,
            Refusal::Duplicate => 0x5E,
            // UNVERIFIED: ZVT has no code for a reused transaction reference. 9A "ZVT protocol
            // error" says the ECR's request is at fault, which it is; 5E (94, duplicate) would
            // tell the till its request was recognised and answered, which it was not.
            Refusal::ReferenceConflict => 0x9A,
            Refusal::Host(code) => match code.parse::<u8>() {
                Ok(n) if code.len() == 2 => n,
                _ => 0xFF,
            },
            // Chosen from the ZVT table (reference/zvt.md §4): A3 "no connection" when nothing
            // could be sent, A1 "remote station does not respond" when the outcome is unknown.
            Refusal::CommsFailed => 0xA3,
            Refusal::NoReply => 0xA1,
            // 6C is "abort via timeout or abort key" (reference/zvt.md §4): both end here.
            Refusal::Cancelled | Refusal::PromptTimeout(_) => 0x6C,
            Refusal::CardError(CardProblem::Unreadable) => 0x64,
            Refusal::CardError(CardProblem::Expired) => 0x78,
            Refusal::CardError(CardProblem::UseChip) => 0x7B,
        }
    }

    /// TLV 1F16 (extended code) and 1F17 (text) for codes that do not fit BMP 27.
    pub fn extended_error(&self) -> Option<(Vec<u8>, String)> {
        match self {
            Refusal::Host(code) if self.zvt_code() == 0xFF => {
                Some((code.as_bytes().to_vec(), format!("DECLINED {code}")))
            }
            _ => None,
        }
    }

    pub fn text(&self, lang: Language) -> String {
        let (zh, en): (&str, &str) = match self {
            Refusal::NotFound => ("原交易不存在", "ORIGINAL NOT FOUND"),
            Refusal::Voided => ("原交易已撤销", "ORIGINAL VOIDED"),
            Refusal::NotSale => ("原交易类型不符", "NOT REFUNDABLE"),
            Refusal::Card => ("卡号不符", "CARD MISMATCH"),
            Refusal::Window => ("超过退货期限", "REFUND PERIOD OVER"),
            Refusal::Zero => ("金额无效", "INVALID AMOUNT"),
            Refusal::Exceeds => ("超过可退金额", "EXCEEDS REFUNDABLE"),
            Refusal::Currency => ("币种不符", "CURRENCY MISMATCH"),
            Refusal::Supervisor => ("主管密码错误", "SUPERVISOR PIN WRONG"),
            Refusal::SignOn => ("请先签到", "PLEASE SIGN ON"),
            Refusal::ReversalPending => ("冲正未完成", "REVERSAL PENDING"),
            Refusal::Duplicate => ("重复交易", "DUPLICATE"),
            Refusal::ReferenceConflict => ("参考号冲突", "REFERENCE CONFLICT"),
            Refusal::Host(code) => {
                return match lang {
                    Language::Zh => format!("交易失败 {code}"),
                    Language::En => format!("DECLINED {code}"),
                };
            }
            Refusal::CommsFailed => ("通讯失败", "COMMS FAILED"),
            Refusal::NoReply => ("交易超时", "NO REPLY"),
            Refusal::Cancelled => ("交易取消", "CANCELLED"),
            Refusal::PromptTimeout(Prompt::Card) => ("等待刷卡超时", "NO CARD - TIMEOUT"),
            Refusal::PromptTimeout(Prompt::Confirm) => ("确认超时", "NO ANSWER - TIMEOUT"),
            Refusal::CardError(CardProblem::Unreadable) => ("读卡失败", "CARD READ ERROR"),
            Refusal::CardError(CardProblem::Expired) => ("卡已过期", "CARD EXPIRED"),
            Refusal::CardError(CardProblem::UseChip) => ("请插卡", "PLEASE INSERT CARD"),
        };
        match lang {
            Language::Zh => zh.to_string(),
            Language::En => en.to_string(),
        }
    }

    /// Nothing was attempted: the transaction was abandoned before it could be (a cancel, a
    /// prompt nobody answered). The ECR gets 06 1E directly, no 04 0F, and no slip prints.
    pub fn is_abandoned(&self) -> bool {
        matches!(self, Refusal::Cancelled | Refusal::PromptTimeout(_))
    }

    /// English text for the ECR, whatever the terminal's language (TLV 14: CP437).
    pub fn text_en(&self) -> String {
        self.text(Language::En)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_table_codes() {
        assert_eq!(Refusal::NotFound.zvt_code(), 25);
        assert_eq!(Refusal::Exceeds.zvt_code(), 64);
        assert_eq!(Refusal::Duplicate.zvt_code(), 94);
        assert_eq!(Refusal::Host("05".into()).zvt_code(), 5);
        assert_eq!(Refusal::Host("51".into()).zvt_code(), 51);
        assert_eq!(Refusal::Host("A0".into()).zvt_code(), 0xFF);
        assert_eq!(
            Refusal::Host("A0".into()).extended_error().unwrap().0,
            b"A0"
        );
        assert_eq!(Refusal::Host("05".into()).text(Language::Zh), "交易失败 05");
        assert_eq!(Refusal::Exceeds.text(Language::Zh), "超过可退金额");
        assert_eq!(Refusal::Exceeds.text(Language::En), "EXCEEDS REFUNDABLE");
    }
}
