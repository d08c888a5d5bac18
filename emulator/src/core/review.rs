//! Acceptance and review of a refund (DESIGN.md §2 steps 2 and 3): find the original, then
//! refuse before anything is sent when a rule says so. Pure functions over the journal, so
//! every rule is tested on its own.

use protocol::card::PanHash;
use protocol::fixture::journal::TxnType;
use protocol::money::Money;
use protocol::time::{Instant, Tz, calendar_days_between};

use super::refusal::Refusal;
use crate::journal::{JournalState, OriginalRef, Outcome, PendingKind, TxnRecord};

/// Where the original was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found<'a> {
    Local(&'a TxnRecord),
    /// Not in the local journal, named by a key that only the host can resolve (RRN + date or
    /// auth code after settlement): the refund goes to the host, which decides (25 if unknown).
    HostDecides,
}

/// Looks the original up by the key the cashier or ECR gave.
///
/// - trace (STAN) + batch: the open batch only; not found is R-NOTFOUND;
/// - RRN (+ original date MMDD): any batch; not found locally goes to the host;
/// - auth code: any batch; not found locally goes to the host.
pub fn find_original<'a>(j: &'a JournalState, key: &OriginalRef) -> Result<Found<'a>, Refusal> {
    // Any record can be named; naming a refund is then refused as R-NOTSALE by review.
    let mut candidates = j.txns.iter().rev();
    if let Some(rrn) = &key.rrn {
        return match candidates.find(|t| t.rrn.as_deref() == Some(rrn.as_str())) {
            Some(t) => Ok(Found::Local(t)),
            None => Ok(Found::HostDecides),
        };
    }
    if let Some(stan) = key.stan {
        // Trace numbers start again in every batch: a trace names a sale only while its batch
        // is open (DESIGN §2, acceptance); after settlement the RRN + date does.
        let open = j.counters.batch;
        if key.batch.is_some_and(|b| b != open) {
            return Err(Refusal::NotFound);
        }
        return candidates
            .find(|t| t.stan == stan && t.batch == open && !t.settled)
            .map(Found::Local)
            .ok_or(Refusal::NotFound);
    }
    if let Some(auth) = &key.auth_code {
        return match candidates.find(|t| t.auth_code.as_deref() == Some(auth.as_str())) {
            Some(t) => Ok(Found::Local(t)),
            None => Ok(Found::HostDecides),
        };
    }
    Err(Refusal::NotFound)
}

/// What can still be refunded of `orig`: its amount, less approved refunds, less refunds whose
/// outcome is unknown or whose advice is still queued, less a non-refundable surcharge.
pub fn remaining_refundable(
    j: &JournalState,
    orig: &TxnRecord,
    surcharge_refundable: bool,
) -> Money {
    let cur = orig.amount.currency();
    let mut left = orig.amount;
    if let (Some(s), false) = (orig.surcharge, surcharge_refundable) {
        left = left.saturating_sub(s);
    }
    for r in j
        .txns
        .iter()
        .filter(|t| t.kind == TxnType::Refund && t.original_id == Some(orig.id))
    {
        let queued = j
            .pending
            .iter()
            .any(|p| p.txn_id == r.id && p.kind == PendingKind::Advice);
        let counts = matches!(r.outcome, Outcome::Approved | Outcome::Unknown) || queued;
        if counts && r.amount.currency() == cur {
            left = left.saturating_sub(r.amount);
        }
    }
    left
}

