//! ZVT code tables: result codes (BMP 27, `06 1E <code>`, `84 <code>`; SPEC-C 10),
//! intermediate status codes (`04 FF <status>`; SPEC-C Table 17) and terminal status codes
//! (the status byte of the Status-Enquiry completion; SPEC-C 11).
//!
//! Each is a newtype over the byte so values outside the tables survive a round trip;
//! `text()` gives the English meaning where the table has one.
//!
//! ```
//! use protocol::zvt::codes::ResultCode;
//! assert_eq!(ResultCode(0x6C).text(), Some("abort via timeout or abort key"));
//! assert_eq!(ResultCode::PRINTER_NOT_READY, ResultCode(0xCC));
//! assert!(ResultCode(0x05).is_host_code());
//! assert_eq!(ResultCode(0x05).to_string(), "05 host code 5");
//! ```

use std::fmt;

/// A result/error code (section 4 of reference/zvt.md).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ResultCode(pub u8);

impl ResultCode {
    pub const SUCCESS: ResultCode = ResultCode(0x00);
    pub const CARD_NOT_READABLE: ResultCode = ResultCode(0x64);
    pub const CARD_DATA_NOT_PRESENT: ResultCode = ResultCode(0x65);
    pub const PROCESSING_ERROR: ResultCode = ResultCode(0x66);
    pub const FUNCTION_NOT_PERMITTED_EC: ResultCode = ResultCode(0x67);
    pub const FUNCTION_NOT_PERMITTED_CREDIT: ResultCode = ResultCode(0x68);
    pub const TURNOVER_FILE_FULL: ResultCode = ResultCode(0x6A);
    pub const FUNCTION_DEACTIVATED: ResultCode = ResultCode(0x6B);
    pub const ABORTED: ResultCode = ResultCode(0x6C);
    pub const CARD_BLOCKED: ResultCode = ResultCode(0x6E);
    pub const WRONG_CURRENCY: ResultCode = ResultCode(0x6F);
    pub const CREDIT_NOT_SUFFICIENT: ResultCode = ResultCode(0x71);
    pub const CHIP_ERROR: ResultCode = ResultCode(0x72);
    pub const CARD_DATA_INCORRECT: ResultCode = ResultCode(0x73);
    pub const END_OF_DAY_NOT_POSSIBLE: ResultCode = ResultCode(0x77);
    pub const CARD_EXPIRED: ResultCode = ResultCode(0x78);
    pub const CARD_NOT_YET_VALID: ResultCode = ResultCode(0x79);
    pub const CARD_UNKNOWN: ResultCode = ResultCode(0x7A);
    pub const COMMUNICATION_ERROR: ResultCode = ResultCode(0x7D);
    pub const FUNCTION_NOT_POSSIBLE: ResultCode = ResultCode(0x83);
    pub const KEY_MISSING: ResultCode = ResultCode(0x85);
    pub const PROTOCOL_ERROR: ResultCode = ResultCode(0x9A);
    pub const DIAL_UP_ERROR: ResultCode = ResultCode(0x9B);
    pub const PLEASE_WAIT: ResultCode = ResultCode(0x9C);
    pub const RECEIVER_NOT_READY: ResultCode = ResultCode(0xA0);
    pub const REMOTE_NO_RESPONSE: ResultCode = ResultCode(0xA1);
    pub const NO_CONNECTION: ResultCode = ResultCode(0xA3);
    pub const ALREADY_REVERSED: ResultCode = ResultCode(0xB4);
    pub const REVERSAL_NOT_POSSIBLE: ResultCode = ResultCode(0xB5);
    pub const PRE_AUTH_ERROR: ResultCode = ResultCode(0xB8);
    pub const DIAGNOSIS_REQUIRED: ResultCode = ResultCode(0xC2);
    pub const MAX_AMOUNT_EXCEEDED: ResultCode = ResultCode(0xC3);
    pub const PAYMENT_METHOD_NOT_SUPPORTED: ResultCode = ResultCode(0xC5);
    pub const CURRENCY_NOT_APPLICABLE: ResultCode = ResultCode(0xC6);
    pub const PRINTER_NOT_READY: ResultCode = ResultCode(0xCC);
    pub const SYSTEM_ERROR: ResultCode = ResultCode(0xFF);

