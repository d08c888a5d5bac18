//! Settlement (R-SETTLE): the host compares a terminal's 0500 totals with its own, answers
//! balanced or not, takes the batch upload when not, closes the batch and writes a
//! [`SettlementReport`] that tests and the harness read.
//!
//! Comparison: the host's sales (debits) and refunds (credits) of the open batch, counts and
//! amounts in minor units, against the sum of the terminal's domestic and foreign groups of
//! field 48 (the host does not split cards by origin). Voided and reversed sales and declined
//! requests count nowhere. Equal → reconciliation code 1 in both groups of the 0510's field 48
//! and the batch is closed at once; different → 2, the batch stays open until the upload ends
//! (0320 with 60.3 = 202, or for iso87 an 0320 without field 4).

use protocol::iso8583::subfield::{SettlementTotals, Totals};
use protocol::money::{Currency, Money};
use protocol::time::Instant;
use rust_decimal::Decimal;

use crate::ledger::BatchTotals;

/// Count and amount of one transaction type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeTotals {
    pub count: u32,
    pub total: Money,
}

/// One settlement of one terminal's batch, as the host saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementReport {
    pub terminal_id: String,
    pub merchant_id: String,
    pub batch: u32,
    /// When the 0500 arrived.
    pub at: Instant,
    pub currency: Currency,
    /// Approved sales (debits), from the host's ledger.
    pub sales: TypeTotals,
    /// Approved refunds (credits).
    pub refunds: TypeTotals,
    /// Approved voids (their sales count nowhere).
    pub voids: u32,
    /// Fees on the sales.
    pub fees: Money,
    /// Fees given back by the refunds.
    pub fees_returned: Money,
    /// sales − refunds − fees + returned fees; negative when the merchant owes.
    pub net: Decimal,
    /// The terminal's totals agreed with the host's.
    pub balanced: bool,
    /// What the terminal sent in field 48.
    pub terminal_totals: SettlementTotals,
    /// The batch is closed (balanced, or the upload ended).
    pub closed: bool,
    /// 0320 records received.
    pub uploaded: u32,
    /// STANs of uploaded records the host has no record of.
    pub upload_unknown: Vec<u32>,
}

impl SettlementReport {
    pub(crate) fn new(
        terminal_id: &str,
        merchant_id: &str,
        batch: u32,
        at: Instant,
        currency: Currency,
        host: &BatchTotals,
        terminal: SettlementTotals,
    ) -> SettlementReport {
        let balanced = agrees(host, &terminal);
        let net = host.sale_total.value() - host.refund_total.value() - host.fees.value()
            + host.fees_returned.value();
        SettlementReport {
            terminal_id: terminal_id.to_string(),
            merchant_id: merchant_id.to_string(),
            batch,
            at,
            currency,
            sales: TypeTotals {
                count: host.sale_count,
                total: host.sale_total,
            },
            refunds: TypeTotals {
                count: host.refund_count,
                total: host.refund_total,
            },
            voids: host.void_count,
            fees: host.fees,
            fees_returned: host.fees_returned,
            net,
            balanced,
            terminal_totals: terminal,
            closed: balanced,
            uploaded: 0,
            upload_unknown: Vec::new(),
        }
    }
}

/// Do the terminal's totals (both groups summed) equal the host's?
pub fn agrees(host: &BatchTotals, terminal: &SettlementTotals) -> bool {
    let (d, f) = (&terminal.domestic, &terminal.foreign);
    let sum = |a: u64, b: u64| a.checked_add(b);
    sum(d.debit_amount, f.debit_amount) == Some(host.sale_total.minor())
        && d.debit_count.checked_add(f.debit_count) == Some(host.sale_count)
        && sum(d.credit_amount, f.credit_amount) == Some(host.refund_total.minor())
        && d.credit_count.checked_add(f.credit_count) == Some(host.refund_count)
}

/// The 0510's field 48: the terminal's totals with the host's reconciliation code in both
/// groups.
pub fn answer_totals(terminal: &SettlementTotals, code: u8) -> SettlementTotals {
    SettlementTotals {
        domestic: Totals {
            reconciliation: code,
            ..terminal.domestic
        },
        foreign: Totals {
            reconciliation: code,
            ..terminal.foreign
        },
    }
}

/// A batch upload in progress after an unbalanced 0510.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Upload {
    pub batch: u32,
}