/// Review: the refusals that need the original. Order: type, state, card, window, currency,
/// amount — the first failing rule is reported.
#[allow(clippy::too_many_arguments)]
pub fn review(
    j: &JournalState,
    orig: &TxnRecord,
    amount: Money,
    card: &PanHash,
    now: Instant,
    tz: Tz,
    window_days: u32,
    surcharge_refundable: bool,
) -> Result<(), Refusal> {
    if orig.kind != TxnType::Sale
        || matches!(
            orig.outcome,
            Outcome::Declined(_) | Outcome::Refused(_) | Outcome::NotSent | Outcome::Unknown
        )
    {
        return Err(Refusal::NotSale);
    }
    if matches!(orig.outcome, Outcome::Voided | Outcome::Reversed) {
        return Err(Refusal::Voided);
    }
    if &orig.pan_hash != card {
        return Err(Refusal::Card);
    }
    if calendar_days_between(orig.at, now, tz) > window_days as i64 {
        return Err(Refusal::Window);
    }
    if amount.currency() != orig.amount.currency() {
        return Err(Refusal::Currency);
    }
    if amount.is_zero() {
        return Err(Refusal::Zero);
    }
    if amount.value() > remaining_refundable(j, orig, surcharge_refundable).value() {
        return Err(Refusal::Exceeds);
    }
    Ok(())
}

/// An approved refund within the window with the same card, original and amount: the terminal
/// asks "possible duplicate – continue?" when the request carries no ECR reference.
pub fn possible_duplicate<'a>(
    j: &'a JournalState,
    orig_id: Option<u64>,
    card: &PanHash,
    amount: Money,
    now: Instant,
    window: std::time::Duration,
) -> Option<&'a TxnRecord> {
    j.txns.iter().rev().find(|t| {
        t.kind == TxnType::Refund
            && t.outcome == Outcome::Approved
            && t.original_id == orig_id
            && &t.pan_hash == card
            && t.amount == amount
            && now.saturating_since(t.at) <= window
    })
}

/// A refund carrying the same ECR reference within the window: the first result is returned.
pub fn same_reference<'a>(
    j: &'a JournalState,
    reference: &str,
    now: Instant,
    window: std::time::Duration,
) -> Option<&'a TxnRecord> {
    uses_of(j, reference, now, window).find(|t| t.outcome != Outcome::Unknown)
}

/// The latest request under this ECR reference within the window, whatever its outcome: the
/// one a reused reference is compared with.
pub fn reference_use<'a>(
    j: &'a JournalState,
    reference: &str,
    now: Instant,
    window: std::time::Duration,
) -> Option<&'a TxnRecord> {
    uses_of(j, reference, now, window).next()
}

/// Requests under this ECR reference within the window, newest first.
fn uses_of<'a, 'r>(
    j: &'a JournalState,
    reference: &'r str,
    now: Instant,
    window: std::time::Duration,
) -> impl Iterator<Item = &'a TxnRecord> + 'r
where
    'a: 'r,
{
    j.txns.iter().rev().filter(move |t| {
        t.ecr_reference.as_deref() == Some(reference) && now.saturating_since(t.at) <= window
    })
}