    /// `01..=63`: a network operator's (host's) code, decimal 1–99 sent in binary.
    pub fn is_host_code(self) -> bool {
        (0x01..=0x63).contains(&self.0)
    }

    /// The English text of SPEC-C 10; host codes give `None` (their meaning is the host's).
    pub fn text(self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "no error",
            0x64 => "card not readable (LRC/parity error)",
            0x65 => "card data not present",
            0x66 => "processing error (also for problems with card reader mechanism)",
            0x67 => "function not permitted for ec- and Maestro-cards",
            0x68 => "function not permitted for credit- and tank-cards",
            0x6A => "turnover file full",
            0x6B => "function deactivated (PT not registered)",
            0x6C => "abort via timeout or abort key",
            0x6E => "card in blocked list",
            0x6F => "wrong currency",
            0x71 => "credit not sufficient (chip-card)",
            0x72 => "chip error",
            0x73 => "card data incorrect",
            0x77 => "end-of-day batch not possible",
            0x78 => "card expired",
            0x79 => "card not yet valid",
            0x7A => "card unknown",
            0x7B | 0x7C | 0x7E => "fallback to magnetic stripe not possible",
            0x7D => "communication error (communication module not installed or faulty)",
            0x83 => "function not possible",
            0x85 => "key missing",
            0x89 | 0xED => "PIN-pad defective",
            0x9A => "ZVT protocol error (parse error, mandatory element missing)",
            0x9B => "error from dial-up/communication fault",
            0x9C => "please wait",
            0xA0 => "receiver not ready",
            0xA1 => "remote station does not respond",
            0xA3 => "no connection",
            0xA4 => "submission of Geldkarte not possible",
            0xA5 => "function not allowed due to PCI-DSS/P2PE rules",
            0xB1 => "memory full",
            0xB2 => "merchant-journal full",
            0xB4 => "already reversed",
            0xB5 => "reversal not possible",
            0xB7 => "pre-authorisation incorrect (amount too high) or amount wrong",
            0xB8 => "error pre-authorisation",
            0xBF => "voltage supply to low (external power supply)",
            0xC0 => "card locking mechanism defective",
            0xC1 => "merchant-card locked",
            0xC2 => "diagnosis required",
            0xC3 => "maximum amount exceeded",
            0xC4 => "card-profile invalid",
            0xC5 => "payment method not supported",
            0xC6 => "currency not applicable",
            0xC8 => "amount too small",
            0xC9 => "max. transaction-amount too small",
            0xCB => "function only allowed in EURO",
            0xCC => "printer not ready",
            0xCD => "cashback not possible",
            0xD2 => "function not permitted for service-cards",
            0xDC => "card inserted",
            0xDD => "error during card-eject",
            0xDE => "error during card-insertion",
            0xE0 => "remote-maintenance activated",
            0xE2 => "card-reader does not answer / card-reader defective",
            0xE3 => "shutter closed",
            0xE4 => "terminal activation required",
            0xE7 => "min. one goods-group not found",
            0xE8 => "no goods-groups-table loaded",
            0xE9 => "restriction-code not permitted",
            0xEA => "card-code not permitted",
            0xEB => "function not executable (PIN-algorithm unknown)",
            0xEC => "PIN-processing not possible",
            0xF0 => "open end-of-day batch present",
            0xF1 => "ec-cash/Maestro offline error",
            0xF5 => "OPT-error",
            0xF6 => "OPT-data not available",
            0xFA => "error transmitting offline-transactions",
            0xFB => "turnover data-set defective",
            0xFC => "necessary device not present or defective",
            0xFD => "baud-rate not supported",
            0xFE => "register unknown",
            0xFF => "system error (see TLV 1F16 extended error code, 1F17 extended error text)",
            _ => return None,
        })
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(t) => write!(f, "{:02X} {t}", self.0),
            None if self.is_host_code() => write!(f, "{:02X} host code {}", self.0, self.0),
            None => write!(f, "{:02X} unknown result code", self.0),
        }
    }
}