/// Whether a request is the one `first` recorded: same type, amount and currency, same
/// original as named, and the same card when the card is known yet. Only then may the
/// reference replay `first`'s result; anything else reusing the reference is a conflict.
pub fn same_request(
    first: &TxnRecord,
    kind: TxnType,
    amount: Option<Money>,
    orig: &OriginalRef,
    card: Option<&PanHash>,
) -> bool {
    // A sale's record holds the amount with its surcharge; the request named the base.
    let recorded = match (first.kind, first.surcharge) {
        (TxnType::Sale, Some(s)) => first.amount.saturating_sub(s),
        _ => first.amount,
    };
    first.kind == kind
        && amount.is_none_or(|a| a == recorded)
        && first.original_ref.clone().unwrap_or_default() == *orig
        && card.is_none_or(|c| *c == first.pan_hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{EntryMode, PendingRecord};
    use protocol::card::Pan;
    use protocol::money::Currency;
    use std::time::Duration;

    fn cny(s: &str) -> Money {
        Money::parse(s, Currency::from_alpha("CNY").unwrap()).unwrap()
    }
    fn hash(p: &str) -> PanHash {
        Pan::new(p).unwrap().keyed_hash(b"k")
    }
    fn now() -> Instant {
        Instant::parse_rfc3339("2026-11-26T10:00:00+08:00").unwrap()
    }
    fn tz() -> Tz {
        "Asia/Shanghai".parse().unwrap()
    }
    fn txn(
        id: u64,
        kind: TxnType,
        outcome: Outcome,
        amount: &str,
        original: Option<u64>,
    ) -> TxnRecord {
        TxnRecord {
            id,
            kind,
            outcome,
            stan: id as u32,
            batch: 1,
            receipt_no: id as u32,
            amount: cny(amount),
            surcharge: None,
            pan_masked: "622202******7894".into(),
            pan_hash: hash("6222021234567894"),
            entry_mode: EntryMode::Swipe,
            at: now() - Duration::from_secs(3600),
            rrn: Some(format!("{id:012}")),
            auth_code: Some(format!("A{id:05}")),
            response_code: None,
            original_id: original,
            original_ref: None,
            fee: None,
            net: None,
            ecr_reference: None,
            settled: false,
            ecr_informed: true,
        }
    }

    fn journal() -> JournalState {
        let mut j = JournalState::default();
        j.txns
            .push(txn(1, TxnType::Sale, Outcome::Approved, "100.00", None));
        j.txns
            .push(txn(2, TxnType::Refund, Outcome::Approved, "30.00", Some(1)));
        j.txns
            .push(txn(3, TxnType::Refund, Outcome::Unknown, "20.00", Some(1)));
        j.txns
            .push(txn(4, TxnType::Sale, Outcome::Voided, "10.00", None));
        j.txns.push(txn(
            5,
            TxnType::Sale,
            Outcome::Declined("05".into()),
            "10.00",
            None,
        ));
        j.pending.push(PendingRecord {
            txn_id: 3,
            kind: PendingKind::Advice,
            reason: "06".into(),
            tries: 1,
            pan_encrypted: vec![],
            request: Default::default(),
        });
        j
    }

    #[test]
    fn lookup_keys() {
        let j = journal();
        let by_rrn = OriginalRef {
            rrn: Some("000000000001".into()),
            ..Default::default()
        };
        assert!(matches!(find_original(&j, &by_rrn), Ok(Found::Local(t)) if t.id == 1));
        let unknown_rrn = OriginalRef {
            rrn: Some("999999999999".into()),
            ..Default::default()
        };
        assert_eq!(find_original(&j, &unknown_rrn), Ok(Found::HostDecides));
        let by_trace = OriginalRef {
            stan: Some(1),
            batch: Some(1),
            ..Default::default()
        };
        assert!(matches!(find_original(&j, &by_trace), Ok(Found::Local(t)) if t.id == 1));
        let bad_trace = OriginalRef {
            stan: Some(77),
            ..Default::default()
        };
        assert_eq!(find_original(&j, &bad_trace), Err(Refusal::NotFound));
        let by_auth = OriginalRef {
            auth_code: Some("A00001".into()),
            ..Default::default()
        };
        assert!(matches!(find_original(&j, &by_auth), Ok(Found::Local(t)) if t.id == 1));
    }

    #[test]
    fn a_trace_names_nothing_once_its_batch_is_settled() {
        let mut j = journal();
        for t in &mut j.txns {
            t.settled = true;
        }
        j.counters.batch = 2;
        for batch in [Some(1), Some(2), None] {
            let by_trace = OriginalRef {
                stan: Some(1),
                batch,
                ..Default::default()
            };
            assert_eq!(
                find_original(&j, &by_trace),
                Err(Refusal::NotFound),
                "{batch:?}"
            );
        }
        // The RRN still finds it.
        let by_rrn = OriginalRef {
            rrn: Some("000000000001".into()),
            ..Default::default()
        };
        assert!(matches!(find_original(&j, &by_rrn), Ok(Found::Local(t)) if t.id == 1));
    }

    #[test]
    fn remaining_counts_approved_unknown_and_queued_refunds() {
        let j = journal();
        assert_eq!(remaining_refundable(&j, &j.txns[0], true), cny("50.00"));
    }

    #[test]
    fn each_refusal() {
        let j = journal();
        let card = hash("6222021234567894");
        let r = |orig: usize, amount: &str, card: &PanHash, at: Instant| {
            review(&j, &j.txns[orig], cny(amount), card, at, tz(), 30, true)
        };
        assert_eq!(r(0, "50.00", &card, now()), Ok(()));
        assert_eq!(r(0, "50.01", &card, now()), Err(Refusal::Exceeds));
        assert_eq!(r(0, "0", &card, now()), Err(Refusal::Zero));
        assert_eq!(
            r(0, "1.00", &hash("4111111111111111"), now()),
            Err(Refusal::Card)
        );
        assert_eq!(r(3, "1.00", &card, now()), Err(Refusal::Voided));
        assert_eq!(r(4, "1.00", &card, now()), Err(Refusal::NotSale));
        assert_eq!(r(1, "1.00", &card, now()), Err(Refusal::NotSale));
        let late = now() + Duration::from_secs(31 * 86_400);
        assert_eq!(r(0, "1.00", &card, late), Err(Refusal::Window));
        let usd = Money::parse("1.00", Currency::from_alpha("USD").unwrap()).unwrap();
        assert_eq!(
            review(&j, &j.txns[0], usd, &card, now(), tz(), 30, true),
            Err(Refusal::Currency)
        );
    }

    #[test]
    fn window_counts_calendar_days_in_the_terminal_zone() {
        let mut j = journal();
        // Sale at 23:30 local 30 days before: on day 30 it is still refundable at 00:10.
        j.txns[0].at = Instant::parse_rfc3339("2026-10-27T23:30:00+08:00").unwrap();
        let card = hash("6222021234567894");
        let day30 = Instant::parse_rfc3339("2026-11-26T00:10:00+08:00").unwrap();
        assert_eq!(
            review(&j, &j.txns[0], cny("1.00"), &card, day30, tz(), 30, true),
            Ok(())
        );
        let day31 = Instant::parse_rfc3339("2026-11-27T00:10:00+08:00").unwrap();
        assert_eq!(
            review(&j, &j.txns[0], cny("1.00"), &card, day31, tz(), 30, true),
            Err(Refusal::Window)
        );
    }

    #[test]
    fn a_reused_reference_is_the_same_request_only_if_everything_matches() {
        let mut first = txn(
            9,
            TxnType::Refund,
            Outcome::Declined("05".into()),
            "30.00",
            Some(1),
        );
        let orig = OriginalRef {
            rrn: Some("000000000001".into()),
            date: Some("1126".into()),
            ..Default::default()
        };
        first.original_ref = Some(orig.clone());
        let card = hash("6222021234567894");
        let same = |kind, amount: &str, o: &OriginalRef, c: Option<&PanHash>| {
            same_request(&first, kind, Some(cny(amount)), o, c)
        };
        assert!(same(TxnType::Refund, "30.00", &orig, None));
        assert!(same(TxnType::Refund, "30.00", &orig, Some(&card)));
        assert!(!same(TxnType::Refund, "20.00", &orig, None));
        assert!(!same(TxnType::Sale, "30.00", &orig, None));
        assert!(!same(
            TxnType::Refund,
            "30.00",
            &OriginalRef::default(),
            None
        ));
        assert!(!same(
            TxnType::Refund,
            "30.00",
            &orig,
            Some(&hash("4111111111111111"))
        ));
        let eur = Money::parse("30.00", Currency::from_alpha("EUR").unwrap()).unwrap();
        assert!(!same_request(
            &first,
            TxnType::Refund,
            Some(eur),
            &orig,
            None
        ));
    }

    #[test]
    fn duplicates() {
        let j = journal();
        let card = hash("6222021234567894");
        assert!(
            possible_duplicate(
                &j,
                Some(1),
                &card,
                cny("30.00"),
                now(),
                Duration::from_secs(600)
            )
            .is_none(),
            "the approved one is an hour old"
        );
        assert!(
            possible_duplicate(
                &j,
                Some(1),
                &card,
                cny("30.00"),
                now(),
                Duration::from_secs(7200)
            )
            .is_some()
        );
        assert!(
            possible_duplicate(
                &j,
                Some(1),
                &card,
                cny("30.01"),
                now(),
                Duration::from_secs(7200)
            )
            .is_none()
        );
    }
}