/// An intermediate status code of `04 FF` (SPEC-C Table 17).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct IntermediateStatus(pub u8);

impl IntermediateStatus {
    pub const WAITING_FOR_AMOUNT_CONFIRMATION: Self = Self(0x00);
    pub const WATCH_PIN_PAD: Self = Self(0x01);
    pub const WATCH_PIN_PAD_2: Self = Self(0x02);
    pub const NOT_ACCEPTED: Self = Self(0x03);
    pub const WAITING_FOR_HOST: Self = Self(0x04);
    pub const SENDING_AUTO_REVERSAL: Self = Self(0x05);
    pub const SENDING_POST_BOOKINGS: Self = Self(0x06);
    pub const INSERT_CARD: Self = Self(0x0A);
    pub const REMOVE_CARD: Self = Self(0x0B);
    pub const PLEASE_WAIT: Self = Self(0x0E);
    pub const INCORRECT_PIN: Self = Self(0x15);
    pub const PLEASE_WAIT_2: Self = Self(0x17);
    pub const DECLINED: Self = Self(0x1D);
    pub const NO_CODE: Self = Self(0xFF);

    /// English text; `41..=5D` are the texts of `01..=1D` plus "Please remove card!".
    pub fn text(self) -> Option<&'static str> {
        let base = match self.0 {
            0x41..=0x5D => self.0 - 0x40,
            v => v,
        };
        Some(match base {
            0x00 => "PT is waiting for amount-confirmation",
            0x01 | 0x02 => "Please watch PIN-pad",
            0x03 => "Not accepted",
            0x04 => "PT is waiting for response from FEP",
            0x05 => "PT is sending auto-reversal",
            0x06 => "PT is sending post-bookings",
            0x07 => "Card not admitted",
            0x08 => "Card unknown / undefined",
            0x09 => "Expired card",
            0x0A => "Insert card",
            0x0B => "Please remove card!",
            0x0C => "Card not readable",
            0x0D => "Processing error",
            0x0E => "Please wait...",
            0x0F => "PT is commencing an automatic end-of-day batch",
            0x10 => "Invalid card",
            0x11 => "Balance display",
            0x12 => "System malfunction",
            0x13 => "Payment not possible",
            0x14 => "Credit not sufficient",
            0x15 => "Incorrect PIN",
            0x16 => "Limit not sufficient",
            0x17 => "Please wait...",
            0x18 => "PIN try limit exceeded",
            0x19 => "Card-data incorrect",
            0x1A => "Service-mode",
            0x1B => "Approved. Please fill-up",
            0x1C => "Approved. Please take goods",
            0x1D => "Declined",
            0x26 => "PT is waiting for input of the mobile-number",
            0x27 => "PT is waiting for repeat of mobile number",
            0x28 => "Currency selection, please wait...",
            0x29 => "Language selection, please wait...",
            0x2A => "For loading please insert card",
            0x2B => "Emergency transaction, please wait",
            0x2C => "Application selection, please wait",
            0x5E => "Contactless card access finished",
            0x66 => "Mobile number, please remove card",
            0x67 => "Repeat mobile number, please remove card",
            0x68 => "PT has detected customer card insertion",
            0x69 => "Please select DCC",
            0x6A => "PIN digit entered",
            0x6B => "Digit entered, confirmation possible",
            0x6C => "Correction key pressed",
            0x6D => "PIN entered",
            0xC7 => "PT is waiting for input of the mileage",
            0xC8 => "PT is waiting for cashier",
            0xC9 => "PT is commencing an automatic diagnosis",
            0xCA => "PT is commencing an automatic initialisation",
            0xCB => "Merchant-journal full",
            0xCC => "Debit advice not possible, PIN required",
            0xD2 => "Connecting dial-up",
            0xD3 => "Dial-up connection made",
            0xE0 => "PT is waiting for application-selection",
            0xE1 => "PT is waiting for language-selection",
            0xE2 => "PT requests to use the cleaning card",
            0xF1 => "Offline",
            0xF2 => "Online",
            0xF3 => "Offline transaction",
            0xFF => "no appropriate ZVT status code matches (see TLV tags 24 and 07)",
            _ => return None,
        })
    }

    /// `41..=5D`: the message of `value - 0x40` with "Please remove card!".
    pub fn asks_to_remove_card(self) -> bool {
        (0x41..=0x5D).contains(&self.0) || matches!(self.0, 0x0B | 0x66 | 0x67)
    }
}

impl fmt::Display for IntermediateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.text(), (0x41..=0x5D).contains(&self.0)) {
            (Some(t), true) => write!(f, "{:02X} {t} / Please remove card!", self.0),
            (Some(t), false) => write!(f, "{:02X} {t}", self.0),
            (None, _) => write!(f, "{:02X} unknown intermediate status", self.0),
        }
    }
}

/// The terminal status byte of the Status-Enquiry (05 01) completion (SPEC-C 11).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TerminalStatus(pub u8);

impl TerminalStatus {
    pub const READY: Self = Self(0x00);
    pub const INITIALISATION_REQUIRED: Self = Self(0x51);
    pub const DATE_TIME_INCORRECT: Self = Self(0x62);
    pub const PLEASE_WAIT: Self = Self(0x9C);
    pub const DIAGNOSIS_REQUIRED: Self = Self(0xC2);
    pub const PRINTER_NOT_READY: Self = Self(0xCC);
    pub const OUT_OF_ORDER: Self = Self(0xDF);
    pub const RECONCILIATION_REQUIRED: Self = Self(0xF0);

    pub fn text(self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "PT ready",
            0x51 => "initialisation required",
            0x62 => "date/time incorrect",
            0x9C => "please wait (e.g. software-update still running)",
            0x9D => "partial issue of goods",
            0xB1 => "memory full",
            0xB2 => "merchant-journal full",
            0xBF => "voltage supply too low",
            0xC0 => "card locking mechanism defective",
            0xC1 => "merchant card locked",
            0xC2 => "diagnosis required",
            0xC4 => "card-profile invalid",
            0xCC => "printer not ready",
            0xDC => "card inserted",
            0xDF => "out-of-order",
            0xE0 => "remote-maintenance activated",
            0xE1 => "card not completely removed",
            0xE2 => "card-reader does not answer / card-reader defective",
            0xE3 => "shutter closed",
            0xE4 => "terminal activation required",
            0xF0 => "reconciliation required",
            0xF6 => "OPT-data not available",
            _ => return None,
        })
    }
}

impl fmt::Display for TerminalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(t) => write!(f, "{:02X} {t}", self.0),
            None => write!(f, "{:02X} unknown terminal status", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_from_the_reference() {
        // reference/zvt.md §4.
        assert_eq!(ResultCode(0xB4).text(), Some("already reversed"));
        assert_eq!(ResultCode(0x9A).to_string().get(..2), Some("9A"));
        assert_eq!(ResultCode(0x37).text(), None);
        assert!(ResultCode(0x37).is_host_code());
        assert!(!ResultCode(0x64).is_host_code());
        assert_eq!(ResultCode(0x42).to_string(), "42 host code 66");
        assert_eq!(ResultCode(0x70).to_string(), "70 unknown result code");
        // §5: 0x4A is "insert card" plus "please remove card".
        assert_eq!(IntermediateStatus(0x4A).text(), Some("Insert card"));
        assert!(IntermediateStatus(0x4A).asks_to_remove_card());
        assert_eq!(IntermediateStatus(0x17).text(), Some("Please wait..."));
        assert_eq!(IntermediateStatus(0x30).text(), None);
        // §4 terminal status table.
        assert_eq!(TerminalStatus(0x51).text(), Some("initialisation required"));
        assert_eq!(
            TerminalStatus(0x01).to_string(),
            "01 unknown terminal status"
        );
    }
}
